#!/usr/bin/env bash
# images/build.sh: the local images the dev stack and the real-Docker tests
# run, made without a registry: a Debian bookworm root file system from
# Debian's packages (debootstrap, the mirror read from this machine's apt
# sources), imported as a base image, and thin images on top of it.
#
#   images/build.sh          prints NAME=IMAGE lines for base, app, postgres, nginx
#                            and prometheus, and tags them fastapi-infra-app:dev,
#                            fastapi-infra-postgres:15, fastapi-infra-nginx:1.22,
#                            fastapi-infra-prometheus:2.42
#
# Built once per content: each tag carries a hash of what went into it, and
# an image that exists is not built again.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
cache=${FASTAPI_INFRA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fastapi-infra}
die() { echo "images: $*" >&2; exit 1; }
log() { echo "images: $*" >&2; }

command -v docker >/dev/null || die "'docker' is not on PATH: install Docker and retry"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer; start it and retry"

suite=bookworm
# Everything the three images need, from Debian's packages (PyPI is not
# reachable here; Debian ships FastAPI, uvicorn, SQLAlchemy and Alembic).
packages=python3,python3-fastapi,python3-uvicorn,python3-sqlalchemy,python3-psycopg2,alembic,python3-prometheus-client,nginx,openssl,postgresql-15,prometheus,ca-certificates

hash_of() { sha256sum | cut -c1-12; }

mirror() {
	local m
	m=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1)
	[ -n "$m" ] || m=$(grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -1)
	[ -n "$m" ] || die "no Debian mirror in /etc/apt/sources.list(.d): configure apt first"
	echo "$m"
}

exists() { docker image inspect "$1" >/dev/null 2>&1; }

base_tag="fastapi-infra-base:$suite-$(echo "$suite $packages" | hash_of)"
if ! exists "$base_tag"; then
	command -v debootstrap >/dev/null || die "'debootstrap' is not on PATH: apt-get install debootstrap"
	root="$cache/rootfs-${base_tag#*:}"
	rm -rf "$root" && mkdir -p "$root"
	log "debootstrap $suite with $packages (a few minutes, once)"
	debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$(mirror)" >"$root.log" 2>&1 ||
		{ tail -30 "$root.log" >&2; die "debootstrap failed (the end of $root.log is above)"; }
	rm -f "$root.log"
	# No daemons start in a build root; keep the image small.
	rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
	tar -C "$root" -c . | docker import - "$base_tag" >/dev/null || die "docker import failed"
	rm -rf "$root"
fi
echo "BASE=$base_tag"

# build NAME ALIAS CONTEXT DOCKERFILE [ARGS...]: tag = hash of the context
# and args; ALIAS is the stable tag the dev stack runs (Pulumi.dev.yaml).
build() {
	local name=$1 alias=$2 ctx=$3 file=$4
	shift 4
	local tag
	tag="fastapi-infra-$name:$( (cd "$ctx" && find . -type f ! -path './tests/*' ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum; echo "$base_tag $*") | hash_of)"
	if ! exists "$tag"; then
		log "building $tag"
		docker build -q -t "$tag" -f "$file" "$@" --build-arg "BASE=$base_tag" "$ctx" >/dev/null 2>"$cache/build-$name.log" ||
			{ cat "$cache/build-$name.log" >&2; die "building $name failed"; }
	fi
	docker tag "$tag" "fastapi-infra-$name:$alias"
	echo "$(echo "$name" | tr a-z- A-Z_)=$tag"
}

build app dev "$repo/app" "$repo/app/Dockerfile" --build-arg "RUNTIME_BASE=$base_tag" --build-arg "BUILD_BASE=$base_tag" --build-arg DEPS=system
build postgres 15 "$here/postgres" "$here/postgres/Dockerfile"
build nginx 1.22 "$here/nginx" "$here/nginx/Dockerfile"
build prometheus 2.42 "$here/prometheus" "$here/prometheus/Dockerfile"
