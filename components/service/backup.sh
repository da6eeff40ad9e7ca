# The single server's database backups, run by bash in the database's own
# image (its pg_dump matches the server's major version). The container's
# command is `bash -c <this> backup <action>`:
#   loop              every minute the schedule is due, back up (the container's command)
#   now               back up once; exit non-zero when it failed
#   list              the backups, newest first
#   restore FILE      pg_restore FILE (a name in the backups folder) into the database
#   due EPOCH         exit 0 when the schedule fires in that minute (the tests compare it with Go's)
#   kind              "pgbackrest" (an off-host repository) or "dump"
#   dump              a pg_dump into the backups folder, whatever the kind (the copy a restore takes first)
# Settings come from the environment: BACKUP_SCHEDULE (cron, UTC),
# BACKUP_KEEP, BACKUP_DIR, APP_USER (the app role restored tables are
# granted to), and libpq's PGHOST, PGPORT, PGUSER, PGDATABASE,
# PGPASSFILE. With BACKUP_REPOSITORY=pgbackrest the schedule's backups are
# pgBackRest's full backups into the repository its configuration file
# (REPOSITORY_CONF_FILE) names, "now" is an incremental one (a manual backup
# never pushes a scheduled full one out of retention), and "list" is the
# repository's backups; the server archives its WAL there itself. Status
# files go to STATUS_DIR (default BACKUP_DIR).
set -u
umask 077
# The schedule is in UTC, whatever the image's zone.
export TZ=UTC
if [[ -n ${PGPASSWORD_FILE:-} ]]; then
	PGPASSWORD=$(<"$PGPASSWORD_FILE")
	export PGPASSWORD
fi

# grant_app gives the app role APP_USER the rows of the restored tables:
# a dump made before the role existed carries no grants for it (the same
# statements as service.GrantApp, which the role step runs).
grant_app() {
	[[ -n ${APP_USER:-} ]] || return 0
	psql -X -q -v ON_ERROR_STOP=1 -v app="$APP_USER" <<'SQL'
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app";
SQL
}

