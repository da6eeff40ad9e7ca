#!/usr/bin/env bash
# app/tests/run.sh: the example service's tests against a real PostgreSQL
# (Debian's), started in a temporary folder on a loopback port and stopped
# at the end, with Debian's python3 packages (PyPI is not needed).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
app=$(dirname "$here")
py=/usr/bin/python3
pkgs=(python3-fastapi python3-uvicorn python3-sqlalchemy python3-psycopg2 alembic python3-prometheus-client python3-pytest python3-httpx postgresql)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
	echo "app tests: installing ${missing[*]}" >&2
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
		{ echo "app tests: could not install ${missing[*]}" >&2; exit 1; }
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
port=${APP_TEST_PG_PORT:-55432}
data=$(mktemp -d /tmp/app-tests-pg.XXXXXX)
chown postgres:postgres "$data"
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
stop() { as_pg "$bin/pg_ctl" -D "$data/db" -m fast -w stop >/dev/null 2>&1 || true; rm -rf "$data"; }
trap stop EXIT
as_pg "$bin/initdb" -D "$data/db" --username=postgres --auth=trust >/dev/null
as_pg "$bin/pg_ctl" -D "$data/db" -l "$data/log" -w \
	-o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$data" start >/dev/null
as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE ROLE app LOGIN PASSWORD 'app-test-pw'" \
	-c "CREATE DATABASE app OWNER app"
export TEST_DATABASE_URL="postgresql://app:app-test-pw@127.0.0.1:$port/app"
cd "$app"
"$py" -m pytest -q -p no:cacheprovider tests "$@"
