// Package singleserver converts a service.Spec into the seed's "Single
// Server" architecture on one Docker engine with pulumi-docker: a TLS proxy
// (nginx with a generated config, or Traefik with ACME) in front of N app
// containers, PostgreSQL on a retained volume, and a one-shot migration that
// must exit 0 before any app container of its release is created.
//
// Updates are create-before-delete: app containers carry the release in
// their logical names, so Pulumi starts the new ones, waits until Docker
// reports them healthy, and only then deletes the old ones, while the proxy
// retries a failed upstream on the next replica and reloads when the
// replicas' addresses change.
package singleserver
