//go:build e2e

package singleserver_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/service"
	"github.com/fastapi-infra/fastapi-infra/components/singleserver"
	"github.com/fastapi-infra/fastapi-infra/components/singleserver/operations"
)

// TestRestoreDrillOnRealDocker is the restore drill the README's Data
// section promises, on the real engine with the component's containers:
// write rows, back up (the backup container's own pg_dump), lose the data
// volume, get an empty database, restore with the driver's code
// (operations.Running, what ./infra restore runs), and read the same rows
// back, through the app too. A backup of a database that is down fails
// loudly.
func TestRestoreDrillOnRealDocker(t *testing.T) {
	r := singleserver.NewRealServer(t, "dev")
	ctx := context.Background()
	args := r.Args()
	// A schedule that does not fire during the test: the drill backs up
	// by hand, as ./infra backup does.
	args.Service.Database.Backup = service.Backup{Schedule: "0 0 1 1 *", Keep: 3}
	plan := r.Plan(args)
	r.Up(plan)
	p := r.Prefix()
	db, app := p+"-db", r.Deployment().Names(p + "-app-")[0]
	psql := func(sql string) string {
		return strings.TrimSpace(r.Exec(db, "psql", "-U", "app", "-d", "app", "-tAc", sql))
	}
	viaApp := func() string {
		return r.Exec(app, "python3", "-c", "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/items').read().decode())")
	}
	psql("INSERT INTO items (name, description, created_at) VALUES ('drill-1', 'kept', now()), ('drill-2', 'kept too', now())")
	before := psql("SELECT string_agg(name || ':' || description, ',' ORDER BY id) FROM items")
	if before != "drill-1:kept,drill-2:kept too" {
		t.Fatalf("rows written: %q", before)
	}

	ops := operations.Running{Engine: r.Engine(), Prefix: p}
	report, err := ops.BackupNow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("backup: %s", report)
	backups, err := ops.Backups(ctx)
	if err != nil || len(backups) != 1 || !strings.HasPrefix(backups[0], "app-") || !strings.HasSuffix(backups[0], ".dump") {
		t.Fatalf("backups after one backup: %v, %v", backups, err)
	}
	if mode := r.Exec(p+"-backup", "stat", "-c", "%a %U", service.BackupDir+"/"+backups[0]); strings.TrimSpace(mode) != "600 root" {
		t.Errorf("the dump is %s, want 600 root (only root may read it)", mode)
	}

	// The data volume is lost: the database comes back empty (a new
	// volume, initialised by the entrypoint), and the app has no table.
	engine, d := r.Engine(), r.Deployment()
	if err := engine.Remove(ctx, d.IDs[db]); err != nil {
		t.Fatal(err)
	}
	delete(d.IDs, db)
	if err := engine.RemoveVolume(ctx, p+"-db-data"); err != nil {
		t.Fatal(err)
	}
	r.Up(plan)
	if tables := psql("SELECT count(*) FROM pg_tables WHERE tablename = 'items'"); tables != "0" {
		t.Fatalf("the new database has the items table (%s): the data volume was not lost", tables)
	}

	// A backup of a database that is down fails, with a non-zero exit.
	if err := engine.Stop(ctx, d.IDs[db], 10); err != nil {
		t.Fatal(err)
	}
	if _, err := ops.BackupNow(ctx); err == nil || !strings.Contains(err.Error(), "backup: FAILED") {
		t.Errorf("a backup with the database down: %v, want the backup container's FAILED line and a non-zero exit", err)
	}
	if err := engine.Start(ctx, d.IDs[db]); err != nil {
		t.Fatal(err)
	}
	if err := engine.WaitHealthy(ctx, d.IDs[db], 60e9); err != nil {
		t.Fatal(err)
	}

	if err := ops.Restore(ctx, "no-such.dump", io.Discard); err == nil || !strings.Contains(err.Error(), backups[0]) {
		t.Errorf("restoring a backup that does not exist: %v, want an error listing %s", err, backups[0])
	}
	var progress strings.Builder
	if err := ops.Restore(ctx, backups[0], &progress); err != nil {
		t.Fatalf("restore: %v\n%s", err, progress.String())
	}
	t.Logf("restore:\n%s", progress.String())
	if after := psql("SELECT string_agg(name || ':' || description, ',' ORDER BY id) FROM items"); after != before {
		t.Errorf("after the restore the rows are %q, want %q", after, before)
	}
	if got := viaApp(); !strings.Contains(got, "drill-1") || !strings.Contains(got, "drill-2") {
		t.Errorf("the app does not serve the restored rows: %s", got)
	}
}

// TestPasswordRotationOnRealDocker changes dbPassword on a running single
// server: the database container is replaced (its password file changed)
// on the same data volume, whose entrypoint ignores the new password; the
// password container applies it through the socket, and the new release
// of replicas, with the new DATABASE_URL, turns healthy and reads the rows
// written before. The old passwords (owner's and app role's) no longer
// open a connection.
func TestPasswordRotationOnRealDocker(t *testing.T) {
	r := singleserver.NewRealServer(t, "dev")
	ctx := context.Background()
	args := r.Args()
	r.Up(r.Plan(args))
	p := r.Prefix()
	db := p + "-db"
	psqlAs := func(user, password, sql string) (string, int) {
		out, code, err := r.Engine().Exec(ctx, r.Deployment().IDs[db], "env", "PGPASSWORD="+password,
			"psql", "-h", "127.0.0.1", "-U", user, "-d", "app", "-tAc", sql)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out), code
	}
	psql := func(password, sql string) (string, int) { return psqlAs("app", password, sql) }
	old, oldApp := "real-docker-test-pw", "real-docker-test-app-pw"
	if _, code := psql(old, "INSERT INTO items (name, description, created_at) VALUES ('before-rotation', 'kept', now())"); code != 0 {
		t.Fatal("writing a row with the first password failed")
	}

	next := args
	next.Service.Database.Password = pulumi.ToSecret(pulumi.String("rotated-pw-2")).(pulumi.StringOutput)
	next.Service.Database.AppPassword = pulumi.ToSecret(pulumi.String("rotated-app-pw-2")).(pulumi.StringOutput)
	next.SecretsDigest = "r2"
	plan := r.Plan(next)
	// The provider replaces the database container (its upload changed):
	// the harness does the same, the data volume stays.
	engine, d := r.Engine(), r.Deployment()
	if _, err := engine.Retire(ctx, d, db); err != nil {
		t.Fatal(err)
	}
	r.Up(plan) // fails unless the new replicas authenticate with the new password
	if got, code := psql("rotated-pw-2", "SELECT name FROM items WHERE name = 'before-rotation'"); code != 0 || got != "before-rotation" {
		t.Errorf("with the new password: %q (exit %d), want the row written before", got, code)
	}
	if _, code := psql(old, "SELECT 1"); code == 0 {
		t.Error("the old password still opens a connection")
	}
	// The app's role rotates with it (dbPassword derives it when
	// dbAppPassword is not set).
	if got, code := psqlAs("app_rw", "rotated-app-pw-2", "SELECT current_user"); code != 0 || got != "app_rw" {
		t.Errorf("the app role's new password: %q (exit %d)", got, code)
	}
	if _, code := psqlAs("app_rw", oldApp, "SELECT 1"); code == 0 {
		t.Error("the app role's old password still opens a connection")
	}
	for _, app := range d.Names(p + "-app-") {
		out := r.Exec(app, "python3", "-c", "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/items').read().decode())")
		if !strings.Contains(out, "before-rotation") {
			t.Errorf("%s does not serve the row written before the rotation: %s", app, out)
		}
	}
}
