// Package e2e proves the Kubernetes architecture against a real Pulumi
// engine, the real kubernetes provider and a real Kubernetes API server (the
// lab's control plane with kwok nodes). The tests carry the build tag e2e:
//
//	go test -tags e2e ./e2e/
//
// They build what the lab lacks and start the cluster themselves; when that
// is impossible they fail and say why. They never skip.
//
// Tests that measure requests under load (real pods, the rollback) run one
// at a time; the others call t.Parallel, so Go runs them after those, two
// at a time: most of their time is waiting on the engine and the API
// server, not the CPU, and a measured release never shares the machine
// with them.
package e2e
