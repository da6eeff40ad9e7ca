//go:build e2e

package singleserver_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"

	"github.com/fastapi-infra/fastapi-infra/components/singleserver"
	"github.com/fastapi-infra/fastapi-infra/deploy"
	"github.com/fastapi-infra/fastapi-infra/internal/dockerapi"
)

// gatedMigration fails (exit 3) until the table go_ahead exists, then
// migrates: a migration whose cause of failure passes (a lock, a database
// restarting), so the same release runs again.
const gatedMigration = `python3 -c "
import os, sys, psycopg2
cur = psycopg2.connect(open(os.environ['DATABASE_URL_FILE']).read()).cursor()
cur.execute(\"SELECT to_regclass('go_ahead')\")
if cur.fetchone()[0] is None:
    print('migration: go_ahead is missing', file=sys.stderr)
    sys.exit(3)
" && exec alembic upgrade head`

// TestFailedMigrationOnRealDocker: a release whose migration exits 3
// fails `up` with the code and the last log line, creates none of its
// replicas, and the running release keeps serving. Once the cause has
// passed, the driver's rerun (deploy.FailedMigrations, replacing the
// failed one-shot, as ./infra up does) migrates and rolls the release,
// and leaves nothing to do. The replacement is delete-first: created
// first, the migration's fixed name was refused by the engine.
func TestFailedMigrationOnRealDocker(t *testing.T) {
	t.Parallel() // measures no load: runs beside another such test, after the load tests
	r := singleserver.NewRealServer(t, "dev")
	args := r.Args()
	r.Up(args)
	first := r.Apps()

	// ./infra logs: the replicas' lines in one stream, in time order; an
	// unknown service is refused with the stack's.
	docker := dockerapi.NewClient("")
	lines, err := deploy.StackLogs(context.Background(), docker, r.Prefix(), deploy.LogFilter{Service: "app", Grep: "Application startup complete"})
	seen := map[string]bool{}
	for i, l := range lines {
		seen[deploy.ServiceOf(l.Container)+strings.SplitN(l.Container, "-", 3)[1]] = true
		if i > 0 && l.Time.Before(lines[i-1].Time) {
			t.Errorf("logs out of order: %s after %s", l, lines[i-1])
		}
	}
	if err != nil || !seen["app1"] || !seen["app2"] {
		t.Errorf("logs --service app --grep 'Application startup complete': %v, want both replicas' lines: %v", err, lines)
	}
	if _, err := deploy.StackLogs(context.Background(), docker, r.Prefix(), deploy.LogFilter{Service: "nope"}); err == nil ||
		!strings.Contains(err.Error(), `no service "nope" in the stack; its services: `) || !strings.Contains(err.Error(), "app, ") {
		t.Errorf("logs --service nope: %v", err)
	}
	next := args
	next.Service.Migration.Command = []string{"sh", "-c", gatedMigration}
	err = r.TryUp(next)
	if err == nil || !strings.Contains(err.Error(), "exited with code 3") || !strings.Contains(err.Error(), "migration: go_ahead is missing") {
		t.Fatalf("up with a failing migration: %v; want the exit code and the last log line", err)
	}
	if now := r.Apps(); strings.Join(now, " ") != strings.Join(first, " ") {
		t.Errorf("replicas after the failed migration: %v, want the running release's %v only", now, first)
	}
	client, base := singleserver.LocalClient(args)
	resp, err := client.Get(base + "/health/ready")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the running release after the failed migration: %v %v", resp, err)
	}
	resp.Body.Close()

	r.Exec(r.Prefix()+"-db", "psql", "-U", "app", "-d", "app", "-c", "CREATE TABLE go_ahead ()")
	retry, err := deploy.FailedMigrations(r.State())
	if err != nil || len(retry) != 1 || !strings.Contains(retry[0], "-migrate-") {
		t.Fatalf("failed migrations in the state: %v, %v", retry, err)
	}
	r.UpWith(next, optup.Replace(retry))
	if now := r.Apps(); len(now) != len(first) || now[0] == first[0] {
		t.Errorf("replicas after the rerun: %v, want a new release instead of %v", now, first)
	}
	if retry, err := deploy.FailedMigrations(r.State()); err != nil || len(retry) != 0 {
		t.Errorf("failed migrations after the rerun: %v, %v", retry, err)
	}

	// A release whose replicas never turn ready fails once
	// health.startTimeout has passed, and their probes and logs say why
	// (the provider says only "container failed to be in healthy state";
	// ./infra up adds this to its message). The running release serves on.
	stuck := next
	stuck.Service.Health.ReadyPath = "/nope"
	stuck.StartTimeoutSeconds = 15
	err = r.TryUp(stuck)
	if err == nil || !strings.Contains(err.Error(), "failed to be in healthy state") {
		t.Fatalf("up of replicas that never turn ready: %v", err)
	}
	why, err := docker.WhyUnwell(context.Background(), r.Prefix()+"-", 10)
	if err != nil || !strings.Contains(why, "-app-1-") || !strings.Contains(why, "/nope answered HTTP/1.1 404 Not Found") || !strings.Contains(why, "its last log lines") {
		t.Errorf("why the replicas are unwell: %v\n%s", err, why)
	}
	t.Logf("what ./infra up adds to the provider's error:\n%s", why)
	resp, err = client.Get(base + "/health/ready")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the running release after the stuck one: %v %v", resp, err)
	}
	resp.Body.Close()
}
