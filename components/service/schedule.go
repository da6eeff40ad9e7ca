package service

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Backup is the database's scheduled pg_dump (container and in-cluster
// databases; an external one is backed up by its provider).
type Backup struct {
	// Schedule is a cron expression in UTC (minute hour day-of-month month
	// day-of-week), as a Kubernetes CronJob takes it; empty: no backups.
	Schedule string
	// Keep is how many of the newest dumps stay; older ones are deleted
	// after each successful backup (with a Repository: full backups, each
	// with the WAL it needs).
	Keep int
	// Repository, when enabled, replaces the dumps: pgBackRest archives
	// every WAL segment and takes the scheduled full backups there.
	Repository Repository
}

// Schedule is a parsed five-field cron expression.
type Schedule struct {
	fields [5]cronField
}

// cronField is one field: the allowed values, and whether it was `*`
// (cron's day rule needs to know).
type cronField struct {
	allowed map[int]bool
	any     bool
}

var cronRanges = [5]struct {
	name     string
	min, max int
}{{"minute", 0, 59}, {"hour", 0, 23}, {"day of month", 1, 31}, {"month", 1, 12}, {"day of week (0 = Sunday)", 0, 6}}

// ParseSchedule reads a cron expression of five fields, each `*`, a value,
// a range `a-b`, a step `*/n` or `a-b/n`, or a comma list of those: the
// syntax both the single server's backup loop and a Kubernetes CronJob
// understand the same way (no names, no `@daily`).
func ParseSchedule(expr string) (Schedule, error) {
	var s Schedule
	parts := strings.Fields(expr)
	if len(parts) != 5 {
		return s, fmt.Errorf("must be a cron expression of 5 fields (minute hour day-of-month month day-of-week, UTC) such as \"30 3 * * *\", got %q", expr)
	}
	for i, part := range parts {
		f, err := parseCronField(part, cronRanges[i].min, cronRanges[i].max)
		if err != nil {
			return s, fmt.Errorf("field %d (%s, %d-%d) of %q: %v", i+1, cronRanges[i].name, cronRanges[i].min, cronRanges[i].max, expr, err)
		}
		s.fields[i] = f
	}
	return s, nil
}

func parseCronField(field string, min, max int) (cronField, error) {
	f := cronField{allowed: map[int]bool{}, any: field == "*"}
	for _, item := range strings.Split(field, ",") {
		rng, step := item, 1
		if r, st, ok := strings.Cut(item, "/"); ok {
			n, err := strconv.Atoi(st)
			if err != nil || n < 1 {
				return f, fmt.Errorf("step %q is not a positive number", st)
			}
			rng, step = r, n
		}
		lo, hi := min, max
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err1, err2 error
			lo, err1 = strconv.Atoi(a)
			hi, err2 = strconv.Atoi(b)
			if err1 != nil || err2 != nil || lo > hi {
				return f, fmt.Errorf("%q is not a range a-b with a <= b", rng)
			}
		default:
			n, err := strconv.Atoi(rng)
			if err != nil {
				return f, fmt.Errorf("%q is not a number", rng)
			}
			lo = n
			if step == 1 {
				hi = n
			}
		}
		if lo < min || hi > max {
			return f, fmt.Errorf("%q is outside %d-%d", rng, min, max)
		}
		for v := lo; v <= hi; v += step {
			f.allowed[v] = true
		}
	}
	return f, nil
}

// Due says whether the schedule fires in the minute of t (in UTC). As in
// cron, when both day fields are restricted either one matching is enough.
func (s Schedule) Due(t time.Time) bool {
	t = t.UTC()
	f := s.fields
	if !f[0].allowed[t.Minute()] || !f[1].allowed[t.Hour()] || !f[3].allowed[int(t.Month())] {
		return false
	}
	dom, dow := f[2].allowed[t.Day()], f[4].allowed[int(t.Weekday())]
	if f[2].any || f[4].any {
		return dom && dow
	}
	return dom || dow
}

// LongestGap is the longest time between two runs of the schedule over
// 400 days from a fixed start (a schedule that runs at most once in that
// time says 400 days): how old the newest backup may be before a run was
// missed.
func (s Schedule) LongestGap() time.Duration {
	const span = 400 * 24 * time.Hour
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var last time.Time
	longest := time.Duration(0)
	for t := start; t.Before(start.Add(span)); t = t.Add(time.Minute) {
		if !s.Due(t) {
			continue
		}
		if !last.IsZero() && t.Sub(last) > longest {
			longest = t.Sub(last)
		}
		last = t
	}
	if longest == 0 {
		return span
	}
	return longest
}
