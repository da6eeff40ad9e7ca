#!/usr/bin/env bash
# lab/cluster.sh: a local Kubernetes control plane on 127.0.0.1 with fake
# nodes, for the end-to-end tests.
#
#   lab/cluster.sh start   # builds what is missing (lab/toolchain.sh), starts
#                          # etcd, kube-apiserver, kube-controller-manager,
#                          # kube-scheduler and kwok; prints KUBECONFIG=...
#   lab/cluster.sh stop    # stops only the processes start started
#   lab/cluster.sh status
#
# State (certificates, etcd data, logs, pids) lives in $FASTAPI_INFRA_LAB
# (default: .lab/ in the clone, which git ignores). Ports: LAB_API_PORT
# (default 16443), LAB_ETCD_PORT (default 12379, and the next one for peers).
set -euo pipefail

lab=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$lab/versions.env"
state=${FASTAPI_INFRA_LAB:-$lab/../.lab}/cluster
mkdir -p "$state" && state=$(cd "$state" && pwd)
api_port=${LAB_API_PORT:-16443}
etcd_port=${LAB_ETCD_PORT:-12379}
kubeconfig=$state/admin.kubeconfig
roles=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

die() { echo "cluster: $*" >&2; exit 1; }
log() { echo "cluster: $*" >&2; }

