package monitoring

import (
	"strings"
	"testing"
)

var testThresholds = Thresholds{DownMinutes: 2, ErrorRatio: 0.05, P95Seconds: 0.5, RestartsPerHour: 3}

func TestAlertsCoverWhatAServiceOwnerNeeds(t *testing.T) {
	g := Alerts("fastapi", "fastapi", testThresholds)
	want := map[string]string{
		"FastAPIServiceDown":         `sum(up{job="fastapi"}) == 0 or absent(up{job="fastapi"})`,
		"FastAPIReadinessFailing":    `sum(increase(readiness_failures_total{job="fastapi"}[5m])) > 0`,
		"FastAPIHighErrorRatio":      `sum(rate(http_requests_total{job="fastapi",status=~"5.."}[5m])) / sum(rate(http_requests_total{job="fastapi"}[5m])) > 0.05`,
		"FastAPIHighLatencyP95":      `histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{job="fastapi"}[5m]))) > 0.5`,
		"FastAPIRestartLoop":         `sum(changes(app_start_time_seconds{job="fastapi"}[1h])) > 3`,
		"FastAPIDatabaseUnreachable": `min(database_up{job="fastapi"}) == 0`,
	}
	if len(g.Rules) != len(want) {
		t.Fatalf("%d rules, want %d", len(g.Rules), len(want))
	}
	for _, r := range g.Rules {
		if want[r.Alert] != r.Expr {
			t.Errorf("%s: expr %s\nwant %s", r.Alert, r.Expr, want[r.Alert])
		}
		if r.Labels["service"] != "fastapi" || (r.Labels["severity"] != "critical" && r.Labels["severity"] != "warning") {
			t.Errorf("%s: labels %v", r.Alert, r.Labels)
		}
	}
	if g.Rules[0].For != "2m" {
		t.Errorf("ServiceDown waits %s, want the configured 2m", g.Rules[0].For)
	}
}

func TestRuleFile(t *testing.T) {
	out, err := RuleFile(Alerts("fastapi", "fastapi", testThresholds))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"groups:\n  - name: fastapi-infra-fastapi\n", "alert: FastAPIServiceDown", "for: 2m"} {
		if !strings.Contains(out, want) {
			t.Errorf("the rule file lacks %q:\n%s", want, out)
		}
	}
}
