package service

import _ "embed"

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

// SetRolePassword is the shell step that makes $PGUSER's password the one
// in the file $PGPASSWORD_FILE, over the database's unix socket in
// /var/run/postgresql (local connections are trusted by the official image
// and ours): psql reads the file itself, so the password is never in a
// command line or an environment. The database's entrypoint sets a
// password only when it creates the data directory; both architectures
// run this after every start to apply a rotated dbPassword.
const SetRolePassword = `psql -X -q -v ON_ERROR_STOP=1 -h /var/run/postgresql -d postgres -v role="$PGUSER" <<'SQL'
\set pw ` + "`cat \"$PGPASSWORD_FILE\"`" + `
ALTER ROLE :"role" PASSWORD :'pw';
SQL
echo "the password of role $PGUSER is the configured one"
`
