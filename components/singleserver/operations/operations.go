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
	"time"

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

// Restore puts a backup back: it stops the app replicas (the proxy answers
// 502 meanwhile), restores the dump in one transaction, runs the release's
// migration again (the dump may be of an older schema) and starts the
// replicas, waiting until each is healthy. A restore that fails changes
// nothing in the database and starts the replicas again.
func (r Running) Restore(ctx context.Context, backup string, progress io.Writer) error {
	if err := r.actions().Check(ctx, backup); err != nil {
		return err
	}
	apps, err := r.containers(ctx, "fastapi-infra.release")
	if err != nil {
		return err
	}
	migrations, err := r.containers(ctx, singleserver.RoleLabel+"="+singleserver.MigrationRole)
	if err != nil {
		return err
	}
	fmt.Fprintf(progress, "restore: stopping %d app replicas\n", len(apps))
	for _, id := range apps {
		if err := r.Engine.Stop(ctx, id, 30); err != nil {
			return err
		}
	}
	start := func() error {
		fmt.Fprintf(progress, "restore: starting the app replicas\n")
		for _, id := range apps {
			if err := r.Engine.Start(ctx, id); err != nil {
				return err
			}
		}
		for _, id := range apps {
			if err := r.Engine.WaitHealthy(ctx, id, 2*time.Minute); err != nil {
				return err
			}
		}
		return nil
	}
	fmt.Fprintf(progress, "restore: restoring %s\n", backup)
	if _, err := r.backupAction(ctx, "restore", backup); err != nil {
		return fmt.Errorf("%w\nthe database is as it was before (one transaction); %v", err, start())
	}
	for _, id := range migrations {
		fmt.Fprintf(progress, "restore: running the migration again\n")
		if err := r.Engine.Start(ctx, id); err != nil {
			return err
		}
		if code, err := r.Engine.WaitExit(ctx, id); err != nil || code != 0 {
			logs, _ := r.Engine.Logs(ctx, id)
			return fmt.Errorf("the migration after the restore exited with code %d (%v); the app replicas stay stopped. Its log:\n%s", code, err, lastLines(logs, 20))
		}
	}
	return start()
}

// containers are the IDs of this server's containers with a label (key or
// key=value), by Docker name.
func (r Running) containers(ctx context.Context, label string) ([]string, error) {
	found, err := r.Engine.List(ctx, label)
	if err != nil {
		return nil, err
	}
	var ids []string
	for name, id := range found {
		if strings.HasPrefix(name, r.Prefix+"-") {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
