package service

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
)

// Quantity is a CPU or memory amount as users write it ("500m", "0.5",
// "512Mi", "1G"), kept with its parsed value so that each target can render
// it its own way (Kubernetes keeps the text, Docker wants numbers).
type Quantity struct {
	Text  string
	Value int64 // millicores for CPU, bytes for memory
}

var (
	cpuPattern    = regexp.MustCompile(`^([0-9]+(\.[0-9]{1,3})?)(m?)$`)
	memoryPattern = regexp.MustCompile(`^([0-9]+)(Ki|Mi|Gi|Ti|k|K|M|G|T)?$`)
	memoryUnits   = map[string]int64{
		"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
		"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
	}
)

// ParseCPU reads a CPU amount in cores ("0.5", "2") or millicores ("500m").
func ParseCPU(s string) (Quantity, error) {
	m := cpuPattern.FindStringSubmatch(s)
	if m == nil {
		return Quantity{}, fmt.Errorf("must be a CPU quantity such as 500m, 0.5 or 2, got %q", s)
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil || f > 1e6 {
		return Quantity{}, fmt.Errorf("must be a CPU quantity such as 500m, 0.5 or 2, got %q", s)
	}
	milli := f * 1000
	if m[3] == "m" {
		if m[2] != "" {
			return Quantity{}, fmt.Errorf("must be a whole number of millicores such as 500m, got %q", s)
		}
		milli = f
	}
	return Quantity{Text: s, Value: int64(math.Round(milli))}, nil
}

// ParseMemory reads a memory amount in bytes with an optional Kubernetes
// suffix (Ki, Mi, Gi, Ti, or the decimal k, M, G, T).
func ParseMemory(s string) (Quantity, error) {
	m := memoryPattern.FindStringSubmatch(s)
	if m == nil {
		return Quantity{}, fmt.Errorf("must be a memory quantity such as 512Mi, 1Gi or 512M, got %q", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	unit := memoryUnits[m[2]]
	if err != nil || n > math.MaxInt64/unit {
		return Quantity{}, fmt.Errorf("must be a memory quantity such as 512Mi, 1Gi or 512M, got %q", s)
	}
	return Quantity{Text: s, Value: n * unit}, nil
}

// Cores is a CPU quantity in (fractional) cores.
func (q Quantity) Cores() float64 { return float64(q.Value) / 1000 }

// Megabytes is a memory quantity in MiB, rounded up (pulumi-docker's unit).
func (q Quantity) Megabytes() int { return int((q.Value + (1<<20 - 1)) >> 20) }

// String is the text as the user wrote it.
func (q Quantity) String() string { return q.Text }
