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
//   - the app role $APP_USER exists and is no superuser, cannot create
//     roles or databases, replicate or bypass row security, owns nothing
//     and is in no predefined role (so no COPY ... TO PROGRAM, no server
//     files);
//   - the app logs in as $APP_LOGIN (default $APP_USER) with the password
//     in $APP_PASSWORD_FILE. A login of its own is a member of $APP_USER,
//     with its rights and no more, made by this step; the single server
//     makes one per rotation of the secrets, so the replicas still
//     running keep opening connections with the old one until the new
//     release has replaced them (RevokeOldLogins ends it then), where a
//     new password on the one role failed their new connections at once
//     (4 of 1,560 requests at 50 req/s);
//   - it may read and write the rows of every table and sequence in the
//     public schema, those there now and those the owner's migrations make
//     later (default privileges), and create nothing there;
//   - with $MONITOR_USER set, that role logs in with the password in
//     $MONITOR_PASSWORD_FILE and is a member of pg_monitor and nothing
//     else (postgres_exporter's role, MonitorUser).
//
// psql reads the password files itself, so no password is ever in a
// command line or an environment. The database's entrypoint sets a
// password only when it creates the data directory; both architectures
// run this after every start, so a rotated dbPassword (or dbAppPassword)
// takes effect, and a database made before the app role existed gets it.
const SetupRoles = `psql -X -q -v ON_ERROR_STOP=1 -h /var/run/postgresql -d "$PGDATABASE" \
	-v owner="$PGUSER" -v app="$APP_USER" -v login="${APP_LOGIN:-$APP_USER}" -v db="$PGDATABASE" -v monitor="${MONITOR_USER:-}" <<'SQL'
\set pw ` + "`cat \"$PGPASSWORD_FILE\"`" + `
\set apppw ` + "`cat \"$APP_PASSWORD_FILE\"`" + `
BEGIN;
ALTER ROLE :"owner" PASSWORD :'pw';
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app') AS new_app \gset
\if :new_app
CREATE ROLE :"app";
\endif
ALTER ROLE :"app" WITH NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
SELECT :'login' = :'app' AS login_is_app \gset
\if :login_is_app
ALTER ROLE :"app" WITH LOGIN PASSWORD :'apppw';
\else
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'login') AS new_login \gset
\if :new_login
CREATE ROLE :"login";
\endif
ALTER ROLE :"login" WITH LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'apppw';
GRANT :"app" TO :"login";
\endif
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"app";
GRANT USAGE ON SCHEMA public TO :"app";
` + GrantApp + `ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO :"app";
SELECT :'monitor' <> '' AS has_monitor \gset
\if :has_monitor
\set monitorpw ` + "`cat \"$MONITOR_PASSWORD_FILE\"`" + `
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'monitor') AS new_monitor \gset
\if :new_monitor
CREATE ROLE :"monitor";
\endif
ALTER ROLE :"monitor" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'monitorpw';
GRANT pg_monitor TO :"monitor";
\endif
COMMIT;
SQL
echo "roles: $PGUSER owns $PGDATABASE with the configured password; $APP_USER may read and write its rows, and the app logs in as ${APP_LOGIN:-$APP_USER}"
`

// RevokeOldLogins ends the app's earlier logins once nothing uses them:
// every login role that is $APP_USER or one of its members, other than
// $APP_LOGIN. It runs after a release's new replicas are healthy; the old
// ones still serve with the old login until the update removes them, so
// it waits (up to 30 minutes) until no session of an old login has been
// open for three checks in a row a second apart, then drops each old
// member login (they own nothing) and takes LOGIN and the password from
// $APP_USER itself (the login of releases before per-rotation logins).
// After 30 minutes it does so anyway: a leaked old password does not
// outlive a stuck replica.
const RevokeOldLogins = `q() { psql -X -q -At -v ON_ERROR_STOP=1 -h /var/run/postgresql -d "$PGDATABASE" -v app="$APP_USER" -v login="$APP_LOGIN" "$@"; }
old="SELECT r.rolname FROM pg_roles r WHERE r.rolcanlogin AND r.rolname <> :'login'
  AND NOT r.rolsuper AND (r.rolname = :'app'
  OR r.oid IN (SELECT m.member FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE g.rolname = :'app'))"
idle=0
for _ in $(seq 1800); do
	# One psql a second: how many earlier logins, and their sessions.
	IFS='|' read -r logins busy <<<"$(q <<<"SELECT (SELECT count(*) FROM ($old) o), (SELECT count(*) FROM pg_stat_activity WHERE usename IN ($old))")"
	[ "$logins" != 0 ] || { echo "revoke: no earlier login of $APP_USER"; exit 0; }
	if [ "$busy" = 0 ]; then idle=$((idle + 1)); else idle=0; fi
	[ "$idle" -lt 3 ] || break
	sleep 1
done
for role in $(q <<<"$old"); do
	if [ "$role" = "$APP_USER" ]; then
		q -c "ALTER ROLE \"$role\" WITH NOLOGIN PASSWORD NULL"
	else
		q -c "DROP ROLE \"$role\""
	fi
	echo "revoke: $role may no longer log in"
done
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
