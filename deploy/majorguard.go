package deploy

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"

	"github.com/fastapi-infra/fastapi-infra/stacks"
)

// DatabaseMajorGuard refuses a db.image of another PostgreSQL major version
// than the database the stack runs (stacks.MajorUpgradeError), before the
// engine starts. The program refuses it too, from the databaseImage output
// of the stack's last update; this reads the resources in the state, so a
// stack last updated before that output existed is guarded as well.
//
// exported is the stack's state (SelectAndRead), read once for this and
// FailedMigrations.
func DatabaseMajorGuard(exported apitype.UntypedDeployment, cfg auto.ConfigMap, stack string) error {
	return majorGuard(exported, configuredDatabaseImage(cfg), stack)
}

func majorGuard(exported apitype.UntypedDeployment, next, stack string) error {
	running, inCluster, err := runningDatabaseImage(exported)
	if err != nil {
		return err
	}
	return stacks.MajorUpgradeError(running, next, stack, inCluster)
}

// configuredDatabaseImage is the stack's db.image (an object field, as
// config keys are paths), or the key's default.
func configuredDatabaseImage(cfg auto.ConfigMap) string {
	var db struct{ Image string }
	if raw := cfg[stacks.FullKey("db")].Value; raw != "" {
		_ = json.Unmarshal([]byte(raw), &db) // a malformed object is the program's error to report
	}
	if db.Image != "" {
		return db.Image
	}
	k, _ := stacks.LookupKey("db.image")
	return fmt.Sprint(k.Default)
}

// runningDatabaseImage is the database image in the stack's state: the
// single server's db image resource, or the in-cluster database's
// StatefulSet; "" when the stack has none (yet).
func runningDatabaseImage(exported apitype.UntypedDeployment) (image string, inCluster bool, err error) {
	if len(exported.Deployment) == 0 {
		return "", false, nil
	}
	var d apitype.DeploymentV3
	if err := json.Unmarshal(exported.Deployment, &d); err != nil {
		return "", false, fmt.Errorf("reading the stack's state (deployment version %d): %w", exported.Version, err)
	}
	for _, r := range d.Resources {
		if r.Delete {
			continue
		}
		switch {
		case r.Type == "docker:index/remoteImage:RemoteImage" && strings.HasSuffix(r.URN.Name(), "-db-image"):
			if name, ok := r.Outputs["name"].(string); ok {
				return name, false, nil
			}
		case r.Type == "kubernetes:apps/v1:StatefulSet" && dig(r.Outputs, "metadata", "labels", "app.kubernetes.io/component") == "database":
			if cs, ok := dig(r.Outputs, "spec", "template", "spec", "containers").([]any); ok && len(cs) > 0 {
				if c, ok := cs[0].(map[string]any); ok {
					if image, ok := c["image"].(string); ok {
						return image, true, nil
					}
				}
			}
		}
	}
	return "", false, nil
}

func dig(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}
