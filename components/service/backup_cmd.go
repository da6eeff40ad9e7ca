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
