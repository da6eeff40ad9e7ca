//go:build e2e

package singleserver_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/fastapi-infra/fastapi-infra/components/singleserver"
	"github.com/fastapi-infra/fastapi-infra/components/singleserver/operations"
)

func init() { singleserver.TraefikMaintenance = traefikMaintenance }

// traefikMaintenance: behind Traefik the page is a container of its own
// that Traefik routes to ahead of the replicas; the same checks as behind
// nginx (maintenanceAndRestore), and the container gone once it is off.
func traefikMaintenance(t *testing.T, r *singleserver.RealServer, client *http.Client, base string) {
	ctx := context.Background()
	ops := operations.Running{Engine: r.Docker(), Prefix: r.Prefix()}
	backup, err := ops.BackupNow(ctx)
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, backup)
	}
	backups, err := ops.Backups(ctx)
	if err != nil || len(backups) == 0 {
		t.Fatalf("the backups: %v %v", backups, err)
	}
	maintenanceAndRestore(t, ops, client, base, backups[0])
	if left, err := r.Docker().List(ctx, "fastapi-infra.role="+operations.MaintenanceRole); err != nil || len(left) != 0 {
		t.Errorf("the maintenance page's container is still there after off: %v %v", left, err)
	}
}
