package deploy

import (
	"encoding/json"
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"

	"github.com/fastapi-infra/fastapi-infra/components/singleserver"
)

// FailedMigrations are the URNs of the single server's migration containers
// that the stack's state holds with a non-zero exit code: the migration of
// an `up` that failed on it.
//
// Why the driver has to find them: pulumi-docker keeps a one-shot
// container, exit code and all, as a created resource, and nothing of its
// inputs changes on the next `up`, so the engine would keep the failed run
// and the gate would fail again on its recorded exit code. A transient
// cause (the database restarting, a lock timeout) would then need an
// undocumented `--replace`. `up` and `preview` pass these URNs as
// replacements instead, so the next `up` runs the migration again, as the
// Kubernetes migration Job's replaceUnready does there. exported is the
// stack's state (SelectAndRead).
func FailedMigrations(exported apitype.UntypedDeployment) ([]string, error) {
	if len(exported.Deployment) == 0 {
		return nil, nil // a new stack: no state yet
	}
	var d apitype.DeploymentV3
	if err := json.Unmarshal(exported.Deployment, &d); err != nil {
		return nil, fmt.Errorf("reading the stack's state (deployment version %d): %w", exported.Version, err)
	}
	var urns []string
	for _, r := range d.Resources {
		if r.Type != "docker:index/container:Container" || r.Delete || !isMigration(r.Outputs["labels"]) {
			continue
		}
		if code, ok := r.Outputs["exitCode"].(float64); ok && code != 0 {
			urns = append(urns, string(r.URN))
		}
	}
	return urns, nil
}

// isMigration reads the container's labels as pulumi-docker stores them (a
// list of {label, value}) for the migration role the component sets.
func isMigration(labels any) bool {
	list, _ := labels.([]any)
	for _, l := range list {
		m, _ := l.(map[string]any)
		if m["label"] == singleserver.RoleLabel && m["value"] == singleserver.MigrationRole {
			return true
		}
	}
	return false
}
