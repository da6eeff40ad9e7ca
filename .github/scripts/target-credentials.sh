#!/usr/bin/env bash
# Writes the credentials of a stack's target from the job's environment
# (GitHub secrets) into files only this user can read; prints no secret.
#   prod: KUBECONFIG_CONTENT -> ~/.kube/config (the provider reads KUBECONFIG)
#   dev:  DOCKER_SSH_KEY and DOCKER_KNOWN_HOSTS -> ~/.ssh, and the stack's
#         docker.host pointed at ssh://deploy@DOCKER_HOST_ADDRESS
set -euo pipefail
umask 077
case "${1:?usage: target-credentials.sh STACK}" in
prod)
	[ -n "${KUBECONFIG_CONTENT:-}" ] || { echo "secret KUBECONFIG is not set" >&2; exit 1; }
	mkdir -p ~/.kube
	printf '%s\n' "$KUBECONFIG_CONTENT" >~/.kube/config
	echo "KUBECONFIG=$HOME/.kube/config" >>"$GITHUB_ENV"
	;;
dev)
	[ -n "${DOCKER_SSH_KEY:-}" ] || { echo "secret DOCKER_HOST_SSH_KEY is not set" >&2; exit 1; }
	[ -n "${DOCKER_KNOWN_HOSTS:-}" ] || { echo "secret DOCKER_HOST_KNOWN_HOSTS is not set" >&2; exit 1; }
	mkdir -p ~/.ssh
	printf '%s\n' "$DOCKER_SSH_KEY" >~/.ssh/id_ed25519
	printf '%s\n' "$DOCKER_KNOWN_HOSTS" >~/.ssh/known_hosts
	if [ -n "${DOCKER_HOST_ADDRESS:-}" ]; then
		# Only in this job's checkout: the stack file in git keeps the local default.
		# (The Pulumi CLI is not installed yet at this step, so no `pulumi
		# config set --path`; a stack file that no longer has the line fails
		# here instead of deploying to the local default.)
		sed -i "s|host: unix:///var/run/docker.sock|host: ssh://deploy@${DOCKER_HOST_ADDRESS}|" Pulumi.dev.yaml
		grep -q "host: ssh://deploy@${DOCKER_HOST_ADDRESS}\$" Pulumi.dev.yaml ||
			{ echo "Pulumi.dev.yaml has no 'host: unix:///var/run/docker.sock' line to point at ${DOCKER_HOST_ADDRESS}" >&2; exit 1; }
	fi
	;;
*)
	echo "no target credentials for stack $1" >&2
	;;
esac
