#!/usr/bin/env bash
# app/tests/run.sh: the example service's tests against a real PostgreSQL
# (Debian's), started in a temporary folder on a loopback port and stopped
# at the end, on two generations of its dependencies from Debian's packages
# (PyPI is not needed):
#   - this machine's (bookworm: FastAPI 0.92, Pydantic 1, SQLAlchemy 1.4),
#     what the offline images run;
#   - Debian trixie's in a local image (images/build.sh current: FastAPI
#     0.115, Pydantic 2, SQLAlchemy 2.0), the versions requirements.txt pins
#     for the PyPI build, which check_requirements.py holds it to.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
app=$(dirname "$here")
py=/usr/bin/python3
pkgs=(python3-fastapi python3-uvicorn python3-sqlalchemy python3-psycopg2 alembic python3-prometheus-client python3-pytest python3-httpx python3-packaging postgresql)
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
# The single server's replica supervisor, which test_server.py runs too.
supervisor=$(cd "$app/../components/singleserver" && pwd)/replica_supervisor.py
export REPLICA_SUPERVISOR=$supervisor
# Its workers' uvicorn entry point (components/service/command.go).
worker=$(cd "$app/../components/service" && pwd)/uvicorn_worker.py
export UVICORN_WORKER=$worker
versions='import sys, fastapi, pydantic, sqlalchemy, uvicorn; print("Python", sys.version.split()[0], "FastAPI", fastapi.__version__, "Pydantic", pydantic.VERSION, "SQLAlchemy", sqlalchemy.__version__, "uvicorn", uvicorn.__version__)'
cd "$app"
echo "app tests on this machine's packages: $("$py" -c "$versions")"
"$py" -m pytest -q -p no:cacheprovider tests "$@"

image=$("$(dirname "$app")/images/build.sh" current | sed -n 's/^CURRENT=//p')
[ -n "$image" ] || { echo "app tests: images/build.sh current made no image" >&2; exit 1; }
# As the app's user, read-only source, the host's loopback PostgreSQL.
current() {
	docker run --rm --network host --user 10001:10001 -e HOME=/tmp -e PYTHONDONTWRITEBYTECODE=1 \
		-e TEST_DATABASE_URL -e REPLICA_SUPERVISOR=/supervisor/replica_supervisor.py -e UVICORN_WORKER=/supervisor/uvicorn_worker.py \
		-v "$supervisor:/supervisor/replica_supervisor.py:ro" -v "$worker:/supervisor/uvicorn_worker.py:ro" \
		-v "$app:/src:ro" -w /src "$image" "$@"
}
echo "app tests on current packages ($image): $(current python3 -c "$versions")"
current python3 tests/check_requirements.py
current python3 -m pytest -q -p no:cacheprovider tests "$@"
