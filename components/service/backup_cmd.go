package service

import (
	"context"
	_ "embed"
	"fmt"
	"slices"
	"strings"
)

// backupScript is the database backup's program (see its header): bash in
// the database's own image, whose pg_dump matches the server. The single
// server runs it as a long-lived container on the schedule; Kubernetes
// runs its "now" action from a CronJob.
//
//go:embed backup.sh
var backupScript string

// BackupDir is where the backups are kept: a retained volume (single
// server) or claim (Kubernetes), so a lost data volume does not take its
// backups with it.
const BackupDir = "/backups"

// BackupCommand runs an action of backup.sh ("loop", "now", "list",
// "restore NAME"); without one it is the entrypoint the action follows.
// An entrypoint, not a command: the database image's own entrypoint
// starts PostgreSQL.
func BackupCommand(action ...string) []string {
	return append([]string{"bash", "-c", backupScript, "backup"}, action...)
}

// SetupRoles is the shell step that makes the database's roles what the
// stack says, over the database's unix socket in /var/run/postgresql
// (local connections are trusted by the official image and ours), as the
// owner $PGUSER, in $PGDATABASE:
//   - the owner's password is the one in the file $PGPASSWORD_FILE;
//   - the app role $APP_USER exists, may log in with the password in
//     $APP_PASSWORD_FILE, and is no superuser, cannot create roles or
//     databases, replicate or bypass row security, owns nothing and is in
//     no predefined role (so no COPY ... TO PROGRAM, no server files);
//   - it may read and write the rows of every table and sequence in the
//     public schema, those there now and those the owner's migrations make
//     later (default privileges), and create nothing there.
//
// psql reads the password files itself, so no password is ever in a
// command line or an environment. The database's entrypoint sets a
// password only when it creates the data directory; both architectures
// run this after every start, so a rotated dbPassword (or dbAppPassword)
// takes effect, and a database made before the app role existed gets it.
const SetupRoles = `psql -X -q -v ON_ERROR_STOP=1 -h /var/run/postgresql -d "$PGDATABASE" \
	-v owner="$PGUSER" -v app="$APP_USER" -v db="$PGDATABASE" <<'SQL'
\set pw ` + "`cat \"$PGPASSWORD_FILE\"`" + `
\set apppw ` + "`cat \"$APP_PASSWORD_FILE\"`" + `
BEGIN;
ALTER ROLE :"owner" PASSWORD :'pw';
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app') AS new_app \gset
\if :new_app
CREATE ROLE :"app";
\endif
ALTER ROLE :"app" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'apppw';
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"app";
GRANT USAGE ON SCHEMA public TO :"app";
` + GrantApp + `ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO :"app";
COMMIT;
SQL
echo "roles: $PGUSER owns $PGDATABASE with the configured password; $APP_USER may read and write its rows"
`

// GrantApp gives the app role (psql variable app) the rows of what is in
// the public schema now. The role step runs it; so does a restore, whose
// dump may come from before the app role existed.
const GrantApp = `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app";
`

// BackupActions are the driver's backup operations over one way of running
// backup.sh's actions where the backups are (a single server's backup
// container, a Job from an in-cluster database's backup CronJob).
type BackupActions struct {
	// Run runs an action and returns its output.
	Run func(ctx context.Context, action ...string) (string, error)
	// Where names the backups' place in errors ("the backups volume").
	Where string
}

// Now takes a backup at once, outside the schedule, and returns its report.
func (b BackupActions) Now(ctx context.Context) (string, error) {
	out, err := b.Run(ctx, "now")
	return strings.TrimSpace(out), err
}

// List is the backups, newest first.
func (b BackupActions) List(ctx context.Context) ([]string, error) {
	out, err := b.Run(ctx, "list")
	return strings.Fields(out), err
}

// Check refuses a backup that is not there, naming the ones that are,
// before a restore changes anything.
func (b BackupActions) Check(ctx context.Context, backup string) error {
	have, err := b.List(ctx)
	if err != nil {
		return err
	}
	if !slices.Contains(have, backup) {
		return fmt.Errorf("no backup %q %s; there are: %s", backup, b.Where, strings.Join(have, ", "))
	}
	return nil
}
