//go:build e2e

package singleserver_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/monitoring"
	"github.com/fastapi-infra/fastapi-infra/components/service"
	"github.com/fastapi-infra/fastapi-infra/components/singleserver"
	"github.com/fastapi-infra/fastapi-infra/components/singleserver/operations"
	"github.com/fastapi-infra/fastapi-infra/internal/dockerapi"
	"github.com/fastapi-infra/fastapi-infra/internal/objectstore"
	"github.com/fastapi-infra/fastapi-infra/toolchain"
)

// TestPointInTimeRestoreAfterHostLossOnRealDocker is the host loss,
// on the real engine with the real provider: a single server whose
// database archives its WAL (pgBackRest, encrypted) into an S3-compatible
// store off the host (versitygw, on the Docker bridge's address); rows
// written one by one, each with the time it committed; time T noted
// between them; then every container and volume of the stack deleted at
// once (the host is lost, its backups volume too); `up --refresh` makes an
// empty stack again, and `./infra restore --to-time T` (operations.RestoreTo)
// brings back every row committed up to T and none after. A second
// restore, --latest, measures what a host loss costs: the time between the
// newest row that survives and the loss (the RPO), against the
// archive_timeout of 5 s. No secret of the repository is in the state,
// the containers' environment or their command lines.
func TestPointInTimeRestoreAfterHostLossOnRealDocker(t *testing.T) {
	// Measures no load (its figures are times of restores and the RPO,
	// bounded loosely): runs beside another such test, after the load
	// tests.
	t.Parallel()
	r := singleserver.NewRealServer(t, "dev")
	ctx := context.Background()
	tools, err := toolchain.Builder{Progress: os.Stderr}.Ensure(ctx, "versitygw")
	if err != nil {
		t.Fatal(err)
	}
	bridge, err := dockerapi.BridgeAddress()
	if err != nil {
		t.Fatal(err)
	}
	store, err := objectstore.Start(ctx, tools["versitygw"], bridge, t.TempDir(), "backups")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Stop)
	const cipher = "lab-repository-passphrase-0123456789"
	secret := func(s string) pulumi.StringOutput { return pulumi.ToSecret(pulumi.String(s)).(pulumi.StringOutput) }
	p := r.Prefix()
	args := r.Args()
	const archiveTimeout = 5
	args.Service.Database.Backup = service.Backup{Schedule: "0 0 1 1 *", Keep: 2, Repository: service.Repository{
		Endpoint: store.Endpoint, Bucket: "backups", Region: "us-east-1", Path: "/" + p, PathStyle: true,
		CACert: string(store.CACert), HostAddress: bridge,
		AccessKey: secret(store.AccessKey), SecretKey: secret(store.SecretKey), EncryptionKey: secret(cipher),
		ArchiveTimeout: archiveTimeout,
	}}
	// Prometheus and the database's exporter, for the archiving alert (a
	// segment may wait 15 s here, 5 minutes in a stack).
	const archiveStall = 15 * time.Second
	rules := monitoring.Alerts(p, p, monitoring.Thresholds{DownMinutes: 1, ErrorRatio: 0.05, P95Seconds: 0.5, RestartsPerHour: 3})
	rules.Rules = append(rules.Rules, monitoring.DatabaseAlerts(p, 24*time.Hour, archiveStall)...)
	args.Monitoring = &singleserver.Monitoring{Image: r.Image("PROMETHEUS"), Retention: "1d", LocalPort: singleserver.FreePort(t), Interval: "2s",
		Rules: rules, PostgresExporterImage: r.Image("POSTGRES_EXPORTER")}
	r.Up(args)
	ops := operations.Running{Engine: r.Docker(), Prefix: p}
	db := p + "-db"

	// The backup container makes the stanza and a first full backup at
	// once: a point-in-time restore starts from one.
	var backups []string
	took := singleserver.WaitFor(t, "the first full backup in the repository", 3*time.Minute, func() error {
		var err error
		if backups, err = ops.Backups(ctx); err != nil || len(backups) == 0 {
			return fmt.Errorf("backups %v, %v", backups, err)
		}
		return nil
	})
	t.Logf("first full backup %s in the repository %s after the up", backups[0], took.Round(time.Second))
	if n, err := store.Objects("backups", p); err != nil || n == 0 {
		t.Fatalf("the store holds %d objects of the repository (%v)", n, err)
	}
	for _, leak := range []string{store.SecretKey, cipher} {
		for _, name := range []string{db, p + "-backup"} {
			var doc struct {
				Config struct {
					Env, Cmd, Entrypoint []string
				}
				Args []string
			}
			if err := r.Docker().InspectInto(ctx, name, &doc); err != nil {
				t.Fatal(err)
			}
			if s := fmt.Sprint(doc); strings.Contains(s, leak) {
				t.Errorf("%s's environment or command line holds a repository secret", name)
			}
		}
		if state := fmt.Sprint(r.State()); strings.Contains(state, leak) {
			t.Error("the stack's state holds a repository secret in plain text")
		}
	}

	// Rows one by one, each with the time it committed (the server's
	// clock is the host's: one kernel).
	var written []committed
	var T, lost time.Time
	write := func(n int) error {
		out, code, err := r.Docker().Exec(ctx, db, "psql", "-X", "-At", "-U", "app", "-d", "app", "-c",
			fmt.Sprintf("INSERT INTO items (name, description, created_at) VALUES ('pitr-%d', 'row', clock_timestamp()) RETURNING extract(epoch from created_at)", n))
		if err != nil || code != 0 {
			return fmt.Errorf("insert %d: exit %d, %v: %s", n, code, err, out)
		}
		epoch, err := strconv.ParseFloat(strings.Fields(out)[0], 64)
		if err != nil {
			return err
		}
		written = append(written, committed{n, time.Unix(0, int64(epoch*1e9))})
		return nil
	}
	start := time.Now()
	for n := 0; time.Since(start) < 3*archiveTimeout*time.Second+10*time.Second; n++ {
		if err := write(n); err != nil {
			t.Fatal(err)
		}
		if T.IsZero() && time.Since(start) > 8*time.Second {
			T = time.Now()
			time.Sleep(300 * time.Millisecond)
		}
		time.Sleep(150 * time.Millisecond)
	}
	// The host is lost: the database killed first (SIGKILL, at the moment
	// the RPO is measured from: no archiver gets seconds more), then every
	// container, network and volume of the stack, its pg_dump volume too.
	// The store is elsewhere.
	lost = time.Now()
	if err := r.Docker().Remove(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := r.Docker().RemoveNamed(ctx, p); err != nil {
		t.Fatal(err)
	}
	upStart := time.Now()
	r.UpRefreshing(args)
	t.Logf("%d rows written, T after row %d; host lost; up --refresh made an empty stack in %s", len(written), countUpTo(written, T)-1, time.Since(upStart).Round(time.Second))
	psql := func(sql string) string {
		return strings.TrimSpace(r.Exec(db, "psql", "-X", "-U", "app", "-d", "app", "-tAc", sql))
	}
	if n := psql("SELECT count(*) FROM items WHERE name LIKE 'pitr-%'"); n != "0" {
		t.Fatalf("the new stack's database has %s of the rows: it was not lost", n)
	}

	// The newest state the archive holds first (what an operator runs
	// after losing a host): the loss's cost. Then T, which lies before
	// the timeline that restore starts, on the one it branched from.
	var progress strings.Builder
	restoreStart := time.Now()
	if err := ops.RestoreTo(ctx, operations.Point{}, &progress); err != nil {
		t.Fatalf("restore --latest: %v\n%s", err, progress.String())
	}
	recovery := time.Since(restoreStart)
	t.Logf("restore --latest in %s:\n%s", recovery.Round(100*time.Millisecond), progress.String())
	if !strings.Contains(progress.String(), "not the repository's cluster (a new one); what was there is kept in the backups volume: wrote app-") {
		t.Errorf("the restore over the new cluster did not keep it with pg_dump, or did not say so:\n%s", progress.String())
	}
	want := countUpTo(written, T)
	newest := psql("SELECT coalesce(max(substr(name, 6)::int), -1) FROM items WHERE name LIKE 'pitr-%'")
	n, _ := strconv.Atoi(newest)
	if n < want-1 || n >= len(written) {
		t.Fatalf("after restore --latest the newest row is %s (of %d written, %d up to T)", newest, len(written), want)
	}
	rpo := lost.Sub(written[n].at)
	t.Logf("host loss: RPO %.1f s (newest surviving row %d of %d, committed %.1f s before the loss; archive_timeout %d s); restore of the newest state in %.1f s",
		rpo.Seconds(), n, len(written)-1, rpo.Seconds(), archiveTimeout, recovery.Seconds())
	if rpo > (archiveTimeout+10)*time.Second {
		t.Errorf("RPO %s: more than archive_timeout (%d s) and 10 s of archiving", rpo.Round(100*time.Millisecond), archiveTimeout)
	}
	if got := psql("SELECT coalesce(string_agg(substr(name, 6), ',' ORDER BY id), '') FROM items WHERE name LIKE 'pitr-%'"); got != numbers(n+1) {
		t.Errorf("after restore --latest the rows are %q, want 0-%d without a gap", got, n)
	}

	progress.Reset()
	restoreStart = time.Now()
	if err := ops.RestoreTo(ctx, operations.Point{Time: T}, &progress); err != nil {
		t.Fatalf("restore --to-time: %v\n%s", err, progress.String())
	}
	t.Logf("restore --to-time in %s:\n%s", time.Since(restoreStart).Round(100*time.Millisecond), progress.String())
	got := psql("SELECT coalesce(string_agg(substr(name, 6), ',' ORDER BY id), '') FROM items WHERE name LIKE 'pitr-%'")
	if wantList := numbers(want); got != wantList {
		t.Errorf("after restore --to-time T the rows are %q, want every row up to T and none after: %q", got, wantList)
	}
	if after := psql(fmt.Sprintf("SELECT count(*) FROM items WHERE created_at > to_timestamp(%f)", float64(T.UnixNano())/1e9)); after != "0" {
		t.Errorf("%s rows committed after T are back", after)
	}
	if !strings.Contains(progress.String(), "what was there is kept: wrote ") {
		t.Errorf("the restore did not back the database up into the repository first, or did not say so:\n%s", progress.String())
	}
	app := r.Apps()[0]
	if out := r.Exec(app, "python3", "-c", "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/items').read().decode())"); !strings.Contains(out, "pitr-0") {
		t.Errorf("the app does not serve the restored rows: %.300s", out)
	}
	if _, err := ops.Backups(ctx); err != nil {
		t.Error(err)
	}

	// The store goes away: the archive command hangs on the connection
	// (pgBackRest retries it), the next segments queue up, and the
	// stall alert fires on the real exporter's metrics; the failure one
	// (a store that refuses) is promtool's.
	api := fmt.Sprintf("http://127.0.0.1:%d/api/v1/", args.Monitoring.LocalPort)
	firing := `count(ALERTS{alertname=~"PostgresWALArchiving.*",alertstate="firing"})`
	if v, err := singleserver.PromQuery(api, firing); err == nil {
		t.Errorf("an archiving alert fires while the store answers: %s", v)
	}
	store.Stop()
	stopped := time.Now()
	psql("INSERT INTO items (name, description, created_at) VALUES ('after-store', 'row', now()); SELECT pg_switch_wal()")
	singleserver.WaitFor(t, "PostgresWALArchivingStalled firing after the store stopped", 2*time.Minute, func() error {
		v, err := singleserver.PromQuery(api, `count(ALERTS{alertname="PostgresWALArchivingStalled",alertstate="firing"})`)
		if err != nil || v != "1" {
			waiting, _ := singleserver.PromQuery(api, fmt.Sprintf(`max(%s)`, monitoring.ArchiveWaitingMetric))
			return fmt.Errorf("firing %q (%v); the oldest segment has waited %s s", v, err, waiting)
		}
		return nil
	})
	t.Logf("PostgresWALArchivingStalled fired %s after the store stopped (a segment may wait %s)", time.Since(stopped).Round(time.Second), archiveStall)
}

// committed is a written row: its number and when it committed.
type committed struct {
	n  int
	at time.Time
}

// countUpTo is how many rows committed at or before t (they are in order).
func countUpTo(rows []committed, t time.Time) int {
	n := 0
	for _, r := range rows {
		if !r.at.After(t) {
			n++
		}
	}
	return n
}

// numbers is "0,1,...,n-1".
func numbers(n int) string {
	s := make([]string, n)
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return strings.Join(s, ",")
}
