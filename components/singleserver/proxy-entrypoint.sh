#!/bin/sh
# fastapi-infra proxy entrypoint: makes the self-signed certificate on first
# start (kept in the TLS volume), runs nginx in the foreground, and reloads it
# gracefully when the app replicas behind UPSTREAM_HOST change address (nginx
# resolves upstream names only when it loads its config), once every new
# address answers on UPSTREAM_PORT. SIGTERM/SIGQUIT
# stop nginx gracefully: in-flight requests finish.
set -eu

conf=/etc/nginx/fastapi-infra/nginx.conf

if [ "${TLS_MODE}" = "self-signed" ] && [ ! -s /etc/nginx/tls/tls.key ]; then
	echo "proxy: making a self-signed certificate for ${DOMAIN}" >&2
	openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=${DOMAIN}" \
		-addext "subjectAltName=DNS:${DOMAIN}" \
		-keyout /etc/nginx/tls/tls.key.new -out /etc/nginx/tls/tls.crt 2>/dev/null
	mv /etc/nginx/tls/tls.key.new /etc/nginx/tls/tls.key
fi

resolve() { getent ahostsv4 "${UPSTREAM_HOST}" | awk '{print $1}' | sort -u | tr '\n' ' '; }

# Whether an address answers a connect to the app's port, refused or
# accepted. A new replica's address resolves before its interface is up:
# nginx, reloaded for it then, waited out its 250 ms connect timeout on
# every request it sent there (the slowest of a release, singlebench).
# Without bash (its /dev/tcp) every address counts as answering.
answers() {
	command -v bash >/dev/null 2>&1 || return 0
	timeout 0.2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "${UPSTREAM_PORT}" 2>/dev/null
	[ $? -ne 124 ]
}

# Whether every address in $1 that is not in $2 answers.
new_ones_answer() {
	for addr in $1; do
		case " $2 " in *" $addr "*) continue ;; esac
		answers "$addr" || return 1
	done
}

nginx -c "$conf" -t -q
nginx -c "$conf" -g 'daemon off;' &
pid=$!
trap 'nginx -c "$conf" -s quit; wait "$pid"; exit 0' TERM QUIT INT

# Every second, or every 0.1 s while a new address does not answer yet;
# after 3 s of that nginx reloads anyway (a replica gone meanwhile must
# not keep its address in nginx's list).
last=$(resolve)
waited=0
while kill -0 "$pid" 2>/dev/null; do
	if [ "$waited" -gt 0 ]; then sleep 0.1 & else sleep 1 & fi
	wait $! || true
	now=$(resolve)
	if [ -z "$now" ] || [ "$now" = "$last" ]; then
		waited=0
	elif [ "$waited" -lt 30 ] && ! new_ones_answer "$now" "$last"; then
		waited=$((waited + 1))
	else
		echo "proxy: replicas now at ${now}; reloading" >&2
		nginx -c "$conf" -s reload && last=$now
		waited=0
	fi
done
wait "$pid"
