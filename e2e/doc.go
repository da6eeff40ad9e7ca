// Package e2e proves the Kubernetes architecture against a real Pulumi
// engine, the real kubernetes provider and a real Kubernetes API server (the
// lab's control plane with kwok nodes). The tests carry the build tag e2e:
//
//	go test -tags e2e ./e2e/
//
// They build what the lab lacks and start the cluster themselves; when that
// is impossible they fail and say why. They never skip.
package e2e
