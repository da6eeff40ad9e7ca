package service

import (
	"testing"
	"time"
)

func TestParseSchedule(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04 Mon", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		expr string
		due  []string
		not  []string
	}{
		{"30 3 * * *", []string{"2026-11-26 03:30 Thu"}, []string{"2026-11-26 03:31 Thu", "2026-11-26 04:30 Thu"}},
		{"*/15 * * * *", []string{"2026-11-26 10:45 Thu", "2026-11-26 10:00 Thu"}, []string{"2026-11-26 10:20 Thu"}},
		{"0 1-5/2 * * *", []string{"2026-11-26 01:00 Thu", "2026-11-26 05:00 Thu"}, []string{"2026-11-26 02:00 Thu", "2026-11-26 07:00 Thu"}},
		// Both day fields restricted: either one (cron's rule).
		{"0 0 1 * 0", []string{"2026-12-01 00:00 Tue", "2026-11-29 00:00 Sun"}, []string{"2026-11-26 00:00 Thu"}},
		// One restricted: that one.
		{"0 0 * * 1,3", []string{"2026-11-30 00:00 Mon"}, []string{"2026-11-26 00:00 Thu"}},
	} {
		s, err := ParseSchedule(c.expr)
		if err != nil {
			t.Fatalf("%q: %v", c.expr, err)
		}
		for _, d := range c.due {
			if !s.Due(at(d)) {
				t.Errorf("%q does not fire at %s", c.expr, d)
			}
		}
		for _, d := range c.not {
			if s.Due(at(d)) {
				t.Errorf("%q fires at %s", c.expr, d)
			}
		}
	}
	for _, bad := range []string{"", "* * * *", "60 * * * *", "* * 0 * *", "* * * 13 *", "* * * * 7", "*/0 * * * *", "5-1 * * * *", "@daily", "MON * * * *", "1,,2 * * * *"} {
		if _, err := ParseSchedule(bad); err == nil {
			t.Errorf("%q is accepted", bad)
		}
	}
}

func TestLongestGap(t *testing.T) {
	for expr, want := range map[string]time.Duration{
		"0 3 * * *":    24 * time.Hour,
		"*/15 * * * *": 15 * time.Minute,
		"0 3 * * 1":    7 * 24 * time.Hour,
		"0 2,14 * * *": 12 * time.Hour,
		"0 3 * * 1-5":  3 * 24 * time.Hour, // Friday to Monday
		"30 1 1 * *":   31 * 24 * time.Hour,
		"0 0 29 2 *":   400 * 24 * time.Hour, // once in four years
	} {
		s, err := ParseSchedule(expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.LongestGap(); got != want {
			t.Errorf("%s: longest gap %s, want %s", expr, got, want)
		}
	}
}
