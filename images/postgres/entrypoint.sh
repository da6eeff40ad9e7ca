#!/bin/sh
# Initialises the data directory on first start, then runs postgres in the
# foreground (so SIGINT/SIGTERM reach it directly). As root (Docker) it
# prepares the folders and drops to the postgres user; as the postgres user
# itself (Kubernetes, runAsUser 999) it does the same without the chown.
set -eu
: "${POSTGRES_USER:=postgres}" "${POSTGRES_DB:=$POSTGRES_USER}"
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE"); fi
[ -n "${POSTGRES_PASSWORD:-}" ] || { echo "postgres: set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE" >&2; exit 1; }
mkdir -p "$PGDATA" /run/postgresql
if [ "$(id -u)" = 0 ]; then
	# A volume made by an image whose postgres user had another uid.
	[ "$(stat -c %u "$PGDATA")" = "$(id -u postgres)" ] || chown -R postgres:postgres "$PGDATA"
	chown postgres:postgres /run/postgresql
	as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
else
	as_postgres() { "$@"; }
fi
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
	pwfile=$(mktemp)
	printf '%s' "$POSTGRES_PASSWORD" >"$pwfile"
	[ "$(id -u)" = 0 ] && chown postgres "$pwfile"
	as_postgres initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-host=scram-sha-256 --auth-local=trust >/dev/null
	rm -f "$pwfile"
	echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
	as_postgres pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
	if [ "$POSTGRES_DB" != postgres ]; then
		as_postgres psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -c "CREATE DATABASE \"$POSTGRES_DB\"" >/dev/null
	fi
	# As the official image: scripts for a new data directory, run while
	# the server answers on its socket only; one that fails stops here.
	for f in /docker-entrypoint-initdb.d/*.sh; do
		[ -e "$f" ] || continue
		echo "postgres: running $f"
		as_postgres bash "$f"
	done
	as_postgres pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
# As the official image takes it: a command of "postgres" and the server's
# options (-c archive_command=...).
[ "${1:-}" != postgres ] || shift
if [ "$(id -u)" = 0 ]; then
	exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -c listen_addresses='*' "$@"
fi
exec postgres -c listen_addresses='*' "$@"
