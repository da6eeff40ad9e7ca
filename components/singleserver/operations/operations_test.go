package operations_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fastapi-infra/fastapi-infra/components/service"
	"github.com/fastapi-infra/fastapi-infra/components/singleserver/operations"
)

// TestOwnsOnlyItsStacksContainers: a restore of the stack named fastapi
// selected every container whose name began with "fastapi-", so it also
// stopped the replicas of a stack named fastapi-staging on the same host.
func TestOwnsOnlyItsStacksContainers(t *testing.T) {
	cases := []struct {
		role, name string
		want       bool
	}{
		{"app", "fastapi-app-1-ef63fd3212", true},
		{"app", "fastapi-app-12-0123456789", true},
		{"migrate", "fastapi-migrate-6b831cdfc9", true},
		{"app", "fastapi-staging-app-1-ef63fd3212", false},
		{"migrate", "fastapi-staging-migrate-6b831cdfc9", false},
		{"app", "fastapi-app-app-1-ef63fd3212", false}, // a stack named fastapi-app
		{"app", "fastapi-app-1-ef63fd321", false},
		{"app", "fastapi-app-x-ef63fd3212", false},
		{"app", "fastapi-app--ef63fd3212", false},
		{"migrate", "fastapi-migrate-secrets-6b831cdfc9", false},
		{"app", "other-app-1-ef63fd3212", false},
	}
	for _, c := range cases {
		if got := operations.Owns("fastapi", c.role, c.name); got != c.want {
			t.Errorf("Owns(fastapi, %s, %s) = %v, want %v", c.role, c.name, got, c.want)
		}
	}
}

func TestMaintenancePages(t *testing.T) {
	page, pageJSON := service.MaintenancePages(`Back at 10:00 <b>"soon"</b>`)
	if !strings.Contains(page, "Back at 10:00 &lt;b&gt;&#34;soon&#34;&lt;/b&gt;") {
		t.Errorf("the HTML page does not escape the message: %s", page)
	}
	var body struct{ Status, Message string }
	if err := json.Unmarshal([]byte(pageJSON), &body); err != nil || body.Status != "maintenance" || body.Message != `Back at 10:00 <b>"soon"</b>` {
		t.Errorf("the JSON page %s: %+v %v", pageJSON, body, err)
	}
	if page, _ := service.MaintenancePages(" "); !strings.Contains(page, service.DefaultMaintenanceMessage) {
		t.Errorf("no message: %s", page)
	}
}

// TestRestoreMigratesWithTheRunningRelease: the migration a restore runs
// again is the running release's, named by its replicas, not every
// migration container of the stack: a failed one of a release that never
// started (a refused rollback's) stays for its rerun, and running it made
// the restore fail ("Can't locate revision identified by '0002'").
func TestRestoreMigratesWithTheRunningRelease(t *testing.T) {
	migrations := map[string]string{"fastapi-migrate-b0b0b0b0b0": "id-running", "fastapi-migrate-a1a1a1a1a1": "id-failed-older",
		"fastapi-staging-migrate-b0b0b0b0b0": "id-other-stack"}
	if id, ok := operations.MigrationOf("fastapi", map[string]string{"fastapi-infra.migration": "b0b0b0b0b0"}, migrations); !ok || id != "id-running" {
		t.Errorf("the running release's migration: %q %v", id, ok)
	}
	if id, ok := operations.MigrationOf("fastapi", map[string]string{}, migrations); ok {
		t.Errorf("replicas that name no migration (strategy none) ran %q", id)
	}
	if id, ok := operations.MigrationOf("fastapi", map[string]string{"fastapi-infra.migration": "c2c2c2c2c2"}, migrations); ok {
		t.Errorf("a migration that is gone ran %q", id)
	}
}
