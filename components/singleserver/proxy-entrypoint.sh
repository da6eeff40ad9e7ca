#!/bin/sh
# fastapi-infra proxy entrypoint: makes the self-signed certificate on first
# start (kept in the TLS volume), runs nginx in the foreground, and reloads it
# gracefully when the app replicas behind UPSTREAM_HOST change address (nginx
# resolves upstream names only when it loads its config). SIGTERM/SIGQUIT
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

nginx -c "$conf" -t -q
nginx -c "$conf" -g 'daemon off;' &
pid=$!
trap 'nginx -c "$conf" -s quit; wait "$pid"; exit 0' TERM QUIT INT

last=$(resolve)
while kill -0 "$pid" 2>/dev/null; do
	sleep 1 &
	wait $! || true
	now=$(resolve)
	if [ -n "$now" ] && [ "$now" != "$last" ]; then
		echo "proxy: replicas now at ${now}; reloading" >&2
		nginx -c "$conf" -s reload && last=$now
	fi
done
wait "$pid"
