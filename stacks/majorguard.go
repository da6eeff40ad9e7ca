package stacks

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// databaseImageOutput is the stack output that records the database image
// the stack's own database runs, for the next update's guard.
const databaseImageOutput = "databaseImage"

// guardDatabaseMajor refuses a db.image of another PostgreSQL major version
// than the stack's own database runs, before any resource is registered:
// in the program, so plain `pulumi up` refuses as the driver does. The
// running image is the stack's own last output, read with the engine's
// readStackOutputs invoke: not a StackReference, which is a resource
// whose recorded outputs lag one update behind, so that every refresh
// after an update that changed an output proposed to update it (the
// nightly drift check would fail on it).
func (c *Config) guardDatabaseMajor(ctx *pulumi.Context) error {
	if c.DB.Mode == service.DatabaseExternal {
		return nil
	}
	self := fmt.Sprintf("%s/%s/%s", ctx.Organization(), ctx.Project(), ctx.Stack())
	var read struct {
		Outputs map[string]any `pulumi:"outputs"`
	}
	var err error
	// The file backend writes the stack's checkpoint as the update
	// starts; a read at that moment saw a partial file ("failed to load
	// checkpoint: EOF", once in a few new stacks): read again.
	for attempt := 0; attempt < 20; attempt++ {
		if err = ctx.Invoke(readStackOutputs, map[string]any{"name": self}, &read); err == nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("reading the stack's last %s output (to refuse a PostgreSQL major upgrade): %w", databaseImageOutput, err)
	}
	running, _ := read.Outputs[databaseImageOutput].(string)
	return MajorUpgradeError(running, c.DB.Image, ctx.Stack(), c.Architecture == Kubernetes)
}

// readStackOutputs is the engine's built-in invoke that reads a stack's
// outputs.
const readStackOutputs = "pulumi:pulumi:readStackOutputs"

// MajorUpgradeError is the refusal of db.image next while the stack's
// database runs running ("" when it runs none yet), or nil.
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
func MajorUpgradeError(running, next, stack string, inCluster bool) error {
	if running == "" {
		return nil
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
		FullKey("db.image"), next, will, running, was, was, steps)
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
