// Command pitrbench measures, in one run on this machine's Docker engine,
// what putting a database of a given size back costs: the single
// server's point-in-time restore from its off-host repository (pgBackRest,
// ./infra restore --to-time) beside the pg_dump and pg_restore of the same
// database that a repository on the host offers:
//
//	go run ./lab/pitrbench [-scale 68]
//
// The stack is the dev stack as ./infra up deploys it (the driver's
// workspace, the real Pulumi engine and docker provider) with
// db.backup.s3.* pointing at versitygw (the lab's S3 store) on the Docker
// bridge. pgbench -i fills the database (scale 68 is about 1 GiB), an
// incremental backup goes into the repository, a row is written, T is
// noted, another row is written; then the dump is taken and restored
// (timed), and the stack is restored to T (timed, the whole ./infra
// restore: maintenance page, the backup before it, pgBackRest's restore,
// the WAL replay, the replicas back). The row before T must be there and
// the one after must not. Load stays on this machine.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"

	"github.com/fastapi-infra/fastapi-infra/components/service"
	"github.com/fastapi-infra/fastapi-infra/components/singleserver/operations"
	"github.com/fastapi-infra/fastapi-infra/internal/dockerapi"
	"github.com/fastapi-infra/fastapi-infra/internal/objectstore"
	"github.com/fastapi-infra/fastapi-infra/lab"
	"github.com/fastapi-infra/fastapi-infra/lab/devstack"
	"github.com/fastapi-infra/fastapi-infra/toolchain"
)

func main() {
	scale := flag.Int("scale", 68, "pgbench scale factor (68: about 1 GiB)")
	flag.Parse()
	if err := run(context.Background(), *scale); err != nil {
		fmt.Fprintln(os.Stderr, "pitrbench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pitrbench: "+format+"\n", args...)
}

func run(ctx context.Context, scale int) error {
	repo, err := filepath.Abs(".")
	if err != nil {
		return err
	}
	images, err := lab.Images(ctx, repo, "dev")
	if err != nil {
		return err
	}
	tools, err := toolchain.Builder{Progress: os.Stderr}.Ensure(ctx, "versitygw")
	if err != nil {
		return err
	}
	bridge, err := dockerapi.BridgeAddress()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "pitrbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	store, err := objectstore.Start(ctx, tools["versitygw"], bridge, dir, "backups")
	if err != nil {
		return err
	}
	defer store.Stop()

	prefix := fmt.Sprintf("pitrbench%d", os.Getpid()%10000)
	engine := dockerapi.NewClient("")
	s, err := openStack(ctx, repo, dir, prefix, images, store, bridge)
	if err != nil {
		return err
	}
	defer func() {
		if _, err := s.Destroy(ctx, optdestroy.SuppressProgress()); err != nil {
			logf("destroy: %v", err)
		}
		_ = engine.RemoveNamed(context.Background(), prefix)
	}()
	logf("deploying the dev stack with an off-host repository")
	var out strings.Builder
	if _, err := s.Up(ctx, optup.ProgressStreams(&out), optup.SuppressProgress()); err != nil {
		return fmt.Errorf("up: %w\n%s", err, out.String())
	}
	ops := operations.Running{Engine: engine, Prefix: prefix}
	db := prefix + "-db"
	psql := func(sql string) (string, error) {
		o, code, err := engine.Exec(ctx, db, "psql", "-X", "-At", "-U", "app", "-d", "app", "-c", sql)
		if err == nil && code != 0 {
			err = fmt.Errorf("psql exit %d: %s", code, o)
		}
		return strings.TrimSpace(o), err
	}
	for deadline := time.Now().Add(3 * time.Minute); ; {
		if b, err := ops.Backups(ctx); err == nil && len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no first full backup in the repository after 3 minutes")
		}
		time.Sleep(2 * time.Second)
	}

	start := time.Now()
	if o, code, err := engine.Exec(ctx, db, "pgbench", "-i", "-q", "-s", strconv.Itoa(scale), "-U", "app", "app"); err != nil || code != 0 {
		return fmt.Errorf("pgbench -i: exit %d, %v: %s", code, err, o)
	}
	fill := time.Since(start)
	size, err := psql("SELECT pg_database_size('app')")
	if err != nil {
		return err
	}
	bytes, _ := strconv.ParseInt(size, 10, 64)
	logf("filled %.2f GiB in %s", float64(bytes)/(1<<30), fill.Round(time.Second))

	start = time.Now()
	report, err := ops.BackupNow(ctx)
	if err != nil {
		return err
	}
	backup := time.Since(start)
	logf("incremental backup in %s:\n%s", backup.Round(time.Second), report)

	if _, err := psql("INSERT INTO items (name, description, created_at) VALUES ('before-T', 'kept', now())"); err != nil {
		return err
	}
	time.Sleep(time.Second)
	T := time.Now()
	time.Sleep(time.Second)
	if _, err := psql("INSERT INTO items (name, description, created_at) VALUES ('after-T', 'gone', now()); SELECT pg_switch_wal()"); err != nil {
		return err
	}
	time.Sleep(15 * time.Second) // archive_timeout 10 s: the segment with T is archived

	// The anchor: a custom-format dump and its restore, in the backup
	// container as the driver's dump action takes it.
	backupContainer := prefix + "-backup"
	start = time.Now()
	o, code, err := engine.ExecAs(ctx, backupContainer, "0:0", service.BackupCommand("dump")...)
	if err != nil || code != 0 {
		return fmt.Errorf("pg_dump: exit %d, %v: %s", code, err, o)
	}
	dumpTime := time.Since(start)
	name := ""
	for _, line := range strings.Split(o, "\n") {
		if rest, ok := strings.CutPrefix(line, "backup: wrote "); ok {
			name = strings.Fields(rest)[0]
		}
	}
	start = time.Now()
	if o, code, err := engine.ExecAs(ctx, backupContainer, "0:0", service.BackupCommand("restore", name)...); err != nil || code != 0 {
		return fmt.Errorf("pg_restore: exit %d, %v: %s", code, err, o)
	}
	restoreDump := time.Since(start)
	logf("pg_dump %s, pg_restore %s", dumpTime.Round(100*time.Millisecond), restoreDump.Round(100*time.Millisecond))

	var progress strings.Builder
	start = time.Now()
	if err := ops.RestoreTo(ctx, operations.Point{Time: T}, io.MultiWriter(&progress, os.Stderr)); err != nil {
		return err
	}
	pitr := time.Since(start)
	rows, err := psql("SELECT string_agg(name, ',' ORDER BY id) FROM items WHERE name IN ('before-T', 'after-T')")
	if err != nil {
		return err
	}
	if rows != "before-T" {
		return fmt.Errorf("after the restore to T the marker rows are %q, want before-T alone", rows)
	}

	fmt.Printf("database: %.2f GiB (pgbench scale %d), filled in %s; incremental backup into the repository %s\n\n",
		float64(bytes)/(1<<30), scale, fill.Round(time.Second), backup.Round(time.Second))
	fmt.Println("| putting it back | time | vs pg_restore |")
	fmt.Println("| --- | --- | --- |")
	fmt.Printf("| pg_restore of a pg_dump (the database only; the dump took %s) | %s | 1.00 |\n", dumpTime.Round(100*time.Millisecond), restoreDump.Round(100*time.Millisecond))
	fmt.Printf("| ./infra restore --to-time (page, backup first, pgBackRest, WAL replay, replicas) | %s | %.2f |\n", pitr.Round(100*time.Millisecond), pitr.Seconds()/restoreDump.Seconds())
	return nil
}

