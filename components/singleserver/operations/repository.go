package operations

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fastapi-infra/fastapi-infra/components/service"
	"github.com/fastapi-infra/fastapi-infra/components/singleserver"
)

// Point is what a restore from the off-host repository puts back: the
// state at Time (recovered from the full backup before it and the
// archived WAL after), the end of a named Backup, or, both empty, the
// newest state the archive holds (after the host was lost).
type Point struct {
	// Backup is a pgBackRest backup's label (./infra restore lists them).
	Backup string
	// Time is the moment to recover to; with Backup, from that backup.
	Time time.Time
}

func (p Point) String() string {
	switch {
	case !p.Time.IsZero():
		return "the state at " + p.Time.UTC().Format(time.RFC3339)
	case p.Backup != "":
		return "backup " + p.Backup
	}
	return "the newest archived state"
}

// Flags are ./infra restore's flags that name p again: the command that
// finishes an interrupted restore.
func (p Point) Flags() string {
	var flags []string
	if !p.Time.IsZero() {
		flags = append(flags, "--to-time "+p.Time.Format(time.RFC3339Nano))
	}
	if p.Backup != "" {
		flags = append(flags, "--from "+p.Backup)
	}
	if len(flags) == 0 {
		return "--latest"
	}
	return strings.Join(flags, " ")
}

// ParsePoint reads ./infra restore's flags (--from, --to-time, --latest),
// refusing what does not go together before anything is reached.
func ParsePoint(from, toTime string, latest bool) (Point, error) {
	p := Point{Backup: from}
	if toTime != "" {
		at, err := time.Parse(time.RFC3339Nano, toTime)
		if err != nil {
			return p, fmt.Errorf("--to-time %q: want a time in RFC 3339 with its zone, such as 2026-12-06T10:15:00Z", toTime)
		}
		p.Time = at
	}
	if latest && (from != "" || toTime != "") {
		return p, fmt.Errorf("--latest restores the newest archived state: leave out --from and --to-time, or leave out --latest")
	}
	return p, nil
}

// restoreArgs are pgbackrest restore's options for p: --delta rewrites
// only the files that differ; a target promotes the server once reached.
func (p Point) restoreArgs() []string {
	args := []string{"restore", "--delta"}
	if p.Backup != "" {
		args = append(args, "--set="+p.Backup)
	}
	switch {
	case !p.Time.IsZero():
		// PostgreSQL's recovery_target_time: microseconds, in UTC.
		args = append(args, "--type=time", "--target="+p.Time.UTC().Format("2006-01-02 15:04:05.000000+00"), "--target-action=promote")
	case p.Backup != "":
		args = append(args, "--type=immediate", "--target-action=promote")
	}
	return args
}

// repositoryKind is what backup.sh says the stack keeps: "pgbackrest"
// with an off-host repository, "dump" without.
const repositoryKind = "pgbackrest"

// Kind says how the stack keeps its backups: "pgbackrest" (an off-host
// repository, db.backup.s3.*) or "dump" (pg_dump files on the host).
func (r Running) Kind(ctx context.Context) (string, error) {
	out, err := r.backupAction(ctx, "kind")
	return strings.TrimSpace(out), err
}

// RestoreTo puts the database back to p from the off-host repository, as
// after the loss of its host: the maintenance page up and the replicas
// stopped, a backup of what is there now (pgBackRest's, or a pg_dump
// into the backups volume when the cluster is not the repository's: a new
// one on a new host), the database stopped, pgBackRest's restore in a
// one-off container of the database's image on its volumes, the server
// started to replay the archived WAL up to p and promoted, the roles and
// the release's migration run again, the replicas started and the page
// taken down.
func (r Running) RestoreTo(ctx context.Context, p Point, progress io.Writer) error {
	if kind, err := r.Kind(ctx); err != nil {
		return err
	} else if kind != repositoryKind {
		return fmt.Errorf("stack %s keeps pg_dump files on its host, not an archive: a point in time needs an off-host repository (db.backup.s3.*, then ./infra up); restore one of its dumps with --from NAME", r.Prefix)
	}
	return r.restoreTo(ctx, p, progress)
}