# running ROLE: the pid file names a live process that we started (its
# command line carries our state folder), never a reused pid.
running() {
	local pid
	pid=$(cat "$state/$1.pid" 2>/dev/null) || return 1
	[ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$state"
}

stop() {
	local role pid
	for ((i = ${#roles[@]} - 1; i >= 0; i--)); do
		role=${roles[$i]}
		if running "$role"; then
			pid=$(cat "$state/$role.pid")
			kill "$pid" 2>/dev/null || true
			for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			kill -9 "$pid" 2>/dev/null || true
			log "stopped $role ($pid)"
		fi
		rm -f "$state/$role.pid"
	done
}

certs() {
	[ -s "$state/pki/admin.crt" ] && return
	command -v openssl >/dev/null || die "'openssl' is not on PATH: apt-get install openssl"
	local p=$state/pki
	mkdir -p "$p"
	(
		cd "$p"
		openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=lab-ca" -keyout ca.key -out ca.crt 2>/dev/null
		openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=lab-front-proxy-ca" -keyout front-proxy-ca.key -out front-proxy-ca.crt 2>/dev/null
		sign() { # NAME SUBJECT CA [SAN]
			openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
			if [ -n "${4:-}" ]; then printf 'subjectAltName=%s\n' "$4" >"$1.ext"; else : >"$1.ext"; fi
			openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" -CAcreateserial -days 3650 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
		}
		sign apiserver "/CN=kube-apiserver" ca "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.96.0.1"
		sign admin "/O=system:masters/CN=lab-admin" ca
		sign front-proxy-client "/CN=front-proxy-client" front-proxy-ca
		openssl genrsa -out sa.key 2048 2>/dev/null
		openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
	)
	cat >"$kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority: $p/ca.crt
users:
- name: lab-admin
  user:
    client-certificate: $p/admin.crt
    client-key: $p/admin.key
contexts:
- name: lab
  context: {cluster: lab, user: lab-admin}
current-context: lab
KUBECONFIG
}

# kwok_stages: kwok's own fast node and pod stages from the pinned module,
# with pod-complete told to leave the failing-migration image alone, plus
# the lab's stages. Node heartbeats go through Leases, which kwok renews
# (--node-lease-duration-seconds): without them the node lifecycle
# controller marks the nodes NotReady after 40 s and their pods unready.
kwok_stages() {
	local dir out=$state/kwok-stages.yaml
	dir=$(cd "$lab" && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
	[ -d "$dir/kustomize/stage" ] || die "cannot find kwok $KWOK_VERSION's stages in the Go module cache"
	local s=$dir/kustomize/stage
	{
		for f in "$s/node/fast/node-initialize.yaml" "$s/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
			"$s/pod/fast/pod-ready.yaml" "$s/pod/fast/pod-delete.yaml"; do
			cat "$f" && echo "---"
		done
		sed "/^    - key: '.metadata.ownerReferences.\[\].kind'/i\\
    - key: '.spec.containers.[].image'\\
      operator: 'NotIn'\\
      values:\\
      - '$LAB_FAILING_MIGRATION_IMAGE'" "$s/pod/fast/pod-complete.yaml"
		echo "---"
		sed "s|FAILING_MIGRATION_IMAGE|$LAB_FAILING_MIGRATION_IMAGE|" "$lab/kwok/stages.yaml"
	} >"$out"
	grep -q "NotIn" "$out" || die "patching kwok's pod-complete stage failed"
	echo "$out"
}

launch() { # ROLE BINARY ARGS...
	local role=$1
	shift
	running "$role" && return
	setsid "$@" >"$state/$role.log" 2>&1 </dev/null &
	echo $! >"$state/$role.pid"
}

wait_for() { # WHAT SECONDS COMMAND...
	local what=$1 secs=$2
	shift 2
	for _ in $(seq $((secs * 5))); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	die "$what did not come up in ${secs}s; see $state/*.log"
}

start() {
	local tools
	tools=$("$lab/toolchain.sh" controlplane kwok) || die "the toolchain could not be built (see above)"
	local cp kwok
	cp=$(sed -n 's/^CONTROLPLANE=//p' <<<"$tools")
	kwok=$(sed -n 's/^KWOK=//p' <<<"$tools")
	command -v curl >/dev/null || die "'curl' is not on PATH: apt-get install curl"
	certs
	local p=$state/pki
	local stages
	stages=$(kwok_stages)
	if ! running etcd && (exec 3<>"/dev/tcp/127.0.0.1/$etcd_port") 2>/dev/null; then
		die "port $etcd_port is taken by a process this lab did not start; set LAB_ETCD_PORT"
	fi
	launch etcd "$cp" etcd --name lab --data-dir "$state/etcd" \
		--listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
		--listen-peer-urls "http://127.0.0.1:$((etcd_port + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((etcd_port + 1))" \
		--initial-cluster "lab=http://127.0.0.1:$((etcd_port + 1))" --log-level warn
	wait_for etcd 30 curl -fsS "http://127.0.0.1:$etcd_port/health"
	if ! running kube-apiserver && (exec 3<>"/dev/tcp/127.0.0.1/$api_port") 2>/dev/null; then
		die "port $api_port is taken by a process this lab did not start; set LAB_API_PORT"
	fi
	launch kube-apiserver "$cp" kube-apiserver --etcd-servers "http://127.0.0.1:$etcd_port" \
		--bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
		--cert-dir "$state/apiserver-certs" \
		--tls-cert-file "$p/apiserver.crt" --tls-private-key-file "$p/apiserver.key" --client-ca-file "$p/ca.crt" \
		--service-account-issuer https://kubernetes.default.svc --service-account-key-file "$p/sa.pub" \
		--service-account-signing-key-file "$p/sa.key" --service-cluster-ip-range 10.96.0.0/16 \
		--authorization-mode Node,RBAC --allow-privileged=false \
		--requestheader-client-ca-file "$p/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
		--requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
		--requestheader-extra-headers-prefix X-Remote-Extra- \
		--proxy-client-cert-file "$p/front-proxy-client.crt" --proxy-client-key-file "$p/front-proxy-client.key"
	wait_for kube-apiserver 60 curl -fsS --cacert "$p/ca.crt" --cert "$p/admin.crt" --key "$p/admin.key" "https://127.0.0.1:$api_port/readyz"
	launch kube-controller-manager "$cp" kube-controller-manager --kubeconfig "$kubeconfig" \
		--authentication-kubeconfig "$kubeconfig" --authorization-kubeconfig "$kubeconfig" \
		--bind-address 127.0.0.1 --secure-port 0 --leader-elect=false \
		--service-account-private-key-file "$p/sa.key" --root-ca-file "$p/ca.crt" \
		--cluster-signing-cert-file "$p/ca.crt" --cluster-signing-key-file "$p/ca.key" \
		--use-service-account-credentials=false --controllers '*,-nodeipam,-service-lb-controller,-cloud-node-lifecycle,-route'
	launch kube-scheduler "$cp" kube-scheduler --kubeconfig "$kubeconfig" \
		--authentication-kubeconfig "$kubeconfig" --authorization-kubeconfig "$kubeconfig" \
		--bind-address 127.0.0.1 --secure-port 0 --leader-elect=false
	launch kwok "$kwok" --kubeconfig "$kubeconfig" --config "$stages" \
		--manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake --cidr 10.244.0.0/16 \
		--node-ip 127.0.0.1 --server-address "127.0.0.1:0" --v WARN \
		--node-lease-duration-seconds 40
	nodes
	echo "KUBECONFIG=$kubeconfig"
}

# nodes registers three fake nodes (so topology spread has somewhere to
# spread) and waits until kwok reports them Ready.
nodes() {
	local k=(kubectl --kubeconfig "$kubeconfig")
	command -v kubectl >/dev/null || die "'kubectl' is not on PATH: apt-get install kubernetes-client"
	for i in 1 2 3; do
		cat <<NODE
apiVersion: v1
kind: Node
metadata:
  name: lab-node-$i
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {kubernetes.io/hostname: lab-node-$i, kubernetes.io/os: linux, type: kwok, topology.kubernetes.io/zone: lab-$i}
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110", ephemeral-storage: 100Gi}
  capacity: {cpu: "32", memory: 256Gi, pods: "110", ephemeral-storage: 100Gi}
NODE
		echo "---"
	done | "${k[@]}" apply -f - >/dev/null 2>&1 || die "registering nodes failed; see $state/kube-apiserver.log"
	wait_for "kwok's nodes" 60 bash -c "[ \$(${k[*]} get nodes --no-headers 2>/dev/null | grep -cw Ready) -ge 3 ]"
	# The default ServiceAccount must exist before pods can be created.
	wait_for "the default ServiceAccount" 60 "${k[@]}" -n default get serviceaccount default
	# CRDs of the Prometheus Operator, whose objects the prod stack creates.
	"${k[@]}" apply -f "$lab/crds/" >/dev/null 2>&1 || die "applying lab/crds failed"
	wait_for "the monitoring CRDs" 30 "${k[@]}" get servicemonitors -A
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status)
	for r in "${roles[@]}"; do
		if running "$r"; then echo "$r: running ($(cat "$state/$r.pid"))"; else echo "$r: stopped"; fi
	done
	;;
*) die "usage: lab/cluster.sh start|stop|status" ;;
esac
