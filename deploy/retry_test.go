package deploy

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// The state as pulumi-docker leaves it after an `up` whose migration
// exited 3: only that migration is run again; a migration that passed, a
// failed run already marked for deletion and other containers are not.
func TestFailedMigrationsAreRunAgain(t *testing.T) {
	migration := []any{map[string]any{"label": "fastapi-infra.role", "value": "migration"}}
	container := func(name string, labels []any, exitCode any, pendingDelete bool) apitype.ResourceV3 {
		outputs := map[string]any{"name": name}
		if labels != nil {
			outputs["labels"] = labels
		}
		if exitCode != nil {
			outputs["exitCode"] = exitCode
		}
		return apitype.ResourceV3{Type: "docker:index/container:Container", Delete: pendingDelete, Outputs: outputs,
			URN: resource.URN("urn:pulumi:dev::fastapi-infra::fastapi-infra:singleserver:Server$docker:index/container:Container::" + name)}
	}
	d := apitype.DeploymentV3{Resources: []apitype.ResourceV3{
		{Type: "pulumi:pulumi:Stack", URN: "urn:pulumi:dev::fastapi-infra::pulumi:pulumi:Stack::fastapi-infra-dev"},
		container("fastapi-migrate-old", migration, 0, false),
		container("fastapi-migrate-failed", migration, 3, false),
		container("fastapi-migrate-replaced", migration, 1, true),
		container("fastapi-app-1", []any{map[string]any{"label": "fastapi-infra.release", "value": "abc"}}, 0, false),
		container("fastapi-secrets-carrier", nil, nil, false),
		container("other-one-shot", nil, 2, false),
	}}
	raw, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := FailedMigrations(apitype.UntypedDeployment{Version: 3, Deployment: raw})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"urn:pulumi:dev::fastapi-infra::fastapi-infra:singleserver:Server$docker:index/container:Container::fastapi-migrate-failed"}
	if !slices.Equal(got, want) {
		t.Errorf("failed migrations %v, want %v", got, want)
	}

	// A stack that was never deployed has no state to read.
	if got, err := FailedMigrations(apitype.UntypedDeployment{}); err != nil || got != nil {
		t.Errorf("a new stack: %v, %v", got, err)
	}
}
