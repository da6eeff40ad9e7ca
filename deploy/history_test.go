package deploy

import (
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
)

// TestHistoryLines: one line per update with who, the release and the keys
// that changed since the update before. The CLI's history holds no secret
// (not even encrypted), so a rotation shows only in the resource changes.
func TestHistoryLines(t *testing.T) {
	end1, end2 := "2026-12-07T05:00:21.000Z", "2026-12-07T06:00:09.000Z"
	first := auto.UpdateSummary{Version: 1, Kind: "update", Result: "succeeded", StartTime: "2026-12-07T05:00:00.000Z", EndTime: &end1,
		Message: `"ops@laptop"`, ResourceChanges: &map[string]int{"create": 25},
		Config: auto.ConfigMap{
			"fastapi-infra:app":        {Value: `{"image":"ghcr.io/acme/api:1.0.0","env":{"LOG_LEVEL":"info"},"replicas":2}`},
			"fastapi-infra:dbPassword": {Secret: true}, // pulumi stack history --json shows no secret
			"fastapi-infra:domain":     {Value: "api.example.com"},
		}}
	second := auto.UpdateSummary{Version: 2, Kind: "update", Result: "failed", StartTime: "2026-12-07T06:00:00.000Z", EndTime: &end2,
		Environment:     map[string]string{"git.author": "Dev Eloper"},
		ResourceChanges: &map[string]int{"same": 20, "create": 3, "delete": 0},
		Config: auto.ConfigMap{
			"fastapi-infra:app":        {Value: `{"image":"ghcr.io/acme/api:1.1.0","env":{"LOG_LEVEL":"debug"},"replicas":2}`},
			"fastapi-infra:dbPassword": {Secret: true},
		}}
	lines := HistoryLines([]auto.UpdateSummary{second, first})
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2: %q", len(lines), lines)
	}
	want := "#2  2026-12-07 06:00:00Z  update  failed  9s  Dev Eloper  app.image=ghcr.io/acme/api:1.1.0  changed: app.env.LOG_LEVEL, app.image, domain removed  create 3"
	if lines[0] != want {
		t.Errorf("newest line:\n got %s\nwant %s", lines[0], want)
	}
	if want := "#1  2026-12-07 05:00:00Z  update  succeeded  21s  ops@laptop  app.image=ghcr.io/acme/api:1.0.0  create 25"; lines[1] != want {
		t.Errorf("first line:\n got %s\nwant %s", lines[1], want)
	}
}

// TestHistoryNumbersWithoutVersions: the file backend's history has no
// version numbers; the lines count from the oldest.
func TestHistoryNumbersWithoutVersions(t *testing.T) {
	lines := HistoryLines([]auto.UpdateSummary{{Kind: "update"}, {Kind: "update"}})
	if len(lines) != 2 || lines[0][:3] != "#2 " || lines[1][:3] != "#1 " {
		t.Errorf("numbers: %q", lines)
	}
}
