#!/usr/bin/env bash
# lab/toolchain.sh: builds the pinned lab toolchain from the Go module proxy,
# once, into a cache outside the clone keyed by version, and prints where it is.
#
#   lab/toolchain.sh [all|pulumi|kubernetes-plugin|controlplane|kwok|kube-score|actionlint|traefik|pebble]...
#
# Output: lines NAME=PATH for each tool asked for (default: all). A second run
# finds every binary in the cache and builds nothing. Versions: lab/versions.env.
# Cache: $FASTAPI_INFRA_CACHE, default ${XDG_CACHE_HOME:-~/.cache}/fastapi-infra.
set -euo pipefail

lab=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$lab/versions.env"
cache=${FASTAPI_INFRA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fastapi-infra}
mkdir -p "$cache"

die() { echo "toolchain: $*" >&2; exit 1; }
command -v go >/dev/null || die "'go' is not on PATH: install Go 1.26 or newer (https://go.dev/dl) and retry"
command -v flock >/dev/null || die "'flock' is not on PATH: apt-get install util-linux"
log() { echo "toolchain: $*" >&2; }

# One build at a time per cache, so CI and a developer never race on a folder.
exec 9>"$cache/.lock"
flock 9

# fresh_work NAME: an empty scratch module folder for one build.
fresh_work() {
	local w="$cache/work/$1"
	rm -rf "$w" && mkdir -p "$w" && echo "$w"
}

# install_bin BUILT FINAL: atomic, so an interrupted build never leaves a
# half-written binary that a later run would take as cached.
install_bin() {
	mkdir -p "$(dirname "$2")" && mv "$1" "$2.tmp" && mv "$2.tmp" "$2"
	rm -rf "$(dirname "$1")" # the scratch module; the Go caches keep what a rebuild needs
}

# downloaded FIELD DIR MODULE@VERSION: a path from `go mod download -json`
# run in the scratch module DIR: Dir (the module's source) or GoMod (its
# go.mod).
downloaded() {
	(cd "$2" && go mod download -json "$3") | sed -n "s/.*\"$1\": \"\(.*\)\",/\1/p"
}

pulumi_bin="$cache/pulumi-$PULUMI_VERSION/bin/pulumi"
build_pulumi() {
	[ -x "$pulumi_bin" ] && return
	log "building pulumi $PULUMI_VERSION (about 7 CPU-minutes, once)"
	local w; w=$(fresh_work "pulumi-$PULUMI_VERSION")
	# pkg/v3's own go.mod replaces clipboard; replaces of dependencies are
	# ignored, so the wrapper repeats it.
	cat >"$w/go.mod" <<MOD
module fastapi-infra/lab/pulumi

go 1.26

replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
MOD
	(cd "$w" &&
		go get "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@$PULUMI_VERSION" "github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION" &&
		CGO_ENABLED=0 go build -trimpath -o pulumi \
			-ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
			github.com/pulumi/pulumi/pkg/v3/cmd/pulumi) || die "building pulumi $PULUMI_VERSION failed (see above)"
	install_bin "$w/pulumi" "$pulumi_bin"
}

