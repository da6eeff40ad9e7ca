package deploy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

func state(t *testing.T, resources ...apitype.ResourceV3) apitype.UntypedDeployment {
	t.Helper()
	raw, err := json.Marshal(apitype.DeploymentV3{Resources: resources})
	if err != nil {
		t.Fatal(err)
	}
	return apitype.UntypedDeployment{Version: 3, Deployment: raw}
}

func dbImageResource(name string) apitype.ResourceV3 {
	return apitype.ResourceV3{Type: "docker:index/remoteImage:RemoteImage", Outputs: map[string]any{"name": name},
		URN: resource.URN("urn:pulumi:dev::fastapi-infra::fastapi-infra:index:SingleServer$docker:index/remoteImage:RemoteImage::fastapi-db-image")}
}

// TestDatabaseMajorGuard: a db.image of another major than the running
// database is refused with the key, both versions and the upgrade path; a
// minor update, a new stack and an unreadable tag pass.
func TestDatabaseMajorGuard(t *testing.T) {
	running := state(t,
		apitype.ResourceV3{Type: "docker:index/remoteImage:RemoteImage", Outputs: map[string]any{"name": "fastapi-infra-app:dev"},
			URN: "urn:pulumi:dev::fastapi-infra::fastapi-infra:index:SingleServer$docker:index/remoteImage:RemoteImage::fastapi-app-image"},
		dbImageResource("postgres:15.8"))
	err := majorGuard(running, "postgres:16.4", "dev")
	if err == nil {
		t.Fatal("postgres:15.8 -> postgres:16.4 was let through")
	}
	for _, want := range []string{"fastapi-infra:db.image: postgres:16.4 is PostgreSQL 16, but the stack's database runs postgres:15.8, PostgreSQL 15",
		"Nothing was changed", "./infra backup dev", "./infra restore dev"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, err)
		}
	}
	for _, next := range []string{"postgres:15", "postgres:15.10-bookworm", "registry.example.com:5000/pg@sha256:abc", "mycorp/pg:stable"} {
		if err := majorGuard(running, next, "dev"); err != nil {
			t.Errorf("%s refused: %v", next, err)
		}
	}
	// A replaced image on its way out (pending delete) is not the running one.
	old := dbImageResource("postgres:14")
	old.Delete = true
	if err := majorGuard(state(t, old, dbImageResource("postgres:15")), "postgres:15", "dev"); err != nil {
		t.Errorf("a pending delete counted: %v", err)
	}
	if err := majorGuard(apitype.UntypedDeployment{}, "postgres:16", "dev"); err != nil {
		t.Errorf("a new stack: %v", err)
	}

	inCluster := state(t, apitype.ResourceV3{Type: "kubernetes:apps/v1:StatefulSet", URN: "urn:pulumi:staging::fastapi-infra::kubernetes:apps/v1:StatefulSet::fastapi-db",
		Outputs: map[string]any{
			"metadata": map[string]any{"labels": map[string]any{"app.kubernetes.io/component": "database"}},
			"spec":     map[string]any{"template": map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"image": "postgres:15"}}}}},
		}})
	if err := majorGuard(inCluster, "postgres:17", "staging"); err == nil || !strings.Contains(err.Error(), "runs postgres:15, PostgreSQL 15") ||
		!strings.Contains(err.Error(), "--from=cronjob/") {
		t.Errorf("the in-cluster database: %v", err)
	}
}

func TestConfiguredDatabaseImage(t *testing.T) {
	if got := configuredDatabaseImage(auto.ConfigMap{"fastapi-infra:db": {Value: `{"image":"postgres:16"}`}}); got != "postgres:16" {
		t.Errorf("db.image set: %s", got)
	}
	if got := configuredDatabaseImage(auto.ConfigMap{}); got != "postgres:15" {
		t.Errorf("the default: %s", got)
	}
}
