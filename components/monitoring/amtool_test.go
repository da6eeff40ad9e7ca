//go:build e2e

package monitoring

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAmtoolChecksAndRoutesTheAlertmanagerConfig runs the real `amtool
// check-config` on the generated alertmanager.yml (with every channel) and
// `amtool config routes test` on each alert of the rules: it reaches the
// receiver of its severity.
func TestAmtoolChecksAndRoutesTheAlertmanagerConfig(t *testing.T) {
	amtool, err := exec.LookPath("amtool")
	if err != nil {
		t.Fatal("amtool is not installed, so the Alertmanager configuration cannot be checked: apt-get install prometheus-alertmanager")
	}
	conf, err := AlertmanagerConfig(Receivers{
		WebhookURL: "https://hooks.example.com/x", SlackURL: "https://hooks.slack.com/services/x", SlackChannel: "#oncall",
		EmailTo: "oncall@example.com", EmailFrom: "alerts@example.com", SMTPHost: "smtp.example.com:587", SMTPUser: "u", SMTPPassword: "p",
	}, testRouting)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "alertmanager.yml")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(amtool, "check-config", file).CombinedOutput(); err != nil {
		t.Fatalf("amtool check-config: %v\n%s\n%s", err, out, conf)
	}
	for _, r := range Alerts("fastapi", "fastapi", testThresholds).Rules {
		want := map[string]string{"critical": CriticalReceiver, "warning": WarningReceiver}[r.Labels["severity"]]
		out, err := exec.Command(amtool, "config", "routes", "test", "--config.file="+file, "--verify.receivers="+want,
			"alertname="+r.Alert, "severity="+r.Labels["severity"], "service=fastapi", "stack=prod").CombinedOutput()
		if err != nil {
			t.Errorf("%s (severity %s) does not reach receiver %s: %v\n%s", r.Alert, r.Labels["severity"], want, err, strings.TrimSpace(string(out)))
		}
	}
}
