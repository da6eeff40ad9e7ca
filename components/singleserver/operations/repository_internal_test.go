package operations

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRestorePointArgs: what pgBackRest's restore is asked for each way
// of naming a point: the newest archived state replays to the archive's
// end (no target, so no promote option, which pgBackRest refuses without
// one); a time is in UTC with microseconds, promoted once reached; a
// backup alone is its end (immediate).
func TestRestorePointArgs(t *testing.T) {
	at := time.Date(2026, 12, 6, 11, 15, 0, 250000000, time.FixedZone("CET", 3600))
	cases := []struct {
		p          Point
		want, says string
		flagsAgain string
	}{
		{Point{}, "restore --delta", "the newest archived state", "--latest"},
		{Point{Time: at}, "restore --delta --type=time --target=2026-12-06 10:15:00.250000+00 --target-action=promote", "the state at 2026-12-06T10:15:00Z",
			"--to-time 2026-12-06T11:15:00.25+01:00"},
		{Point{Backup: "20261206-031500F"}, "restore --delta --set=20261206-031500F --type=immediate --target-action=promote", "backup 20261206-031500F",
			"--from 20261206-031500F"},
		{Point{Backup: "20261206-031500F", Time: at}, "restore --delta --set=20261206-031500F --type=time --target=2026-12-06 10:15:00.250000+00 --target-action=promote", "the state at 2026-12-06T10:15:00Z",
			"--to-time 2026-12-06T11:15:00.25+01:00 --from 20261206-031500F"},
	}
	for _, c := range cases {
		if got := strings.Join(c.p.restoreArgs(), " "); got != c.want {
			t.Errorf("%+v: %s, want %s", c.p, got, c.want)
		}
		if got := c.p.String(); got != c.says {
			t.Errorf("%+v says %q, want %q", c.p, got, c.says)
		}
		if got := c.p.Flags(); got != c.flagsAgain {
			t.Errorf("%+v: flags %q, want %q", c.p, got, c.flagsAgain)
		}
		// The time the flags name parses back to the same instant.
		if !c.p.Time.IsZero() {
			if again, err := ParsePoint("", c.p.Time.Format(time.RFC3339Nano), false); err != nil || !again.Time.Equal(c.p.Time) {
				t.Errorf("%+v: its --to-time does not parse back: %+v, %v", c.p, again, err)
			}
		}
	}
	if args := (Point{}).restoreArgs(); slices.Contains(args, "--target-action=promote") {
		t.Error("a restore without a target asks to promote at it")
	}
}

// TestProgressLinesArePrefixed: pgBackRest's output within a restore's
// progress, line by line, whatever the writes' boundaries.
func TestProgressLinesArePrefixed(t *testing.T) {
	var b strings.Builder
	w := prefixed(&b, "> ")
	for _, s := range []string{"INFO: a", "\nINFO: b\nINF", "O: c\n"} {
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if want := "> INFO: a\n> INFO: b\n> INFO: c\n"; b.String() != want {
		t.Errorf("%q, want %q", b.String(), want)
	}
}

// TestRestoreFlags: ./infra restore's flags, bad ones refused with the fix.
func TestRestoreFlags(t *testing.T) {
	if p, err := ParsePoint("", "2026-12-06T10:15:00Z", false); err != nil || !p.Time.Equal(time.Date(2026, 12, 6, 10, 15, 0, 0, time.UTC)) {
		t.Errorf("--to-time 2026-12-06T10:15:00Z: %+v, %v", p, err)
	}
	if p, err := ParsePoint("", "", true); err != nil || p.Backup != "" || !p.Time.IsZero() {
		t.Errorf("--latest: %+v, %v", p, err)
	}
	for _, bad := range []struct {
		from, to string
		latest   bool
		want     string
	}{
		{"", "2026-12-06 10:15", false, `--to-time "2026-12-06 10:15": want a time in RFC 3339 with its zone, such as 2026-12-06T10:15:00Z`},
		{"", "2026-12-06T10:15:00", false, "want a time in RFC 3339 with its zone"},
		{"20261206-031500F", "", true, "--latest restores the newest archived state: leave out --from and --to-time, or leave out --latest"},
	} {
		if _, err := ParsePoint(bad.from, bad.to, bad.latest); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: %v, want %q", bad, err, bad.want)
		}
	}
}

// TestWroteNamesTheBackup: the name of the backup kept before a restore,
// whatever psql printed after it (a NOTICE was taken for the name).
func TestWroteNamesTheBackup(t *testing.T) {
	out := "INFO: backup command end\nbackup: wrote 20261208-011811F_20261208-011812I (incr) into the repository\nNOTICE:  relation \"fastapi_infra_backup\" already exists, skipping\n"
	if got := wrote(out); got != "wrote 20261208-011811F_20261208-011812I (incr) into the repository" {
		t.Errorf("wrote: %q", got)
	}
}