// restoreTo is RestoreTo once the stack is known to have a repository.
func (r Running) restoreTo(ctx context.Context, p Point, progress io.Writer) error {
	if !p.Time.IsZero() && p.Time.After(time.Now()) {
		return fmt.Errorf("--to-time %s is in the future", p.Time.UTC().Format(time.RFC3339))
	}
	if p.Backup != "" {
		if err := r.actions().Check(ctx, p.Backup); err != nil {
			return err
		}
	}
	roles, err := r.rolesContainer(ctx)
	if err != nil {
		return err
	}
	paused, err := r.pause(ctx, "Restoring a backup; the service is back in a few minutes.", progress)
	if err != nil {
		return err
	}
	kept, err := r.keepWhatIsThere(ctx)
	if err != nil {
		return fmt.Errorf("%v\nnothing was restored, the database is as it was; %v", err, r.resume(ctx, paused, false, progress))
	}
	fmt.Fprintf(progress, "restore: %s\n", kept)

	db := r.Prefix + "-db"
	fmt.Fprintf(progress, "restore: stopping the database\n")
	if err := r.Engine.Stop(ctx, db, 60); err != nil {
		return err
	}
	fmt.Fprintf(progress, "restore: restoring %s from the repository\n", p)
	if err := r.runRestore(ctx, db, p, progress); err != nil {
		return fmt.Errorf("%w\nthe database container %s is stopped and its data may be partly restored; run the same restore again (--delta finishes what is missing)%s", err, db, r.stillInMaintenance(paused.maintained))
	}
	fmt.Fprintf(progress, "restore: starting the database; it replays the archived WAL up to %s\n", p)
	if err := r.Engine.Start(ctx, db); err != nil {
		return err
	}
	if err := r.waitPromoted(ctx, db, 15*time.Minute); err != nil {
		return fmt.Errorf("%w%s", err, r.stillInMaintenance(paused.maintained))
	}
	fmt.Fprintf(progress, "restore: the database serves %s\n", p)
	if roles != "" {
		// The passwords of the restored roles are those of then: the
		// stack's own apply again.
		fmt.Fprintf(progress, "restore: setting up the database roles again\n")
		if err := r.runToEnd(ctx, roles); err != nil {
			return fmt.Errorf("the roles after the restore: %w%s", err, r.stillInMaintenance(paused.maintained))
		}
	}
	return r.resume(ctx, paused, true, progress)
}

// keepWhatIsThere backs the database up before a restore overwrites it,
// and says where: into the repository when the cluster is the
// repository's; else (a new cluster, after the host was lost) a pg_dump
// into the backups volume, as root, whose volume it is.
func (r Running) keepWhatIsThere(ctx context.Context) (string, error) {
	out, incrErr := r.backupAction(ctx, "now")
	if incrErr == nil {
		return "what was there is kept: " + wrote(out), nil
	}
	raw, code, err := r.Engine.ExecAs(ctx, r.backupContainer(), "0:0", service.BackupCommand("dump")...)
	if err == nil && code == 0 {
		return "the database is not the repository's cluster (a new one); what was there is kept in the backups volume: " + wrote(raw), nil
	}
	return "", fmt.Errorf("no backup of what is there now, so no restore over it: pgBackRest: %v; pg_dump: exit %d, %v %s", incrErr, code, err, strings.TrimSpace(raw))
}

// wrote is backup.sh's line that names the backup it wrote.
func wrote(out string) string {
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "backup: wrote "); ok {
			return "wrote " + rest
		}
	}
	return strings.TrimSpace(out)
}

// runRestore runs pgBackRest's restore in a one-off container of the
// stopped database's: its image, user, volumes (data, socket, secret
// files) and limits, on the archive network, to the end; its output goes
// to progress. Removed after.
func (r Running) runRestore(ctx context.Context, db string, p Point, progress io.Writer) error {
	var doc replicaDocument
	if err := r.Engine.InspectInto(ctx, db, &doc); err != nil {
		return err
	}
	archive := r.Prefix + "-" + singleserver.ArchiveNetwork
	if _, ok := doc.NetworkSettings.Networks[archive]; !ok {
		return fmt.Errorf("the database %s is not on the archive network %s: run ./infra up with db.backup.s3.* first", db, archive)
	}
	body, err := oneOff(doc, service.PgBackRest(p.restoreArgs()...))
	if err != nil {
		return err
	}
	host := body["HostConfig"].(map[string]any)
	host["NetworkMode"] = archive
	body["NetworkingConfig"] = map[string]any{"EndpointsConfig": map[string]any{archive: map[string]any{}}}
	body["Labels"] = map[string]string{singleserver.RoleLabel: "restore"}
	name := r.Prefix + "-restore"
	_ = r.Engine.Remove(ctx, name) // one an interrupted restore left
	id, err := r.Engine.Create(ctx, name, body)
	if err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	defer func() {
		rm, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = r.Engine.Remove(rm, id)
	}()
	if err := r.Engine.Start(ctx, id); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	var out strings.Builder
	if err := r.Engine.Follow(ctx, id, io.MultiWriter(&out, prefixed(progress, "restore:   "))); err != nil {
		return err
	}
	code, err := r.Engine.WaitExit(ctx, id)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("pgBackRest's restore exited with code %d:\n%s", code, lastLines(out.String(), 15))
	}
	return nil
}

