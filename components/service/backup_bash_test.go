//go:build e2e

package service

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The backup container decides in bash when the schedule is due; the
// config is validated (and a Kubernetes CronJob would be scheduled) by
// Go's reading of the same expression. Both must agree on every minute:
// here over the minutes of a year at a 131-minute stride, which crosses
// every hour, weekday and month end, plus each
// schedule's own firing minutes.
func TestBackupScheduleInBashAgreesWithGo(t *testing.T) {
	functions, _, ok := strings.Cut(backupScript, "case \"${1:-loop}\" in")
	if !ok {
		t.Fatal("backup.sh has no action switch to cut before")
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, expr := range []string{"30 3 * * *", "*/15 * * * *", "0 1-5/2 * * *", "0 0 1 * 0", "0 0 * * 1,3", "5/20 */6 1-7 * *", "0 12 15 6 *", "59 23 31 12 *"} {
		sched, err := ParseSchedule(expr)
		if err != nil {
			t.Fatal(err)
		}
		var epochs []time.Time
		for m := time.Duration(0); m < 365*24*time.Hour; m += 131 * time.Minute {
			epochs = append(epochs, start.Add(m))
		}
		fired := 0
		for m := start; m.Before(start.Add(40 * 24 * time.Hour)); m = m.Add(time.Minute) {
			if sched.Due(m) && fired < 50 {
				epochs = append(epochs, m)
				fired++
			}
		}
		var in strings.Builder
		for _, e := range epochs {
			fmt.Fprintln(&in, e.Unix())
		}
		cmd := exec.Command("bash", "-c", functions+`while read -r e; do if due "$e"; then echo 1; else echo 0; fi; done`)
		cmd.Env = append(os.Environ(), "BACKUP_SCHEDULE="+expr, "TZ=Europe/Berlin") // bash must use UTC whatever the zone
		cmd.Stdin = strings.NewReader(in.String())
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%q: bash: %v", expr, err)
		}
		answers := strings.Fields(string(out))
		if len(answers) != len(epochs) {
			t.Fatalf("%q: %d answers for %d minutes", expr, len(answers), len(epochs))
		}
		wrong := 0
		for i, e := range epochs {
			if want := sched.Due(e); (answers[i] == "1") != want {
				if wrong++; wrong <= 5 {
					t.Errorf("%q at %s: bash says %s, Go says due=%v", expr, e.Format("2006-01-02 15:04 Mon"), answers[i], want)
				}
			}
		}
		if fired == 0 && expr != "0 12 15 6 *" && expr != "59 23 31 12 *" {
			t.Errorf("%q never fired in 40 days: the comparison saw no firing minute", expr)
		}
	}
}
