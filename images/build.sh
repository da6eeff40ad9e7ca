#!/usr/bin/env bash
# images/build.sh: the local images the dev stack and the real-Docker tests
# run, made without a registry: a Debian bookworm root file system from
# Debian's packages (debootstrap, the mirror read from this machine's apt
# sources), imported as a base image, and thin images on top of it.
#
#   images/build.sh [TARGET...] makes each target's images (dev when none):
#
#   images/build.sh [dev]    prints NAME=IMAGE lines for base, app, postgres, nginx,
#                            prometheus, alertmanager and postgres-exporter, and
#                            tags them fastapi-infra-app:dev, fastapi-infra-postgres:15,
#                            fastapi-infra-nginx:1.22, fastapi-infra-prometheus:2.42,
#                            fastapi-infra-alertmanager:0.25,
#                            fastapi-infra-postgres-exporter:0.11
#   images/build.sh acme     prints TRAEFIK=IMAGE and PEBBLE=IMAGE: Traefik and
#                            Let's Encrypt's test ACME server, built by
#                            cmd/toolchain, for the Traefik real-Docker test
#   images/build.sh logs     prints VICTORIA_LOGS=IMAGE: VictoriaLogs, built by
#                            cmd/toolchain, the single server's log store
#   images/build.sh fresh    prints FRESH=IMAGE: a new user's Debian bookworm
#                            (a C compiler, git, CA certificates; no Go, no
#                            Docker, no debootstrap, no Pulumi), where the
#                            fresh-machine test runs ./infra preview dev
#   images/build.sh current  prints CURRENT=IMAGE: Debian trixie with the
#                            current FastAPI generation and pytest, where
#                            app/tests/run.sh tests the pinned PyPI versions
#
# Built once per content: each tag carries a hash of what went into it, and
# an image that exists is not built again. The engine's images are listed
# once per run: ./infra up dev runs this every time, and a docker command
# costs 0.1-0.3 s (it asked the engine 17 times when nothing was to do, and
# went through `go run`: now one `docker images`).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
cache=${FASTAPI_INFRA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fastapi-infra}
die() { echo "images: $*" >&2; exit 1; }
log() { echo "images: $*" >&2; }

command -v docker >/dev/null || die "'docker' is not on PATH: install Docker and retry"
# image_ids[REF] is the ID of each image the engine has.
declare -A image_ids
list_images() {
	local listing ref id
	listing=$(docker images --no-trunc --format '{{.Repository}}:{{.Tag}} {{.ID}}' 2>/dev/null) ||
		die "the Docker engine does not answer; start it and retry"
	image_ids=()
	while read -r ref id; do
		[ -z "$ref" ] || image_ids[$ref]=$id # an engine with no image lists nothing
	done <<<"$listing"
}
list_images

# Everything the images need, from Debian's packages (PyPI is not reachable
# here; Debian ships FastAPI, uvicorn, SQLAlchemy and Alembic).
runtime_packages=python3,python3-fastapi,python3-uvicorn,python3-sqlalchemy,python3-psycopg2,alembic,python3-prometheus-client

# hash_of: the first 12 hex digits of stdin's sha256. Here and below bash's
# own expansions stand in for cut, tr, sed and basename: ./infra runs this
# on every up, and each process cost 10-30 ms here.
hash_of() {
	local sum
	sum=$(sha256sum)
	echo "${sum:0:12}"
}
# upper NAME: NAME as a variable name (victoria-logs: VICTORIA_LOGS).
upper() {
	local u=${1^^}
	echo "${u//-/_}"
}

mirror() {
	local m
	m=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1)
	[ -n "$m" ] || m=$(grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -1)
	[ -n "$m" ] || die "no Debian mirror in /etc/apt/sources.list(.d): configure apt first"
	echo "$m"
}

exists() { [ -n "${image_ids[$1]:-}" ]; }
# remember REF: a tag this run made, added to the list.
remember() { image_ids[$1]=$(docker image inspect -f '{{.Id}}' "$1"); }
# alias_tag REF ALIAS: tags REF as ALIAS unless ALIAS is that image already.
alias_tag() {
	[ "${image_ids[$2]:-}" = "${image_ids[$1]}" ] && return 0
	docker tag "$1" "$2"
	image_ids[$2]=${image_ids[$1]}
}

# ensure_debootstrap installs Debian's debootstrap when it is missing, as
# ./run-tests does for its packages, so that ./infra up dev needs no set-up
# step by hand; without root or apt it says what to run.
ensure_debootstrap() {
	command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] && return 0
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		log "installing debootstrap (Debian's package) to build the local images from Debian's packages"
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap; } >"$cache/apt-debootstrap.log" 2>&1 ||
			{ cat "$cache/apt-debootstrap.log" >&2; die "installing debootstrap failed (above)"; }
		return 0
	fi
	die "'debootstrap' is not installed: run sudo apt-get install debootstrap (it builds the local images from Debian's packages), then retry"
}