// openStack opens the dev stack as the driver does, in a folder of its
// own, with this run's names, images and the repository in the store.
func openStack(ctx context.Context, repo, dir, prefix string, images map[string]string, store *objectstore.Store, bridge string) (auto.Stack, error) {
	settings := map[string]string{
		"app.name": prefix, "docker.namePrefix": prefix,
		"app.image": images["APP"], "db.image": images["POSTGRES"], "proxy.image": images["NGINX"],
		"proxy.httpPort": strconv.Itoa(freePort()), "proxy.httpsPort": strconv.Itoa(freePort()),
		"docker.subnet": fmt.Sprintf("172.31.%d.0/24", 200+os.Getpid()%20),
		"db.memory":     "2Gi", "db.cpu": "2",
		// The bench backs up by hand; the schedule never fires in it.
		"db.backup.schedule": "0 0 1 1 *", "db.backup.archiveTimeout": "10",
		"db.backup.s3.endpoint": store.Endpoint, "db.backup.s3.bucket": "backups", "db.backup.s3.pathStyle": "true",
		"db.backup.s3.caCert": string(store.CACert), "db.backup.s3.hostAddress": bridge,
	}
	secrets := map[string]string{"dbPassword": "pitrbench-pw", "rolloutKey": "0123456789abcdef0123456789abcdef",
		"backupS3AccessKey": store.AccessKey, "backupS3SecretKey": store.SecretKey, "backupEncryptionKey": "pitrbench-repository-passphrase"}
	return devstack.Open(ctx, repo, dir, "pitrbench", settings, secrets)
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 18443
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