# One cron field: values, a-b ranges, */n and a-b/n steps, comma lists.
field_has() { # value field min max
	local v=$((10#$1)) item range step lo hi
	local -a items
	IFS=, read -ra items <<<"$2"
	for item in "${items[@]}"; do
		range=${item%/*} step=1
		[[ $item == */* ]] && step=${item#*/}
		if [[ $range == '*' ]]; then lo=$3 hi=$4
		elif [[ $range == *-* ]]; then lo=${range%-*} hi=${range#*-}
		else lo=$range hi=$range; [[ $item == */* ]] && hi=$4; fi
		((v >= lo && v <= hi && (v - lo) % step == 0)) && return 0
	done
	return 1
}

# due EPOCH: whether the schedule fires in that minute; as in cron, when
# both day fields are restricted either one matching is enough.
due() {
	local m h dom mon dow now
	# bash's own strftime: no process per minute checked.
	printf -v now '%(%M %H %d %m %w)T' "$1"
	read -r m h dom mon dow <<<"$now"
	set -f
	set -- $BACKUP_SCHEDULE
	set +f
	field_has "$m" "$1" 0 59 && field_has "$h" "$2" 0 23 && field_has "$mon" "$4" 1 12 || return 1
	if [[ $3 == '*' || $5 == '*' ]]; then
		field_has "$dom" "$3" 1 31 && field_has "$dow" "$5" 0 6
	else
		field_has "$dom" "$3" 1 31 || field_has "$dow" "$5" 0 6
	fi
}

# record SQL: the table of finished backups in the postgres database, which
# the database exporter reads for the backup age alert (never in the app's
# database, where a migration tool would find a table it does not know).
# A failure to record is logged, never fatal: the dump is what matters.
record() {
	PGOPTIONS='-c client_min_messages=warning' psql -X -q -d postgres -v ON_ERROR_STOP=1 \
		-c 'CREATE TABLE IF NOT EXISTS fastapi_infra_backup (finished timestamptz NOT NULL)' \
		-c 'GRANT SELECT ON fastapi_infra_backup TO pg_monitor' -c "$1" >/dev/null ||
		echo "backup: could not record in the postgres database's fastapi_infra_backup table (the backup age alert reads it)" >&2
}

status_dir=${STATUS_DIR:-${BACKUP_DIR:-}}

# pgbackrest ACTION...: the stack's pgBackRest command (its config is a
# secret file; the stanza is the stack's cluster).
pgbackrest_() { pgbackrest --config="$REPOSITORY_CONF_FILE" --stanza=main "$@"; }

# labels: the repository's backups, oldest first, as pgbackrest info names
# them.
labels() { pgbackrest_ info | sed -n 's/^ *\(full\|diff\|incr\) backup: \([^ ]*\).*/\2/p'; }

# repository_backup TYPE: a pgBackRest backup (full, diff or incr) into
# the repository; the status files feed the healthcheck.
repository_backup() {
	local label
	if pgbackrest_ backup --type="$1"; then
		label=$(labels | tail -n 1)
		echo "backup: wrote $label ($1) into the repository"
		touch "$status_dir/.last-success"
		record "INSERT INTO fastapi_infra_backup VALUES (now()); DELETE FROM fastapi_infra_backup WHERE finished < now() - interval '400 days'"
		return 0
	fi
	echo "backup: FAILED: pgBackRest $1 backup of $PGDATABASE (the lines above say why)" >&2
	touch "$status_dir/.last-failure"
	return 1
}

# repository_ready: the stanza exists in the repository and matches this
# cluster (stanza-create makes it once and then only checks), and it holds
# a full backup, taken now when it holds none (a point-in-time restore
# starts from one). Never stanza-upgrade or -delete: a cluster that does
# not match (a new one after the host was lost) is reported, and waits for
# ./infra restore.
repository_ready() {
	pgbackrest_ stanza-create >/dev/null 2>&1 || {
		pgbackrest_ stanza-create
		echo "backup: the repository is not ready for this cluster (the lines above say why); WAL archiving fails until it is. A new cluster on a host that lost the old one: ./infra restore <stack> --latest" >&2
		touch "$status_dir/.last-failure"
		return 1
	}
	if ! pgbackrest_ info | grep -q '^ *full backup:'; then
		echo "backup: the repository has no full backup yet; taking one"
		repository_backup full
	fi
}

# backup: a custom-format dump written beside its final name and renamed
# when complete, so a listed backup is always whole; then the oldest
# beyond BACKUP_KEEP go. The status files feed the healthcheck.
backup() {
	local name file
	name="$PGDATABASE-$(date -u +%Y%m%dT%H%M%SZ).dump"
	file="$BACKUP_DIR/$name"
	if pg_dump --format=custom --file="$file.partial" && mv "$file.partial" "$file"; then
		echo "backup: wrote $name ($(stat -c %s "$file") bytes)"
		touch "$status_dir/.last-success"
		record "INSERT INTO fastapi_infra_backup VALUES (now()); DELETE FROM fastapi_infra_backup WHERE finished < now() - interval '400 days'"
		ls -1t "$BACKUP_DIR"/*.dump | tail -n +"$((BACKUP_KEEP + 1))" | xargs -r rm -f --
		return 0
	fi
	rm -f "$file.partial"
	echo "backup: FAILED: pg_dump of $PGDATABASE on $PGHOST:$PGPORT (the lines above say why)" >&2
	touch "$status_dir/.last-failure"
	return 1
}

repository=${BACKUP_REPOSITORY:-}
case "${1:-loop}" in
loop)
	trap 'exit 0' TERM INT
	if [[ $repository == pgbackrest ]]; then
		echo "backup: full backups on \"$BACKUP_SCHEDULE\" (UTC) into the pgBackRest repository, keeping $BACKUP_KEEP with their WAL"
		ready=
		repository_ready && ready=1
	else
		echo "backup: schedule \"$BACKUP_SCHEDULE\" (UTC) into $BACKUP_DIR, keeping $BACKUP_KEEP"
		# The age is counted from the first start: a new database is not
		# reported as missing a backup before its first is due.
		record 'INSERT INTO fastapi_infra_backup SELECT now() WHERE NOT EXISTS (SELECT 1 FROM fastapi_infra_backup)'
	fi
	while :; do
		now=$(date +%s)
		next=$(((now / 60 + 1) * 60))
		sleep "$((next - now))" &
		wait $!
		if [[ $repository == pgbackrest ]]; then
			# Until the repository is ready (unreachable, or a cluster that
			# waits for its restore), it is asked again every minute.
			if [[ -z $ready ]]; then
				repository_ready && ready=1
			elif due "$next"; then
				repository_backup full
			fi
		else
			due "$next" && backup
		fi
	done
	;;
now)
	if [[ $repository == pgbackrest ]]; then repository_backup incr; else backup; fi
	;;
dump) backup ;;
kind) if [[ $repository == pgbackrest ]]; then echo pgbackrest; else echo dump; fi ;;
list)
	if [[ $repository == pgbackrest ]]; then
		labels | tac
	else
		ls -1t "$BACKUP_DIR" | grep '\.dump$'
	fi
	;;
restore)
	file="$BACKUP_DIR/${2:?restore needs a backup name}"
	[[ $2 != */* && -f $file ]] || { echo "backup: no backup named $2 in $BACKUP_DIR" >&2; exit 2; }
	# One transaction: a restore that fails leaves the database as it was.
	pg_restore --clean --if-exists --no-owner --single-transaction --exit-on-error --dbname="$PGDATABASE" "$file" &&
		grant_app &&
		echo "backup: restored $2 into $PGDATABASE"
	;;
due) due "$2" ;;
*) echo "backup: unknown action $1" >&2; exit 2 ;;
esac
