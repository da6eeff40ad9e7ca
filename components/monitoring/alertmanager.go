package monitoring

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// Receivers are where alerts reach a person. The URLs carry tokens and the
// SMTP password is a password: the components get them from secret config
// and keep everything rendered from them secret.
type Receivers struct {
	// WebhookURL receives Alertmanager's JSON (on-call tools, chat bridges).
	WebhookURL string
	// SlackURL is a Slack incoming-webhook URL; SlackChannel overrides the
	// webhook's own channel when set.
	SlackURL, SlackChannel string
	// Email: To and From addresses, SMTPHost as host:port, and the SMTP
	// login (none when SMTPUser is empty).
	EmailTo, EmailFrom, SMTPHost, SMTPUser, SMTPPassword string
}

// Any says whether an alert reaches anyone.
func (r Receivers) Any() bool { return r.WebhookURL != "" || r.SlackURL != "" || r.EmailTo != "" }

// Channels names the configured kinds, for outputs and logs (never a value).
func (r Receivers) Channels() []string {
	var c []string
	if r.WebhookURL != "" {
		c = append(c, "webhook")
	}
	if r.SlackURL != "" {
		c = append(c, "slack")
	}
	if r.EmailTo != "" {
		c = append(c, "email")
	}
	return c
}

// Routing is how notifications are grouped and repeated.
type Routing struct {
	// GroupWait is how long the first notification of a group waits for
	// more alerts; GroupInterval how long before a changed group (a new or
	// a resolved alert) is sent again; RepeatInterval how often a critical
	// alert that still fires is sent again (warnings: 3x as seldom).
	GroupWait, GroupInterval, RepeatInterval string
}

// Receiver names: one per severity, so that a service owner can route
// critical alerts to a pager and warnings to a channel by editing one
// receiver, and so that a silence or an inhibition reads naturally.
const (
	CriticalReceiver = "critical"
	WarningReceiver  = "warning"
)

// GroupBy are the labels a notification groups alerts by: one notification
// per alert of a service of a stack, so that silencing one does not hide
// another.
var GroupBy = []string{"alertname", "service", "stack"}

// Matcher is one Alertmanager label matcher: Op is =, !=, =~ or !~.
type Matcher struct{ Name, Op, Value string }

// String is the matcher in alertmanager.yml's form: name="value".
func (m Matcher) String() string { return fmt.Sprintf("%s%s%q", m.Name, m.Op, m.Value) }

func matcherStrings(ms []Matcher) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.String())
	}
	return out
}

// Inhibition is one rule of what hides what while both fire.
type Inhibition struct {
	Source, Target []Matcher
	Equal          []string
}

// Inhibitions a service owner expects: a service that is down says it all
// (its readiness, errors, latency and restarts are consequences), an
// unreachable database explains failing readiness, 5xx and latency, and a
// critical alert hides the same service's warnings.
func Inhibitions() []Inhibition {
	return []Inhibition{
		{Source: []Matcher{{"alertname", "=", "FastAPIServiceDown"}},
			Target: []Matcher{{"alertname", "=~", "FastAPI.+"}, {"alertname", "!=", "FastAPIServiceDown"}}, Equal: []string{"service"}},
		{Source: []Matcher{{"alertname", "=~", "FastAPIDatabaseUnreachable|PostgresDown"}},
			Target: []Matcher{{"alertname", "=~", "FastAPIReadinessFailing|FastAPIHighErrorRatio|FastAPIHighLatencyP95"}}, Equal: []string{"service"}},
		{Source: []Matcher{{"severity", "=", "critical"}}, Target: []Matcher{{"severity", "=", "warning"}}, Equal: []string{"service"}},
	}
}

// SeverityRoute is a route of the tree: alerts of a severity to their
// receiver, repeated every Repeat (empty: the tree's interval).
type SeverityRoute struct {
	Severity, Receiver, Repeat string
}

// SeverityRoutes are the routes under the tree's root for rt.
func SeverityRoutes(rt Routing) ([]SeverityRoute, error) {
	repeat, err := ParseDuration(rt.RepeatInterval)
	if err != nil {
		return nil, fmt.Errorf("repeat interval: %w", err)
	}
	return []SeverityRoute{
		{Severity: "critical", Receiver: CriticalReceiver},
		{Severity: "warning", Receiver: WarningReceiver, Repeat: FormatDuration(repeat * warningRepeatFactor)},
	}, nil
}

// warningRepeatFactor makes warnings repeat three times as seldom as
// critical alerts: a warning needs a look, not a wake-up.
const warningRepeatFactor = 3

// AlertmanagerConfig renders alertmanager.yml: a route per severity, the
// inhibitions, and one receiver per severity with every configured channel
// (none: the alerts still show on Alertmanager's UI, where they can be
// silenced). Every notification says when it resolves.
func AlertmanagerConfig(r Receivers, rt Routing) (string, error) {
	severities, err := SeverityRoutes(rt)
	if err != nil {
		return "", err
	}
	type m = map[string]any
	global := m{"resolve_timeout": "5m"}
	if r.EmailTo != "" {
		global["smtp_smarthost"] = r.SMTPHost
		global["smtp_from"] = r.EmailFrom
		global["smtp_require_tls"] = true
		if r.SMTPUser != "" {
			global["smtp_auth_username"] = r.SMTPUser
			global["smtp_auth_password"] = r.SMTPPassword
		}
	}
	receiver := func(name string) m {
		rec := m{"name": name}
		if r.WebhookURL != "" {
			rec["webhook_configs"] = []m{{"url": r.WebhookURL, "send_resolved": true}}
		}
		if r.SlackURL != "" {
			slack := m{"api_url": r.SlackURL, "send_resolved": true,
				"title": `[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} ({{ .CommonLabels.service }}, {{ .CommonLabels.stack }})`,
				"text":  `{{ range .Alerts }}{{ .Annotations.summary }}{{ "\n" }}{{ end }}`}
			if r.SlackChannel != "" {
				slack["channel"] = r.SlackChannel
			}
			rec["slack_configs"] = []m{slack}
		}
		if r.EmailTo != "" {
			rec["email_configs"] = []m{{"to": r.EmailTo, "send_resolved": true}}
		}
		return rec
	}
	var inhibit []m
	for _, i := range Inhibitions() {
		inhibit = append(inhibit, m{"source_matchers": matcherStrings(i.Source), "target_matchers": matcherStrings(i.Target), "equal": i.Equal})
	}
	var routes []m
	for _, sr := range severities {
		route := m{"receiver": sr.Receiver, "matchers": matcherStrings([]Matcher{{"severity", "=", sr.Severity}})}
		if sr.Repeat != "" {
			route["repeat_interval"] = sr.Repeat
		}
		routes = append(routes, route)
	}
	conf := m{
		"global": global,
		"route": m{
			"receiver":        CriticalReceiver,
			"group_by":        GroupBy,
			"group_wait":      rt.GroupWait,
			"group_interval":  rt.GroupInterval,
			"repeat_interval": rt.RepeatInterval,
			"routes":          routes,
		},
		"inhibit_rules": inhibit,
		"receivers":     []m{receiver(CriticalReceiver), receiver(WarningReceiver)},
	}
	var b strings.Builder
	b.WriteString("# Generated by fastapi-infra (components/monitoring); changes are overwritten.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(conf); err != nil {
		return "", fmt.Errorf("rendering alertmanager.yml: %w", err)
	}
	return b.String(), nil
}
