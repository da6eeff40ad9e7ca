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
		sed -i "s|host: unix:///var/run/docker.sock|host: ssh://deploy@${DOCKER_HOST_ADDRESS}|" Pulumi.dev.yaml
	fi
	;;
*)
	echo "no target credentials for stack $1" >&2
	;;
esac