# fetch_deb SUITE PACKAGE DEST: one arch-independent package from another
# suite, verified the way apt does it: InRelease signed by a Debian archive
# key, Packages.xz by InRelease's SHA256, the .deb by Packages'.
fetch_deb() {
	local suite=$1 pkg=$2 dest=$3 m tmp sum file
	m=$(mirror)
	tmp=$(mktemp -d)
	curl -fsS --max-time 120 -o "$tmp/InRelease" "$m/dists/$suite/InRelease" || die "cannot fetch $m/dists/$suite/InRelease"
	gpgv --keyring /usr/share/keyrings/debian-archive-keyring.gpg --output "$tmp/Release" "$tmp/InRelease" 2>/dev/null ||
		die "$suite's InRelease is not signed by a key in debian-archive-keyring"
	sum=$(awk '/^SHA256:/{s=1;next} /^[^ ]/{s=0} s && $3=="main/binary-all/Packages.xz"{print $1}' "$tmp/Release")
	curl -fsS --max-time 300 -o "$tmp/Packages.xz" "$m/dists/$suite/main/binary-all/Packages.xz" || die "cannot fetch $suite's package index"
	echo "$sum  $tmp/Packages.xz" | sha256sum -c --quiet - || die "$suite's Packages.xz does not match its InRelease"
	read -r file sum < <(xz -dc "$tmp/Packages.xz" | awk -v p="$pkg" '$1=="Package:"{k=($2==p)} k&&$1=="Filename:"{f=$2} k&&$1=="SHA256:"{print f, $2; exit}')
	[ -n "$file" ] || die "$suite has no $pkg"
	curl -fsS --max-time 300 -o "$dest" "$m/$file" || die "cannot fetch $m/$file"
	echo "$sum  $dest" | sha256sum -c --quiet - || die "$file does not match $suite's package index"
	rm -rf "$tmp"
}

# base NAME SUITE PACKAGES [SUITE:PACKAGE...]: a Debian SUITE root file
# system with PACKAGES (and single packages from other suites), imported as
# fastapi-infra-NAME:SUITE-<hash>; sets $base_tag.
base() {
	local name=$1 suite=$2 packages=$3
	shift 3
	base_tag="fastapi-infra-$name:$suite-$(echo "$suite $packages $*" | sed 's/ $//' | hash_of)"
	exists "$base_tag" && return 0
	ensure_debootstrap
	local root="$cache/rootfs-$name-${base_tag#*:}"
	rm -rf "$root" && mkdir -p "$root"
	log "debootstrap $suite with $packages (a few minutes, once)"
	debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$(mirror)" >"$root.log" 2>&1 ||
		{ tail -30 "$root.log" >&2; die "debootstrap $suite failed (the end of $root.log is above)"; }
	rm -f "$root.log"
	local extra
	for extra in "$@"; do
		fetch_deb "${extra%%:*}" "${extra#*:}" "$root/tmp/extra.deb"
		chroot "$root" dpkg -i /tmp/extra.deb >/dev/null || die "installing ${extra#*:} from ${extra%%:*} failed"
		rm -f "$root/tmp/extra.deb"
	done
	# No daemons start in a build root; keep the image small.
	rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
	tar -C "$root" -c . | docker import - "$base_tag" >/dev/null || die "docker import failed"
	remember "$base_tag"
	rm -rf "$root"
}

mkdir -p "$cache"
targets=("${@:-dev}")
for target in "${targets[@]}"; do
	case "$target" in
	dev | acme | logs | fresh | current) ;;
	*) die "unknown target '$target': want dev (the dev stack's images), acme (Traefik and the Pebble ACME CA), logs (VictoriaLogs), fresh (a new user's machine) or current (the app's test image on current FastAPI)" ;;
	esac
done
# One build at a time: the e2e and the real-Docker tests ask for images at
# once, and the targets share the base; two debootstraps into one folder fail.
command -v flock >/dev/null || die "'flock' is not on PATH: apt-get install util-linux"
exec 9>"$cache/images.lock"
if ! flock -n 9; then
	log "waiting for another images/build.sh to finish"
	flock 9
	list_images
fi

# The base of the dev, acme and logs images, once per run.
base_image() {
	[ -z "${base_done:-}" ] || return 0
	base base bookworm "$runtime_packages,nginx,openssl,postgresql-15,prometheus,prometheus-alertmanager,prometheus-postgres-exporter,pgbackrest,ca-certificates"
	echo "BASE=$base_tag"
	base_done=1
}

# build NAME ALIAS CONTEXT DOCKERFILE [ARGS...]: tag = ALIAS-hash of the context
# and args (so a tag says the version, e.g. postgres:15-<hash>, which the
# driver's major-version guard reads); ALIAS is the stable tag the dev stack
# runs (Pulumi.dev.yaml).
build() {
	local name=$1 alias=$2 ctx=$3 file=$4
	shift 4
	build_tag "$name" "$alias" "fastapi-infra-$name:$alias-$( (cd "$ctx" && find . -type f ! -path './tests/*' ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum; echo "$base_tag $*") | hash_of)" "$ctx" "$file" "$@"
}

