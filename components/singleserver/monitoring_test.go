package singleserver

import (
	"testing"

	"github.com/fastapi-infra/fastapi-infra/components/monitoring"
)

// goldenPrometheus is the dev stack's prometheus.yml with Alertmanager.
func goldenPrometheus() PrometheusConfig {
	return PrometheusConfig{Job: "fastapi", Upstream: "fastapi-app", Port: 8000, RuleFile: prometheusDir + "rules.yml", Interval: "15s",
		ExternalLabels: [][2]string{{"environment", "development"}, {"stack", "dev"}}, Alertmanager: "fastapi-dev-alertmanager:9093",
		PostgresJob: "fastapi-postgres", PostgresExporter: "fastapi-dev-postgres-exporter:9187"}
}

func TestPrometheusConfigGolden(t *testing.T) {
	got, err := RenderPrometheus(goldenPrometheus())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "prometheus.yml", got)
	got, err = monitoring.AlertmanagerConfig(monitoring.Receivers{WebhookURL: "https://hooks.example.com/alerts"},
		monitoring.Routing{GroupWait: "30s", GroupInterval: "5m", RepeatInterval: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "alertmanager.yml", got)
}
