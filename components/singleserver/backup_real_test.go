//go:build e2e

package singleserver_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/service"
	"github.com/fastapi-infra/fastapi-infra/components/singleserver"
	"github.com/fastapi-infra/fastapi-infra/components/singleserver/operations"
	"github.com/fastapi-infra/fastapi-infra/internal/loadgen"
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
	r.Up(args)
	p := r.Prefix()
	db, app := p+"-db", r.Apps()[0]
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

	ops := operations.Running{Engine: r.Docker(), Prefix: p}
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

	// The data volume is lost with its container: `up --refresh` finds
	// both gone and makes them again, and the database comes back empty
	// (a new volume, initialised by the entrypoint): the app has no table.
	engine := r.Docker()
	if err := engine.Remove(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := engine.RemoveVolume(ctx, p+"-db-data"); err != nil {
		t.Fatal(err)
	}
	r.UpRefreshing(args)
	if tables := psql("SELECT count(*) FROM pg_tables WHERE tablename = 'items'"); tables != "0" {
		t.Fatalf("the new database has the items table (%s): the data volume was not lost", tables)
	}

	// A backup of a database that is down fails, with a non-zero exit.
	if err := engine.Stop(ctx, db, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := ops.BackupNow(ctx); err == nil || !strings.Contains(err.Error(), "backup: FAILED") {
		t.Errorf("a backup with the database down: %v, want the backup container's FAILED line and a non-zero exit", err)
	}
	if err := engine.Start(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := engine.WaitHealthy(ctx, db, 60e9); err != nil {
		t.Fatal(err)
	}

	if err := ops.Restore(ctx, "no-such.dump", io.Discard); err == nil || !strings.Contains(err.Error(), backups[0]) {
		t.Errorf("restoring a backup that does not exist: %v, want an error listing %s", err, backups[0])
	}
	client, base := singleserver.LocalClient(args)
	maintenanceAndRestore(t, ops, client, base, backups[0])
	if after := psql("SELECT string_agg(name || ':' || description, ',' ORDER BY id) FROM items"); after != before {
		t.Errorf("after the restore the rows are %q, want %q", after, before)
	}
	if got := viaApp(); !strings.Contains(got, "drill-1") || !strings.Contains(got, "drill-2") {
		t.Errorf("the app does not serve the restored rows: %s", got)
	}

	// ./infra exec: a one-off container of the release reads the rows
	// with the replicas' own DATABASE_URL file, as the app user, without
	// the replicas' network alias; its exit code comes back and it is
	// removed.
	var out strings.Builder
	var name string
	code, err := ops.Exec(ctx, []string{"python3", "-c", `import os, sys, psycopg2
c = psycopg2.connect(open(os.environ["DATABASE_URL_FILE"]).read().strip())
cur = c.cursor(); cur.execute("SELECT string_agg(name, ',' ORDER BY id) FROM items")
print("rows", cur.fetchone()[0], "uid", os.getuid(), "hostname", os.uname().nodename)
sys.exit(3)`}, &out, func(n string) { name = n })
	if err != nil || code != 3 || !strings.Contains(out.String(), "rows drill-1,drill-2 uid 10001") {
		t.Errorf("exec: exit %d, %v, output %q; want the restored rows as uid 10001 and exit 3", code, err, out.String())
	}
	if !strings.HasPrefix(name, p+"-exec-") {
		t.Errorf("the one-off container was named %q", name)
	}
	if left, err := engine.List(ctx, "fastapi-infra.role="+operations.ExecRole); err != nil || len(left) != 0 {
		t.Errorf("one-off containers left after exec: %v, %v", left, err)
	}
	if _, err := ops.Exec(ctx, nil, io.Discard, nil); err == nil {
		t.Error("exec without a command was accepted")
	}
}

// TestPasswordRotationOnRealDocker changes dbPassword and the app role's
// password on a running single server under 50 requests a second: the
// database container is not replaced (it was, and PostgreSQL restarted
// under the running release: 2 of 164 requests failed at 10 req/s); the
// roles step applies the new passwords through the socket (ALTER ROLE),
// and the new release of replicas, with the new DATABASE_URL, turns
// healthy and reads the rows written before. No request fails, and the
// old passwords no longer open a connection.
func TestPasswordRotationOnRealDocker(t *testing.T) {
	r := singleserver.NewRealServer(t, "dev")
	ctx := context.Background()
	args := r.Args()
	r.Up(args)
	p := r.Prefix()
	db := p + "-db"
	psqlAs := func(user, password, sql string) (string, int) {
		out, code, err := r.Docker().Exec(ctx, db, "env", "PGPASSWORD="+password,
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
	before, err := r.Docker().Inspect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	// The app's login, from a replica's own DATABASE_URL: a login of
	// this rotation's, a member of app_rw.
	login := func() string {
		url := r.Exec(r.Apps()[0], "cat", "/run/secrets/DATABASE_URL")
		user, _, _ := strings.Cut(strings.TrimPrefix(url, "postgresql://"), ":")
		return user
	}
	oldLogin := login()

	next := args
	next.Service.Database.Password = pulumi.ToSecret(pulumi.String("rotated-pw-2")).(pulumi.StringOutput)
	next.Service.Database.AppPassword = pulumi.ToSecret(pulumi.String("rotated-app-pw-2")).(pulumi.StringOutput)
	next.SecretsDigest = "r2"
	client, base := singleserver.LocalClient(args)
	run := singleserver.SteadyLoad(client, base+"/items")
	time.Sleep(2 * time.Second)
	start := time.Now()
	removed := r.Up(next) // fails unless the new replicas authenticate with the new password
	took := time.Since(start)
	time.Sleep(2 * time.Second)
	res := run.Stop()
	t.Logf("rotation of both passwords in %s under 50 req/s: %s", took.Round(100*time.Millisecond), res)
	if res.Failed > 0 {
		t.Errorf("%d of %d requests failed across the rotation: %v", res.Failed, res.Sent, res.Errors)
	}
	after, err := r.Docker().Inspect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if after.ID != before.ID || !after.State.StartedAt.Equal(before.State.StartedAt) {
		t.Errorf("the database container was replaced or restarted by the rotation (%s started %s, now %s started %s)",
			before.ID[:12], before.State.StartedAt, after.ID[:12], after.State.StartedAt)
	}
	for _, s := range removed {
		if s.Name == db {
			t.Errorf("the update removed the database container")
		}
	}
	if got, code := psql("rotated-pw-2", "SELECT name FROM items WHERE name = 'before-rotation'"); code != 0 || got != "before-rotation" {
		t.Errorf("with the new password: %q (exit %d), want the row written before", got, code)
	}
	if _, code := psql(old, "SELECT 1"); code == 0 {
		t.Error("the old password still opens a connection")
	}
	newLogin := login()
	if newLogin == oldLogin || !strings.HasPrefix(newLogin, "app_rw_") {
		t.Errorf("the new release logs in as %q, the old one as %q: want a new login of app_rw", newLogin, oldLogin)
	}
	if got, code := psqlAs(newLogin, "rotated-app-pw-2", "SELECT current_user"); code != 0 || got != newLogin {
		t.Errorf("the app's new login and password: %q (exit %d)", got, code)
	}
	// The old login ends once the old replicas' connections have closed
	// (the revoker: three idle checks a second apart).
	singleserver.WaitFor(t, "the old login refused", 30*time.Second, func() error {
		if _, code := psqlAs(oldLogin, oldApp, "SELECT 1"); code == 0 {
			return fmt.Errorf("%s still logs in with the old password", oldLogin)
		}
		return nil
	})
	for _, app := range r.Apps() {
		out := r.Exec(app, "python3", "-c", "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/items').read().decode())")
		if !strings.Contains(out, "before-rotation") {
			t.Errorf("%s does not serve the row written before the rotation: %s", app, out)
		}
	}
}

// maintenanceAndRestore checks ./infra maintenance through the stack's
// proxy (nginx or Traefik: the page, HTML and JSON, a 503 with
// Retry-After; /metrics stays a 404; off serves again), then a restore of
// backup under 20 req/s: every answer is the app's 200 or the maintenance
// page.
func maintenanceAndRestore(t *testing.T, ops operations.Running, client *http.Client, base, backup string) {
	t.Helper()
	ctx := context.Background()
	// ./infra maintenance: the page through the proxy, HTML and JSON, a
	// 503 with Retry-After; /metrics stays a 404; off serves again.
	get := func(path, accept string) (int, http.Header, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(body)
	}
	if err := ops.Maintenance(ctx, true, "Back at <10:00>"); err != nil {
		t.Fatal(err)
	}
	if code, h, body := get("/items", ""); code != 503 || h.Get("Retry-After") == "" || !strings.Contains(body, "Back at &lt;10:00&gt;") {
		t.Errorf("in maintenance, GET /items: %d Retry-After %q %s", code, h.Get("Retry-After"), body)
	}
	if code, h, body := get("/items", "application/json"); code != 503 || !strings.HasPrefix(h.Get("Content-Type"), "application/json") || !strings.Contains(body, `"status":"maintenance"`) {
		t.Errorf("in maintenance, GET /items for JSON: %d %s %s", code, h.Get("Content-Type"), body)
	}
	if code, _, _ := get("/metrics", ""); code != 404 {
		t.Errorf("in maintenance, /metrics: %d, want 404", code)
	}
	if err := ops.Maintenance(ctx, false, ""); err != nil {
		t.Fatal(err)
	}
	if code, _, body := get("/health/live", ""); code != 200 {
		t.Errorf("after maintenance off: %d %s", code, body)
	}

	// During the restore every answer is the app's 200 or the maintenance
	// page (before it: 12 of 36 probes got a bare 502 in a 9 s restore).
	var pages atomic.Int64
	load := loadgen.Start(client, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, "GET", base+"/health/live", nil)
		if err == nil {
			req.Header.Set("Accept", "application/json")
		}
		return req, err
	}, loadgen.Options{Rate: 20, Max: 2 * time.Minute, OK: func(resp *http.Response) bool {
		if resp.StatusCode == 200 {
			return true
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == 503 && resp.Header.Get("Retry-After") != "" && strings.Contains(string(body), `"status":"maintenance"`) {
			pages.Add(1)
			return true
		}
		return false
	}})
	time.Sleep(time.Second)
	var progress strings.Builder
	start := time.Now()
	if err := ops.Restore(ctx, backup, &progress); err != nil {
		load.Stop()
		t.Fatalf("restore: %v\n%s", err, progress.String())
	}
	took := time.Since(start)
	time.Sleep(time.Second)
	res := load.Stop()
	t.Logf("restore in %s:\n%s", took.Round(100*time.Millisecond), progress.String())
	t.Logf("under 20 req/s: %s; %d maintenance pages", res, pages.Load())
	if res.Failed > 0 {
		t.Errorf("%d of %d requests during the restore were neither 200 nor the maintenance page: %v", res.Failed, res.Sent, res.Errors)
	}
	if pages.Load() == 0 {
		t.Error("no request saw the maintenance page during the restore")
	}
	if code, _, _ := get("/health/live", ""); code != 200 {
		t.Errorf("after the restore: %d, want 200 (the maintenance page taken down)", code)
	}
}
