package monitoring

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var testRouting = Routing{GroupWait: "30s", GroupInterval: "5m", RepeatInterval: "1h"}

func TestAlertmanagerConfigRoutesBySeverityToEveryChannel(t *testing.T) {
	out, err := AlertmanagerConfig(Receivers{
		WebhookURL: "https://hooks.example.com/T0K3N", SlackURL: "https://hooks.slack.com/services/S3CR3T", SlackChannel: "#oncall",
		EmailTo: "oncall@example.com", EmailFrom: "alerts@example.com", SMTPHost: "smtp.example.com:587", SMTPUser: "alerts", SMTPPassword: "smtp-pw",
	}, testRouting)
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		Global map[string]any
		Route  struct {
			Receiver       string
			GroupBy        []string `yaml:"group_by"`
			RepeatInterval string   `yaml:"repeat_interval"`
			Routes         []struct {
				Receiver       string
				Matchers       []string
				RepeatInterval string `yaml:"repeat_interval"`
			}
		}
		InhibitRules []map[string]any `yaml:"inhibit_rules"`
		Receivers    []struct {
			Name           string
			WebhookConfigs []map[string]any `yaml:"webhook_configs"`
			SlackConfigs   []map[string]any `yaml:"slack_configs"`
			EmailConfigs   []map[string]any `yaml:"email_configs"`
		}
	}
	if err := yaml.Unmarshal([]byte(out), &conf); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(conf.Route.Routes) != 2 || conf.Route.Routes[0].Receiver != CriticalReceiver || conf.Route.Routes[1].Receiver != WarningReceiver ||
		conf.Route.Routes[1].Matchers[0] != `severity="warning"` || conf.Route.Routes[1].RepeatInterval != "3h" {
		t.Errorf("routes by severity: %+v", conf.Route.Routes)
	}
	if strings.Join(conf.Route.GroupBy, ",") != "alertname,service,stack" || conf.Route.RepeatInterval != "1h" {
		t.Errorf("grouping: %+v", conf.Route)
	}
	if len(conf.Receivers) != 2 {
		t.Fatalf("receivers: %+v", conf.Receivers)
	}
	for _, r := range conf.Receivers {
		if len(r.WebhookConfigs) != 1 || len(r.SlackConfigs) != 1 || len(r.EmailConfigs) != 1 {
			t.Errorf("receiver %s lacks a channel: %+v", r.Name, r)
			continue
		}
		for _, c := range []map[string]any{r.WebhookConfigs[0], r.SlackConfigs[0], r.EmailConfigs[0]} {
			if c["send_resolved"] != true {
				t.Errorf("receiver %s: %v does not say when the alert resolves", r.Name, c)
			}
		}
		if r.SlackConfigs[0]["channel"] != "#oncall" || r.EmailConfigs[0]["to"] != "oncall@example.com" {
			t.Errorf("receiver %s: %+v", r.Name, r)
		}
	}
	if conf.Global["smtp_auth_password"] != "smtp-pw" || conf.Global["smtp_smarthost"] != "smtp.example.com:587" || conf.Global["smtp_require_tls"] != true {
		t.Errorf("SMTP settings: %v", conf.Global)
	}
	if len(conf.InhibitRules) != len(Inhibitions()) {
		t.Errorf("inhibit rules: %v", conf.InhibitRules)
	}
}

func TestAlertmanagerConfigWithoutReceiversStillServesTheUI(t *testing.T) {
	out, err := AlertmanagerConfig(Receivers{}, testRouting)
	if err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{"webhook_configs", "slack_configs", "email_configs", "smtp_"} {
		if strings.Contains(out, absent) {
			t.Errorf("no channel is configured, yet the file has %s:\n%s", absent, out)
		}
	}
	if (Receivers{}).Any() {
		t.Error("Any() with no channel")
	}
}

func TestAlertmanagerConfigRejectsABadInterval(t *testing.T) {
	if _, err := AlertmanagerConfig(Receivers{}, Routing{GroupWait: "30s", GroupInterval: "5m", RepeatInterval: "an hour"}); err == nil {
		t.Error("a repeat interval of \"an hour\" was accepted")
	}
}

func TestDurations(t *testing.T) {
	for in, want := range map[string]string{"90s": "90s", "120s": "2m", "3h": "3h", "48h": "2d", "1500ms": "1500ms"} {
		d, err := ParseDuration(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got := FormatDuration(d); got != want {
			t.Errorf("%s formats as %s, want %s", in, got, want)
		}
	}
	for _, bad := range []string{"", "5", "0s", "1h30m", "-1m", "5 m", "1y"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}
