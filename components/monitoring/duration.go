package monitoring

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// units are the Prometheus duration units this project writes, largest
// first (Prometheus and Alertmanager also read y, which no interval here
// needs).
var units = []struct {
	name string
	d    time.Duration
}{
	{"w", 7 * 24 * time.Hour}, {"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond},
}

var durationForm = regexp.MustCompile(`^([0-9]+)(ms|s|m|h|d|w)$`)

// ParseDuration reads a Prometheus duration of one unit (15s, 5m, 4h, 2d),
// the form Prometheus, Alertmanager and the Prometheus Operator all accept.
func ParseDuration(s string) (time.Duration, error) {
	m := durationForm.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a duration such as 30s, 5m or 4h", s)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a positive duration", s)
	}
	for _, u := range units {
		if u.name == m[2] {
			return time.Duration(n) * u.d, nil
		}
	}
	panic("unreachable: the pattern lists every unit")
}

// FormatDuration writes d in the largest unit that divides it.
func FormatDuration(d time.Duration) string {
	for _, u := range units {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.name
		}
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}
