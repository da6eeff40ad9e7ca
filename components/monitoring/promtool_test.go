//go:build e2e

package monitoring

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// TestPromtoolChecksAndUnitTestsTheRules runs the real `promtool check
// rules` on the generated file and `promtool test rules` on sample series:
// each alert fires when it should and stays silent when it should.
func TestPromtoolChecksAndUnitTestsTheRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed, so the rules cannot be checked: apt-get install prometheus")
	}
	g := Alerts("fastapi", "fastapi", testThresholds)
	g.Rules = append(g.Rules, DatabaseAlerts("fastapi", 24*time.Hour, ArchiveStall)...)
	rules, err := RuleFile(g)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yml"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", filepath.Join(dir, "rules.yml")).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}

	annotations := map[string]map[string]string{}
	for _, r := range g.Rules {
		annotations[r.Alert] = r.Annotations
	}
	labels := func(alert string) map[string]string {
		for _, r := range g.Rules {
			if r.Alert == alert {
				return r.Labels
			}
		}
		t.Fatalf("no alert %s", alert)
		return nil
	}
	type expAlert struct {
		ExpLabels      map[string]string `yaml:"exp_labels"`
		ExpAnnotations map[string]string `yaml:"exp_annotations"`
	}
	type alertTest struct {
		EvalTime  string     `yaml:"eval_time"`
		Alertname string     `yaml:"alertname"`
		ExpAlerts []expAlert `yaml:"exp_alerts"`
	}
	type series struct {
		Series string `yaml:"series"`
		Values string `yaml:"values"`
	}
	type testGroup struct {
		Interval    string      `yaml:"interval"`
		InputSeries []series    `yaml:"input_series"`
		AlertTests  []alertTest `yaml:"alert_rule_test"`
	}
	fires := func(alert, at string) alertTest {
		return alertTest{EvalTime: at, Alertname: alert, ExpAlerts: []expAlert{{ExpLabels: labels(alert), ExpAnnotations: annotations[alert]}}}
	}
	silent := func(alert, at string) alertTest { return alertTest{EvalTime: at, Alertname: alert} }
	job := `{job="fastapi"`
	groups := []testGroup{
		{ // down from minute 2: pending at 3m, firing at 5m (for 2m)
			Interval:    "1m",
			InputSeries: []series{{`up` + job + `,instance="a"}`, "1 1 0 0 0 0 0 0"}},
			AlertTests:  []alertTest{silent("FastAPIServiceDown", "1m"), silent("FastAPIServiceDown", "3m"), fires("FastAPIServiceDown", "5m")},
		},
		{ // 10% 5xx: fires after 5 minutes; 1% 5xx stays silent
			Interval: "1m",
			InputSeries: []series{
				{`http_requests_total` + job + `,status="200"}`, "0+100x30"},
				{`http_requests_total` + job + `,status="500"}`, "0+11x30"},
			},
			AlertTests: []alertTest{silent("FastAPIHighErrorRatio", "3m"), fires("FastAPIHighErrorRatio", "15m")},
		},
		{
			Interval: "1m",
			InputSeries: []series{
				{`http_requests_total` + job + `,status="200"}`, "0+100x30"},
				{`http_requests_total` + job + `,status="500"}`, "0+1x30"},
			},
			AlertTests: []alertTest{silent("FastAPIHighErrorRatio", "15m")},
		},
		{ // p95 about 0.875 s: fires after 10 minutes
			Interval: "1m",
			InputSeries: []series{
				{`http_request_duration_seconds_bucket` + job + `,le="0.1"}`, "0+50x30"},
				{`http_request_duration_seconds_bucket` + job + `,le="0.5"}`, "0+80x30"},
				{`http_request_duration_seconds_bucket` + job + `,le="1"}`, "0+100x30"},
				{`http_request_duration_seconds_bucket` + job + `,le="+Inf"}`, "0+100x30"},
			},
			AlertTests: []alertTest{silent("FastAPIHighLatencyP95", "5m"), fires("FastAPIHighLatencyP95", "20m")},
		},
		{ // p95 under 0.5 s: silent
			Interval: "1m",
			InputSeries: []series{
				{`http_request_duration_seconds_bucket` + job + `,le="0.1"}`, "0+96x30"},
				{`http_request_duration_seconds_bucket` + job + `,le="0.5"}`, "0+100x30"},
				{`http_request_duration_seconds_bucket` + job + `,le="+Inf"}`, "0+100x30"},
			},
			AlertTests: []alertTest{silent("FastAPIHighLatencyP95", "20m")},
		},
		{ // readiness failing continuously; database down from minute 3
			Interval: "1m",
			InputSeries: []series{
				{`readiness_failures_total` + job + `}`, "0+1x20"},
				{`database_up` + job + `,instance="a"}`, "1 1 1 0 0 0 0 0 0"},
			},
			AlertTests: []alertTest{
				silent("FastAPIReadinessFailing", "2m"), fires("FastAPIReadinessFailing", "10m"),
				silent("FastAPIDatabaseUnreachable", "2m"), fires("FastAPIDatabaseUnreachable", "6m"),
			},
		},
		{ // healthy: no readiness failures, database up, steady processes
			Interval: "1m",
			InputSeries: []series{
				{`readiness_failures_total` + job + `}`, "0x20"},
				{`database_up` + job + `,instance="a"}`, "1x20"},
				{`app_start_time_seconds` + job + `,instance="a"}`, "1000x60"},
			},
			AlertTests: []alertTest{silent("FastAPIReadinessFailing", "15m"), silent("FastAPIDatabaseUnreachable", "15m"), silent("FastAPIRestartLoop", "50m")},
		},
		{ // the database down from minute 2 (for 1m): firing at 4m
			Interval:    "1m",
			InputSeries: []series{{`pg_up{job="fastapi-postgres"}`, "1 1 0 0 0 0 0"}},
			AlertTests:  []alertTest{silent("PostgresDown", "1m"), fires("PostgresDown", "4m")},
		},
		{ // 90 of 100 connections for 5 minutes; 50 of 100 is fine
			Interval: "1m",
			InputSeries: []series{
				{`pg_stat_activity_count{job="fastapi-postgres",datname="app",state="active"}`, "90x10"},
				{`pg_settings_max_connections{job="fastapi-postgres"}`, "100x10"},
			},
			AlertTests: []alertTest{silent("PostgresConnectionsNearLimit", "3m"), fires("PostgresConnectionsNearLimit", "7m")},
		},
		{
			Interval: "1m",
			InputSeries: []series{
				{`pg_stat_activity_count{job="fastapi-postgres",datname="app",state="active"}`, "50x10"},
				{`pg_settings_max_connections{job="fastapi-postgres"}`, "100x10"},
			},
			AlertTests: []alertTest{silent("PostgresConnectionsNearLimit", "9m")},
		},
		{ // a daily schedule: the last backup at 0 is too old after 25 hours
			Interval:    "10m",
			InputSeries: []series{{BackupMetric + `{job="fastapi-postgres"}`, "0x200"}},
			AlertTests:  []alertTest{silent("PostgresBackupTooOld", "1490m"), fires("PostgresBackupTooOld", "1510m")},
		},
		{ // backups every 10 minutes: never too old
			Interval:    "10m",
			InputSeries: []series{{BackupMetric + `{job="fastapi-postgres"}`, "0+600x200"}},
			AlertTests:  []alertTest{silent("PostgresBackupTooOld", "1510m")},
		},
		{ // WAL archiving fails from minute 4 on (the repository unreachable): the failed time passes the archived one
			Interval: "1m",
			InputSeries: []series{
				{ArchiverArchivedMetric + `{job="fastapi-postgres"}`, "100+60x3 280x30"},
				{ArchiverFailedAtMetric + `{job="fastapi-postgres"}`, "0x3 300+60x30"},
				{ArchiverFailedMetric + `{job="fastapi-postgres"}`, "0x3 1+1x30"},
			},
			AlertTests: []alertTest{silent("PostgresWALArchivingFailing", "3m"), silent("PostgresWALArchivingFailing", "7m"), fires("PostgresWALArchivingFailing", "12m")},
		},
		{ // the store does not answer: the archive command hangs, nothing fails, a segment waits from minute 2 on
			Interval: "1m",
			InputSeries: []series{
				{ArchiveWaitingMetric + `{job="fastapi-postgres"}`, "0 0 0+60x10"},
			},
			AlertTests: []alertTest{silent("PostgresWALArchivingStalled", "6m"), fires("PostgresWALArchivingStalled", "8m"), silent("PostgresWALArchivingFailing", "10m")},
		},
		{ // archiving that works: an idle database archives nothing for an hour, and that is fine
			Interval: "1m",
			InputSeries: []series{
				{ArchiverArchivedMetric + `{job="fastapi-postgres"}`, "100x70"},
				{ArchiverFailedAtMetric + `{job="fastapi-postgres"}`, "0x70"},
				{ArchiverFailedMetric + `{job="fastapi-postgres"}`, "0x70"},
			},
			AlertTests: []alertTest{silent("PostgresWALArchivingFailing", "65m"), silent("PostgresWALArchivingStalled", "65m")},
		},
		{ // archiving that flaps: each failure followed by a success, three in 15 minutes
			Interval: "1m",
			InputSeries: []series{
				{ArchiverArchivedMetric + `{job="fastapi-postgres"}`, "100+60x30"},
				{ArchiverFailedAtMetric + `{job="fastapi-postgres"}`, "0x2 130 130 130 250 250 250 370x20"},
				{ArchiverFailedMetric + `{job="fastapi-postgres"}`, "0x2 1 1 1 2 2 2 3x20"},
			},
			AlertTests: []alertTest{silent("PostgresWALArchivingFailing", "4m"), fires("PostgresWALArchivingFailing", "15m")},
		},
		{ // a process that restarts every 5 minutes
			Interval:    "5m",
			InputSeries: []series{{`app_start_time_seconds` + job + `,instance="a"}`, "0+300x12"}},
			AlertTests:  []alertTest{fires("FastAPIRestartLoop", "55m")},
		},
	}
	test, err := yaml.Marshal(map[string]any{"rule_files": []string{"rules.yml"}, "evaluation_interval": "1m", "tests": groups})
	if err != nil {
		t.Fatal(err)
	}
	testFile := filepath.Join(dir, "rules_test.yml")
	if err := os.WriteFile(testFile, test, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "test", "rules", testFile).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool test rules: %v\n%s\ntest file:\n%s", err, out, test)
	}
}
