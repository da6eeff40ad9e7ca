//go:build e2e

package singleserver

import (
	"net/http"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"

	"github.com/fastapi-infra/fastapi-infra/internal/dockerapi"
	"github.com/fastapi-infra/fastapi-infra/internal/loadgen"
)

// What the external real-Docker tests (package singleserver_test, which
// may import the operations package that imports this one) use of the
// harness.

// RealServer is the real-Docker harness (realdocker_test.go).
type RealServer = realServer

// Stopped is how a container an update removed went.
type Stopped = stopped

func NewRealServer(t *testing.T, targets ...string) *RealServer { return newRealServer(t, targets...) }

// TraefikMaintenance is the maintenance page and restore check that
// TestTraefikWithACMEOnRealDocker runs on its Traefik stack: it needs the
// operations package, which this package's own tests cannot import (a
// cycle), so package singleserver_test sets it (maintenance_real_test.go).
var TraefikMaintenance func(t *testing.T, r *RealServer, client *http.Client, base string)

func (r *realServer) Args() Args                             { return r.args() }
func (r *realServer) Up(a Args) []Stopped                    { return r.up(a) }
func (r *realServer) Exec(name string, cmd ...string) string { return r.exec(name, cmd...) }
func (r *realServer) Docker() *dockerapi.Client              { return r.docker }
func (r *realServer) Apps() []string                         { return r.apps() }
func (r *realServer) Prefix() string                         { return r.prefix }

// UpRefreshing deploys a after a refresh: what an operator runs after
// something outside Pulumi removed a container or volume.
func (r *realServer) UpRefreshing(a Args) {
	r.t.Helper()
	if err := r.update(a, true, optup.Refresh()); err != nil {
		r.t.Fatal(err)
	}
}

// TryUp deploys a and returns the update's error (one meant to fail).
func (r *realServer) TryUp(a Args) error { return r.tryUp(a) }

// UpWith deploys a with the engine's options (a replacement), and checks
// the update left nothing to do.
func (r *realServer) UpWith(a Args, opts ...optup.Option) {
	r.t.Helper()
	if err := r.update(a, true, opts...); err != nil {
		r.t.Fatal(err)
	}
}

// State is the stack's state, as the driver reads it.
func (r *realServer) State() apitype.UntypedDeployment {
	r.t.Helper()
	state, err := r.stack.Export(r.ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	return state
}

// LocalClient and SteadyLoad: the proxy's HTTPS client and 50 req/s.
func LocalClient(a Args) (*http.Client, string)          { return localClient(a) }
func SteadyLoad(c *http.Client, url string) *loadgen.Run { return steadyLoad(c, url) }
func WaitFor(t *testing.T, what string, within time.Duration, cond func() error) time.Duration {
	t.Helper()
	return waitFor(t, what, within, cond)
}

// Image is an image of images/build.sh's targets by its key (PROMETHEUS).
func (r *realServer) Image(key string) string { return r.images[key] }

func FreePort(t *testing.T) int                   { return freePort(t) }
func PromQuery(api, query string) (string, error) { return promQuery(api, query) }
