package monitoring

import "fmt"

// PostgresExporterPort is where postgres_exporter answers Prometheus.
const PostgresExporterPort = 9187

// exporterQueries are postgres_exporter's extra queries: the newest
// finished backup, from the table the backup job writes in the postgres
// database (service/backup.sh), as BackupMetric; and WAL archiving's
// progress (pg_stat_archiver) and queue (the segments marked ready in
// pg_wal/archive_status, through pg_ls_archive_statusdir()), both of
// which pg_monitor may read, as the Archiver metrics.
const exporterQueries = `fastapi_infra_backup:
  query: "SELECT extract(epoch FROM max(finished)) AS last_success_timestamp_seconds FROM fastapi_infra_backup"
  metrics:
    - last_success_timestamp_seconds:
        usage: "GAUGE"
        description: "When the newest database backup finished (fastapi-infra's backup job)"
fastapi_infra_archiver:
  query: "SELECT failed_count, coalesce(extract(epoch FROM last_archived_time), 0) AS last_archived_timestamp_seconds, coalesce(extract(epoch FROM last_failed_time), 0) AS last_failed_timestamp_seconds FROM pg_stat_archiver"
  metrics:
    - failed_count:
        usage: "COUNTER"
        description: "WAL segments PostgreSQL failed to archive since the statistics were reset"
    - last_archived_timestamp_seconds:
        usage: "GAUGE"
        description: "When the last WAL segment was archived (0: never)"
    - last_failed_timestamp_seconds:
        usage: "GAUGE"
        description: "When the last WAL segment failed to archive (0: never)"
fastapi_infra_archive_queue:
  query: "SELECT count(*) AS waiting_segments, coalesce(extract(epoch FROM now() - min(modification)), 0) AS oldest_waiting_seconds FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"
  metrics:
    - waiting_segments:
        usage: "GAUGE"
        description: "WAL segments complete and not yet archived"
    - oldest_waiting_seconds:
        usage: "GAUGE"
        description: "How long the oldest of them has waited (0: none waits)"
`

// PostgresExporter is how postgres_exporter reaches the service's
// database, the same on both architectures: the postgres database as the
// owner role, the password read from a file (never the environment).
type PostgresExporter struct {
	Host         string // the database's host name, or 127.0.0.1 beside it in a pod
	Port         int
	User         string
	PasswordFile string
	// Backups: the database is backed up by the backup job, so the
	// exporter reads its table (QueriesFile must then hold Queries).
	Backups bool
}

// QueriesDir is the folder of the queries file in the exporter's container.
const QueriesDir = "/etc/postgres-exporter/fastapi-infra"

// QueriesFile is the extra queries' file in the exporter's container.
const QueriesFile = QueriesDir + "/queries.yaml"

// Queries is QueriesFile's content.
func (PostgresExporter) Queries() string { return exporterQueries }

// Args are the exporter's command-line arguments.
func (PostgresExporter) Args() []string {
	return []string{fmt.Sprintf("--web.listen-address=:%d", PostgresExporterPort)}
}

// Env is the exporter's environment, NAME=value.
func (e PostgresExporter) Env() []string {
	env := []string{
		fmt.Sprintf("DATA_SOURCE_URI=%s:%d/postgres?sslmode=disable", e.Host, e.Port),
		"DATA_SOURCE_USER=" + e.User,
		"DATA_SOURCE_PASS_FILE=" + e.PasswordFile,
	}
	if e.Backups {
		env = append(env, "PG_EXPORTER_EXTEND_QUERY_PATH="+QueriesFile)
	}
	return env
}
