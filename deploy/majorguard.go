package deploy

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"

	"github.com/fastapi-infra/fastapi-infra/stacks"
)

// DatabaseMajorGuard refuses a db.image of another PostgreSQL major version
// than the database the stack runs, before the engine replaces anything.
//
// Why: PostgreSQL's data directory is tied to its major version. The new
// image's server refuses the old volume ("database files are incompatible
// with server"), and by then the old container or pod is gone: the release
// has no database until someone reverts db.image. A major upgrade is a
// dump and a restore, which the error spells out.
//
// The versions come from the image references (postgres:15, postgres:16.4,
// repo/pg:15-alpine: the tag's leading number); a reference without one
// (a digest, a name like "stable") cannot be checked and passes.
//
// exported is the stack's state (SelectAndRead), read once for this and
// FailedMigrations.
func DatabaseMajorGuard(exported apitype.UntypedDeployment, cfg auto.ConfigMap, stack string) error {
	return majorGuard(exported, configuredDatabaseImage(cfg), stack)
}

func majorGuard(exported apitype.UntypedDeployment, next, stack string) error {
	running, inCluster, err := runningDatabaseImage(exported)
	if err != nil || running == "" {
		return err
	}
	was, ok1 := PostgresMajor(running)
	will, ok2 := PostgresMajor(next)
	if !ok1 || !ok2 || was == will {
		return nil
	}
	steps := fmt.Sprintf(`  1. ./infra backup %[1]s                       (a dump of the running database, in the backups volume)
  2. move the old data volume aside: copy it, then docker volume rm it (the database container stopped)
  3. pulumi config set --path db.image %[2]s --stack %[1]s, then ./infra up %[1]s   (an empty PostgreSQL %[3]d)
  4. ./infra restore %[1]s                      (the newest dump, into the new server)`, stack, next, will)
	if inCluster {
		steps = fmt.Sprintf(`  1. kubectl create job %[1]s-upgrade-dump --from=cronjob/<app.name>-db-backup   (a dump in the backups claim)
  2. delete the database's StatefulSet and its data PersistentVolumeClaim (the backups claim stays)
  3. pulumi config set --path db.image %[2]s --stack %[1]s, then ./infra up %[1]s   (an empty PostgreSQL %[3]d)
  4. pg_restore the dump from a Job on the backups claim (docs/operations.md: Data)`, stack, next, will)
	}
	return fmt.Errorf("%s: %s is PostgreSQL %d, but the stack's database runs %s, PostgreSQL %d: the new server would refuse the data directory, and the release would have no database.\nNothing was changed. Keep db.image at PostgreSQL %d, or upgrade by dump and restore:\n%s",
		stacks.FullKey("db.image"), next, will, running, was, was, steps)
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

// PostgresMajor reads the major version from an image reference's tag:
// postgres:15, postgres:15.8-bookworm and fastapi-infra-postgres:15-<hash>
// are 15. A tag that does not start with a version (latest, a digest, a
// content hash such as 624483d65a00) says nothing.
func PostgresMajor(ref string) (int, bool) {
	ref, _, _ = strings.Cut(ref, "@")
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return 0, false
	}
	tag := ref[i+1:]
	end := 0
	for end < len(tag) && tag[end] >= '0' && tag[end] <= '9' {
		end++
	}
	if end < len(tag) && tag[end] != '.' && tag[end] != '-' {
		return 0, false // digits that run on into letters: a hash
	}
	n, err := strconv.Atoi(tag[:end])
	if err != nil || n < 9 || n > 99 {
		return 0, false
	}
	return n, true
}