k8s_plugin_bin="$cache/pulumi-resource-kubernetes-$PULUMI_KUBERNETES_VERSION/pulumi-resource-kubernetes"
build_kubernetes_plugin() {
	[ -x "$k8s_plugin_bin" ] && return
	log "building pulumi-resource-kubernetes $PULUMI_KUBERNETES_VERSION ($PULUMI_KUBERNETES_PROVIDER_MODULE; about 13 CPU-minutes, 4.6 GB, once)"
	local w; w=$(fresh_work "pulumi-resource-kubernetes-$PULUMI_KUBERNETES_VERSION")
	local mod=github.com/pulumi/pulumi-kubernetes/provider/v4
	# Upstream replaces sdk/v4 with ../sdk, which a module download lacks.
	cat >"$w/go.mod" <<MOD
module fastapi-infra/lab/pulumi-resource-kubernetes

go 1.26

require (
	$mod $PULUMI_KUBERNETES_PROVIDER_MODULE
	github.com/pulumi/pulumi-kubernetes/sdk/v4 v$PULUMI_KUBERNETES_VERSION
)

replace github.com/pulumi/pulumi-kubernetes/sdk/v4 => github.com/pulumi/pulumi-kubernetes/sdk/v4 v$PULUMI_KUBERNETES_VERSION
MOD
	local src
	src=$(downloaded Dir "$w" "$mod@$PULUMI_KUBERNETES_PROVIDER_MODULE")
	[ -d "$src/cmd/pulumi-resource-kubernetes" ] || die "cannot download $mod@$PULUMI_KUBERNETES_PROVIDER_MODULE"
	# The module zip lacks the embedded schema files: copy the command and
	# let its own go:generate derive them from the committed schema.json.
	cp "$src"/cmd/pulumi-resource-kubernetes/* "$w/" && chmod u+w "$w"/*
	(cd "$w" &&
		go mod tidy &&
		VERSION=$PULUMI_KUBERNETES_VERSION go run ./generate.go &&
		CGO_ENABLED=0 go build -trimpath -o pulumi-resource-kubernetes \
			-ldflags "-s -w -X $mod/pkg/version.Version=$PULUMI_KUBERNETES_VERSION" .) ||
		die "building pulumi-resource-kubernetes failed (see above)"
	install_bin "$w/pulumi-resource-kubernetes" "$k8s_plugin_bin"
}

controlplane_bin="$cache/controlplane-$KUBERNETES_VERSION/controlplane"
build_controlplane() {
	[ -x "$controlplane_bin" ] && return
	log "building the Kubernetes $KUBERNETES_VERSION control plane (about 5 CPU-minutes, once)"
	local w; w=$(fresh_work "controlplane-$KUBERNETES_VERSION")
	cp "$lab/controlplane/main.go" "$lab/controlplane/go.mod" "$w/" && chmod u+w "$w"/*
	local staging=${KUBERNETES_VERSION/v1./v0.}
	(
		cd "$w"
		local kmod
		kmod=$(downloaded GoMod "$w" "k8s.io/kubernetes@$KUBERNETES_VERSION")
		[ -f "$kmod" ] || die "cannot download k8s.io/kubernetes@$KUBERNETES_VERSION"
		go mod edit -require="k8s.io/kubernetes@$KUBERNETES_VERSION"
		# k8s.io/kubernetes points its staging modules at ./staging; use
		# their published versions instead. sample-cli-plugin is not served
		# and not needed.
		awk '/^replace \(/{on=1;next} on&&/^\)/{on=0} on&&$1~/^k8s.io\//{print $1}' "$kmod" |
			grep -v '^k8s.io/sample-cli-plugin$' |
			while read -r m; do go mod edit -replace="$m=$m@$staging"; done
		go mod tidy
		CGO_ENABLED=0 go build -trimpath -o controlplane \
			-ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${KUBERNETES_VERSION#v1.}" .
	) || die "building the control plane failed (see above)"
	install_bin "$w/controlplane" "$controlplane_bin"
}

traefik_bin="$cache/traefik-$TRAEFIK_VERSION/traefik"
build_traefik() {
	[ -x "$traefik_bin" ] && return
	log "building traefik $TRAEFIK_VERSION (about 10 CPU-minutes, once)"
	local w; w=$(fresh_work "traefik-$TRAEFIK_VERSION")
	local mod=github.com/traefik/traefik/v3
	local gomod
	gomod=$(downloaded GoMod "$w" "$mod@$TRAEFIK_VERSION")
	[ -f "$gomod" ] || die "cannot download $mod@$TRAEFIK_VERSION"
	# Traefik replaces three dependencies with its forks; a wrapper module
	# must repeat them (replaces of a dependency are ignored).
	{
		printf 'module fastapi-infra/lab/traefik\n\ngo 1.26\n\nrequire %s %s\n\n' "$mod" "$TRAEFIK_VERSION"
		awk '/^replace \(/{on=1;print;next} on&&/^\)/{on=0;print;next} on{print} /^replace [^(]/{print}' "$gomod"
	} >"$w/go.mod"
	printf '//go:build tools\n\npackage tools\n\nimport _ "%s/cmd/traefik"\n' "$mod" >"$w/tools.go"
	(cd "$w" && go mod tidy &&
		CGO_ENABLED=0 go build -trimpath -o traefik \
			-ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" "$mod/cmd/traefik") ||
		die "building traefik $TRAEFIK_VERSION failed (see above)"
	install_bin "$w/traefik" "$traefik_bin"
}

# go_install NAME MODULE/CMD VERSION: a tool that `go install` builds as is.
go_install() {
	local bin="$cache/$1-$3/$1"
	[ -x "$bin" ] && return
	log "building $1 $3 (once)"
	GOBIN="$cache/$1-$3" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "$2@$3" ||
		die "building $1 $3 failed (see above)"
}

tools=("$@")
[ ${#tools[@]} -eq 0 ] && tools=(all)
for t in "${tools[@]}"; do
	case "$t" in
	all) set -- pulumi kubernetes-plugin controlplane kwok kube-score actionlint traefik pebble ;;
	*) set -- "$t" ;;
	esac
	for one in "$@"; do
		case "$one" in
		pulumi) build_pulumi && echo "PULUMI=$pulumi_bin" ;;
		kubernetes-plugin) build_kubernetes_plugin && echo "PULUMI_RESOURCE_KUBERNETES=$k8s_plugin_bin" ;;
		controlplane) build_controlplane && echo "CONTROLPLANE=$controlplane_bin" ;;
		kwok) go_install kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION" && echo "KWOK=$cache/kwok-$KWOK_VERSION/kwok" ;;
		kube-score) go_install kube-score github.com/zegl/kube-score/cmd/kube-score "$KUBE_SCORE_VERSION" && echo "KUBE_SCORE=$cache/kube-score-$KUBE_SCORE_VERSION/kube-score" ;;
		actionlint) go_install actionlint github.com/rhysd/actionlint/cmd/actionlint "$ACTIONLINT_VERSION" && echo "ACTIONLINT=$cache/actionlint-$ACTIONLINT_VERSION/actionlint" ;;
		traefik) build_traefik && echo "TRAEFIK=$traefik_bin" ;;
		pebble) go_install pebble github.com/letsencrypt/pebble/v2/cmd/pebble "$PEBBLE_VERSION" && echo "PEBBLE=$cache/pebble-$PEBBLE_VERSION/pebble" ;;
		*) die "unknown tool '$one' (want all, pulumi, kubernetes-plugin, controlplane, kwok, kube-score, actionlint, traefik, pebble)" ;;
		esac
	done
done