# build_tag NAME ALIAS TAG CONTEXT DOCKERFILE [ARGS...]: builds TAG unless it
# exists, tags it ALIAS and prints NAME=TAG.
build_tag() {
	local name=$1 alias=$2 tag=$3 ctx=$4 file=$5
	shift 5
	if ! exists "$tag"; then
		log "building $tag"
		docker build -q -t "$tag" -f "$file" "$@" --build-arg "BASE=$base_tag" "$ctx" >/dev/null 2>"$cache/build-$name.log" ||
			{ cat "$cache/build-$name.log" >&2; die "building $name failed"; }
		remember "$tag"
	fi
	alias_tag "$tag" "fastapi-infra-$name:$alias"
	echo "$(upper "$name")=$tag"
}

# tool_images TOOL...: images of binaries from the toolchain, each in a
# build context of its own (the Dockerfile and the binary), tagged by a hash
# of the context as build does. The context (tens of MB) is copied only when
# the image is to be built; the binary's sha256 is kept in the cache by its
# path, size and time, as hashing it took longer than the rest of a run.
# FASTAPI_INFRA_TOOLCHAIN is a built cmd/toolchain (./infra's), else go run.
tool_images() {
	local tools tool key ctx version bin tag name value dockerfile_sum
	if [ -n "${FASTAPI_INFRA_TOOLCHAIN:-}" ]; then
		tools=$("$FASTAPI_INFRA_TOOLCHAIN" "$@") || die "$FASTAPI_INFRA_TOOLCHAIN $* failed"
	else
		tools=$(cd "$repo" && go run ./cmd/toolchain "$@") || die "go run ./cmd/toolchain $* failed"
	fi
	for tool in "$@"; do
		key=$(upper "$tool")
		bin= version=
		while IFS== read -r name value; do
			case "$name" in
			"$key") bin=$value ;;
			"${key}_VERSION") version=$value ;;
			esac
		done <<<"$tools"
		[ -n "$bin" ] && [ -n "$version" ] || die "cmd/toolchain named no $key and ${key}_VERSION:"$'\n'"$tools"
		dockerfile_sum=$(sha256sum <"$here/$tool/Dockerfile")
		# What build's find | sha256sum prints for the context, in its order.
		tag="fastapi-infra-$tool:${version#v}-$( (printf '%s  ./Dockerfile\n' "${dockerfile_sum%% *}"
			printf '%s  ./%s\n' "$(binary_hash "$tool" "$bin")" "${bin##*/}"
			echo "$base_tag ") | hash_of)"
		ctx="$cache/context-$tool"
		if ! exists "$tag"; then
			rm -rf "$ctx" && mkdir -p "$ctx"
			cp "$here/$tool/Dockerfile" "$bin" "$ctx/"
		fi
		build_tag "$tool" "${version#v}" "$tag" "$ctx" "$ctx/Dockerfile"
	done
}

# binary_hash TOOL FILE: FILE's sha256, from $cache/hash-TOOL while FILE's
# path, size and modification time are the ones it was computed for.
binary_hash() {
	local stamp="$cache/hash-$1" id sum line
	id="$2 $(stat -c '%s %Y' "$2")"
	if [ -f "$stamp" ] && { read -r line && [ "$line" = "$id" ] && read -r sum; } <"$stamp"; then
		echo "$sum"
		return
	fi
	sum=$(sha256sum <"$2")
	sum=${sum%% *}
	printf '%s\n%s\n' "$id" "$sum" >"$stamp.tmp" && mv "$stamp.tmp" "$stamp"
	echo "$sum"
}

for target in "${targets[@]}"; do
	case "$target" in
	fresh)
		# gcc: the go command compiles with cgo where a C compiler exists, as
		# on the host, so the host's Go build cache serves the test.
		base fresh bookworm gcc,libc6-dev,git,ca-certificates
		echo "FRESH=$base_tag"
		;;
	current)
		# The example app's tests on the current FastAPI generation (Debian
		# trixie: FastAPI 0.115, Pydantic 2, SQLAlchemy 2.0), the versions
		# app/requirements.txt pins for the PyPI build.
		# h11 from forky: 0.16.0, the version requirements.txt pins (trixie's
		# 0.14.0 carries Debian's CVE-2025-43859 fix; PyPI's 0.14.0 does not).
		base pytest trixie "$runtime_packages,python3-pytest,python3-httpx,python3-packaging" forky:python3-h11
		echo "CURRENT=$base_tag"
		;;
	acme) base_image && tool_images traefik pebble ;;
	logs) base_image && tool_images victoria-logs ;;
	dev)
		base_image
		build app dev "$repo/app" "$repo/app/Dockerfile" --build-arg "RUNTIME_BASE=$base_tag" --build-arg "BUILD_BASE=$base_tag" --build-arg DEPS=system
		build postgres 15 "$here/postgres" "$here/postgres/Dockerfile"
		build nginx 1.22 "$here/nginx" "$here/nginx/Dockerfile"
		build prometheus 2.42 "$here/prometheus" "$here/prometheus/Dockerfile"
		build alertmanager 0.25 "$here/alertmanager" "$here/alertmanager/Dockerfile"
		build postgres-exporter 0.11 "$here/postgres-exporter" "$here/postgres-exporter/Dockerfile"
		;;
	esac
done