// waitPromoted waits until the restarted database has replayed the WAL
// and accepts writes; a server that stops meanwhile (a target beyond the
// archive's end stops recovery with FATAL) fails at once, with its log.
func (r Running) waitPromoted(ctx context.Context, db string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		state, err := r.Engine.Inspect(ctx, db)
		if err != nil {
			return err
		}
		if !state.State.Running || state.State.Restarting {
			logs, _ := r.Engine.Logs(ctx, db)
			return fmt.Errorf("the database stopped while it recovered (a time beyond what the archive holds ends recovery with FATAL); its log:\n%s", lastLines(logs, 15))
		}
		// As the owner the database container was made with, on its
		// socket (trusted locally).
		out, code, err := r.Engine.Exec(ctx, db, "sh", "-c", `psql -X -At -U "$POSTGRES_USER" -d postgres -c "SELECT pg_is_in_recovery()"`)
		if err == nil && code == 0 && strings.TrimSpace(out) == "f" {
			return r.Engine.WaitHealthy(ctx, db, 2*time.Minute)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the database still recovers after %s (last answer: %q)", within, strings.TrimSpace(out))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// rolesContainer is the stack's roles step (PREFIX-db-roles-ID), the
// newest when an update left two; "" when there is none.
func (r Running) rolesContainer(ctx context.Context) (string, error) {
	found, err := r.Engine.List(ctx, "")
	if err != nil {
		return "", err
	}
	var newest, newestAt string
	for name, id := range found {
		if !Owns(r.Prefix, "db-roles", name) {
			continue
		}
		var doc struct{ Created string }
		if err := r.Engine.InspectInto(ctx, id, &doc); err != nil {
			return "", err
		}
		if doc.Created > newestAt {
			newest, newestAt = id, doc.Created
		}
	}
	return newest, nil
}

// runToEnd starts a one-shot container again and waits for its exit 0.
func (r Running) runToEnd(ctx context.Context, id string) error {
	if err := r.Engine.Start(ctx, id); err != nil {
		return err
	}
	code, err := r.Engine.WaitExit(ctx, id)
	if err == nil && code != 0 {
		logs, _ := r.Engine.Logs(ctx, id)
		err = fmt.Errorf("exit code %d; its log:\n%s", code, lastLines(logs, 20))
	}
	return err
}

// paused is what pause took down, for resume to bring back.
type paused struct {
	// apps are the release's replicas, migrations its migration (none
	// with migration.strategy none).
	apps, migrations []string
	// maintained is nil when the maintenance page went up, else why not.
	maintained error
}

// pause finds the running release's replicas and migration, puts the
// proxy's maintenance page up with message (a 503 with Retry-After to
// every request, not 502s) and stops the replicas.
func (r Running) pause(ctx context.Context, message string, progress io.Writer) (paused, error) {
	var p paused
	var err error
	if p.apps, err = r.containers(ctx, "fastapi-infra.release", "app"); err != nil {
		return p, err
	}
	if p.migrations, err = r.releaseMigration(ctx, p.apps); err != nil {
		return p, err
	}
	p.maintained = r.Maintenance(ctx, true, message)
	if p.maintained != nil {
		fmt.Fprintf(progress, "restore: no maintenance page (%v); the proxy answers 502 while the replicas are stopped\n", p.maintained)
	} else {
		fmt.Fprintf(progress, "restore: maintenance page on\n")
	}
	fmt.Fprintf(progress, "restore: stopping %d app replicas\n", len(p.apps))
	for _, id := range p.apps {
		if err := r.Engine.Stop(ctx, id, 30); err != nil {
			return p, err
		}
	}
	return p, nil
}

// resume undoes pause: with migrate, the release's migration runs again
// first (the restored schema may be older); then the replicas start,
// waiting until each is healthy, and the maintenance page comes down.
func (r Running) resume(ctx context.Context, p paused, migrate bool, progress io.Writer) error {
	if migrate {
		for _, id := range p.migrations {
			fmt.Fprintf(progress, "restore: running the migration again\n")
			if err := r.runToEnd(ctx, id); err != nil {
				return fmt.Errorf("the migration after the restore: %w; the app replicas stay stopped%s", err, r.stillInMaintenance(p.maintained))
			}
		}
	}
	fmt.Fprintf(progress, "restore: starting the app replicas\n")
	for _, id := range p.apps {
		if err := r.Engine.Start(ctx, id); err != nil {
			return err
		}
	}
	for _, id := range p.apps {
		if err := r.Engine.WaitHealthy(ctx, id, 2*time.Minute); err != nil {
			return fmt.Errorf("%w%s", err, r.stillInMaintenance(p.maintained))
		}
	}
	if p.maintained == nil {
		if err := r.Maintenance(ctx, false, ""); err != nil {
			return err
		}
		fmt.Fprintf(progress, "restore: maintenance page off\n")
	}
	return nil
}

// prefixed writes each line with a prefix (pgBackRest's output within the
// restore's progress).
func prefixed(w io.Writer, prefix string) io.Writer {
	return &linePrefixer{w: w, prefix: prefix, start: true}
}

type linePrefixer struct {
	w      io.Writer
	prefix string
	start  bool
}

func (l *linePrefixer) Write(p []byte) (int, error) {
	var b strings.Builder
	for _, c := range string(p) {
		if l.start {
			b.WriteString(l.prefix)
			l.start = false
		}
		b.WriteRune(c)
		if c == '\n' {
			l.start = true
		}
	}
	if _, err := io.WriteString(l.w, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}
