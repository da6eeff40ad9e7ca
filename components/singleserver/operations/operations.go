// Package operations runs the day-2 operations of a deployed single server
// through its Docker engine: a backup now, the list of backups, a restore.
// The driver (./infra backup, ./infra restore) and the restore drill of the
// real-Docker tests run the same code.
package operations

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/fastapi-infra/fastapi-infra/components/service"
	"github.com/fastapi-infra/fastapi-infra/components/singleserver"
	"github.com/fastapi-infra/fastapi-infra/internal/dockerapi"
)

// Running is a deployed single server, reached through its Docker engine.
// Prefix is the stack's
// docker.namePrefix (the Docker names of its containers start with it).
type Running struct {
	Engine *dockerapi.Client
	Prefix string
}

func (r Running) backupContainer() string { return r.Prefix + "-backup" }

// backupAction runs an action of backup.sh in the backup container, with
// the container's own environment (database, folder, password file).
func (r Running) backupAction(ctx context.Context, action ...string) (string, error) {
	out, code, err := r.Engine.Exec(ctx, r.backupContainer(), service.BackupCommand(action...)...)
	if err != nil {
		return out, fmt.Errorf("running %q in %s (is db.backup.schedule set, and the stack up?): %w", strings.Join(action, " "), r.backupContainer(), err)
	}
	if code != 0 {
		return out, fmt.Errorf("%s in %s exited with code %d:\n%s", strings.Join(action, " "), r.backupContainer(), code, strings.TrimSpace(out))
	}
	return out, nil
}

// actions are backup.sh's actions run here.
func (r Running) actions() service.BackupActions {
	return service.BackupActions{Run: r.backupAction, Where: "in the backups volume"}
}

// BackupNow takes a backup at once, outside the schedule, and returns the
// backup container's report of it.
func (r Running) BackupNow(ctx context.Context) (string, error) {
	return r.actions().Now(ctx)
}

// Backups lists the backups in the backups volume, newest first.
func (r Running) Backups(ctx context.Context) ([]string, error) {
	return r.actions().List(ctx)
}

// Restore puts a backup back: it puts the proxy's maintenance page up (a
// 503 with Retry-After to every request, not 502s), stops the app
// replicas, restores the dump in one transaction, runs the release's
// migration again (the dump may be of an older schema), starts the
// replicas, waiting until each is healthy, and takes the page down. A
// restore that fails changes nothing in the database and starts the
// replicas again.
func (r Running) Restore(ctx context.Context, backup string, progress io.Writer) error {
	if kind, err := r.Kind(ctx); err == nil && kind == repositoryKind {
		return r.restoreTo(ctx, Point{Backup: backup}, progress)
	}
	if err := r.actions().Check(ctx, backup); err != nil {
		return err
	}
	paused, err := r.pause(ctx, "Restoring a backup; the service is back in a minute.", progress)
	if err != nil {
		return err
	}
	fmt.Fprintf(progress, "restore: restoring %s\n", backup)
	if _, err := r.backupAction(ctx, "restore", backup); err != nil {
		return fmt.Errorf("%w\nthe database is as it was before (one transaction); %v", err, r.resume(ctx, paused, false, progress))
	}
	return r.resume(ctx, paused, true, progress)
}

// releaseMigration is the migration container of the running release,
// the one its replicas' fastapi-infra.migration label names (its ID), in a
// list of one; none when the replicas name none (migration.strategy none)
// or it is gone. Not every migration container of the stack: a failed
// one of a release that never started stays for its rerun, and running it
// again failed the restore (a rollback refused past migration 0002 left
// the older image's migration, which cannot run on the newer schema).
func (r Running) releaseMigration(ctx context.Context, apps []string) ([]string, error) {
	if len(apps) == 0 {
		return nil, nil
	}
	var replica struct {
		Config struct{ Labels map[string]string }
	}
	if err := r.Engine.InspectInto(ctx, apps[0], &replica); err != nil {
		return nil, err
	}
	found, err := r.Engine.List(ctx, singleserver.RoleLabel+"="+singleserver.MigrationRole)
	if err != nil {
		return nil, err
	}
	if id, ok := MigrationOf(r.Prefix, replica.Config.Labels, found); ok {
		return []string{id}, nil
	}
	return nil, nil
}

// MigrationOf picks the container ID of the migration a replica's labels
// name among the stack's migration containers (Docker name -> ID).
func MigrationOf(prefix string, replicaLabels, migrations map[string]string) (string, bool) {
	release := replicaLabels["fastapi-infra.migration"]
	if release == "" {
		return "", false
	}
	id, ok := migrations[prefix+"-migrate-"+release]
	return id, ok
}

// stillInMaintenance is what a failed restore adds about the page.
func (r Running) stillInMaintenance(maintained error) string {
	if maintained != nil {
		return ""
	}
	return "; the maintenance page stays on until ./infra maintenance off <stack>"
}

// containers are the IDs of this server's containers of a role (app,
// migrate) with a label (key or key=value).
func (r Running) containers(ctx context.Context, label, role string) ([]string, error) {
	found, err := r.Engine.List(ctx, label)
	if err != nil {
		return nil, err
	}
	var ids []string
	for name, id := range found {
		if Owns(r.Prefix, role, name) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Owns says whether a Docker name is the stack's container of a role:
// PREFIX-ROLE-ID or PREFIX-ROLE-N-ID (a replica), ID being a release's or
// migration's 10 hex digits. Not a name prefix: another stack on the host
// named PREFIX-staging has PREFIX-staging-app-1-ID, and a restore of this
// stack stopped its replicas too. Not a new label either: labels are fixed
// at creation, and one on every container would replace the database on
// the next up.
func Owns(prefix, role, name string) bool {
	rest, ok := strings.CutPrefix(name, prefix+"-"+role+"-")
	if !ok {
		return false
	}
	if n, id, replica := strings.Cut(rest, "-"); replica {
		if n == "" || strings.Trim(n, "0123456789") != "" {
			return false
		}
		rest = id
	}
	return len(rest) == 10 && strings.Trim(rest, "0123456789abcdef") == ""
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
