#!/usr/bin/env bash
# Sets a stack's secrets from the job's environment (GitHub secrets of the
# job's environment) when the committed stack file does not hold them
# encrypted already; prints no secret. Values go through stdin, never the
# command line.
#   dev:  dbPassword (DB_PASSWORD) and rolloutKey (ROLLOUT_KEY)
#   prod: dbPassword (DB_PASSWORD) and dbAppPassword (DB_APP_PASSWORD), the
#         password of the app's role on the managed database
# Once an operator has committed them encrypted (pulumi config set --secret
# against the team's backend), the environment secrets are not needed.
set -euo pipefail
stack=${1:?usage: stack-secrets.sh STACK}
file=Pulumi.$stack.yaml
need() { # KEY ENVVAR
	if grep -q "^  fastapi-infra:$1:" "$file"; then
		return
	fi
	local value=${!2:-}
	[ -n "$value" ] || { echo "$file has no $1 and the secret $2 is not set in this job's environment; set one of them (README: CI)" >&2; exit 1; }
	printf '%s' "$value" | pulumi config set --secret "$1" --stack "$stack" >/dev/null
	echo "set $1 of stack $stack from the secret $2"
}
case "$stack" in
dev)
	need dbPassword DB_PASSWORD
	need rolloutKey ROLLOUT_KEY
	;;
*)
	need dbPassword DB_PASSWORD
	need dbAppPassword DB_APP_PASSWORD
	;;
esac
