#!/usr/bin/env bash
# Writes the credentials of a stack's target from the job's environment
# (GitHub secrets) into files only this user can read; prints no secret.
#   prod: KUBECONFIG_CONTENT -> ~/.kube/config (the provider reads KUBECONFIG)
#   dev:  DOCKER_SSH_KEY and DOCKER_KNOWN_HOSTS -> ~/.ssh, and the stack's
#         docker.host pointed at ssh://DOCKER_HOST_USER@DOCKER_HOST_ADDRESS
#         (user default deploy; the preview environments name a read-only
#         account, README: CI)
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
	# Without it the stack would preview or deploy against the runner's own
	# Docker engine, which has nothing of the stack on it.
	[ -n "${DOCKER_HOST_ADDRESS:-}" ] || { echo "variable DOCKER_HOST_ADDRESS is not set in this job's environment" >&2; exit 1; }
	target="${DOCKER_HOST_USER:-deploy}@${DOCKER_HOST_ADDRESS}"
	# Only in this job's checkout: the stack file in git keeps the local default.
	# (The Pulumi CLI is not installed yet at this step, so no `pulumi
	# config set --path`; a stack file that no longer has the line fails
	# here instead of deploying to the local default.)
	sed -i "s|host: unix:///var/run/docker.sock|host: ssh://${target}|" Pulumi.dev.yaml
	grep -q "host: ssh://${target}\$" Pulumi.dev.yaml ||
		{ echo "Pulumi.dev.yaml has no 'host: unix:///var/run/docker.sock' line to point at ${target}" >&2; exit 1; }
	;;
*)
	echo "no target credentials for stack $1" >&2
	;;
esac
