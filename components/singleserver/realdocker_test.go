//go:build e2e

package singleserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/service"
	"github.com/fastapi-infra/fastapi-infra/internal/dockerplan"
	"github.com/fastapi-infra/fastapi-infra/internal/mocktest"
)

// There is no pulumi-docker provider binary on the build machine, so these
// tests run the SingleServer component under the mock engine, take what it
// registers (internal/dockerplan), and make the Engine API calls the
// provider would make on the real Docker engine: the same networks,
// volumes and containers with every input the component sets (an input
// dockerplan does not translate fails the test). Images come from
// images/build.sh (Debian packages, no registry).

// realServer is one single server on the real engine.
type realServer struct {
	t      *testing.T
	ctx    context.Context
	engine *dockerplan.Engine
	d      dockerplan.Deployment
	images map[string]string
	prefix string
	subnet string
}

// newRealServer builds (or finds) the images of images/build.sh's
// targets: dev (app, postgres, nginx, prometheus), acme (traefik, pebble).
func newRealServer(t *testing.T, targets ...string) *realServer {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Fatal("docker is not installed: the single server cannot be checked on a real engine")
	}
	images := map[string]string{}
	for _, target := range targets {
		build := exec.Command(filepath.Join("..", "..", "images", "build.sh"), target)
		build.Stderr = os.Stderr
		out, err := build.Output()
		if err != nil {
			t.Fatalf("images/build.sh %s: %v", target, err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				images[k] = v
			}
		}
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	r := &realServer{t: t, ctx: context.Background(), engine: dockerplan.NewEngine(""), images: images,
		prefix: "fit-" + hex.EncodeToString(b),
		// A /24 in 172.31/16 picked at random, so runs do not collide.
		subnet: fmt.Sprintf("172.31.%d.0/24", int(b[0])%200+20)}
	t.Cleanup(r.cleanup)
	return r
}

// cleanup removes everything; after a failure it logs each container's
// interesting lines first.
func (r *realServer) cleanup() {
	if r.t.Failed() {
		for _, name := range r.d.Names("") {
			logs, _ := r.engine.Logs(r.ctx, r.d.IDs[name])
			var keep []string
			for _, line := range strings.Split(logs, "\n") {
				// The interesting lines: not the successful requests.
				if line != "" && !strings.Contains(line, `"status":`) && !strings.Contains(line, " 200\"") &&
					!strings.Contains(line, "Context impl") && !strings.Contains(line, "transactional DDL") && !strings.Contains(line, "/health/ready 200") {
					keep = append(keep, line)
				}
			}
			if len(keep) > 30 {
				keep = keep[len(keep)-30:]
			}
			r.t.Logf("logs of %s (without successful requests):\n%s", name, strings.Join(keep, "\n"))
		}
	}
	r.engine.Destroy(r.ctx, &r.d, true)
}

// args is the single server the tests run: the dev stack's shape (two
// replicas of two workers, 0.5 CPU and 512 MiB each, PostgreSQL, the
// migration Job, self-signed TLS) on the local images, free host ports.
func (r *realServer) args() Args {
	cpu, _ := service.ParseCPU("500m")
	mem, _ := service.ParseMemory("512Mi")
	return Args{
		Service: service.Spec{
			Name: r.prefix, Image: service.Image{Ref: r.images["APP"]}, Module: "app.main:app", Port: 8000, Workers: 2, Replicas: 2,
			ProxyHeaders: true, ShutdownGraceSeconds: 10, Domain: "localhost", TLS: service.TLS{Mode: service.TLSSelfSigned},
			Env:       map[string]string{"LOG_LEVEL": "info"},
			Health:    service.Health{LivePath: "/health/live", ReadyPath: "/health/ready"},
			Migration: service.Migration{Strategy: service.MigrationJob, Command: []string{"alembic", "upgrade", "head"}},
			Resources: service.Resources{CPU: cpu, Memory: mem},
			Database: service.Database{Mode: service.DatabaseContainer, Image: r.images["POSTGRES"], Port: 5432, Name: "app", User: "app",
				Password: pulumi.ToSecret(pulumi.String("real-docker-test-pw")).(pulumi.StringOutput), SSLMode: "disable", RetainOnDelete: true,
				AppUser: "app_rw", AppPassword: pulumi.ToSecret(pulumi.String("real-docker-test-app-pw")).(pulumi.StringOutput)},
		},
		Subnet: r.subnet, ProxyImage: r.images["NGINX"], TraefikImage: r.images["TRAEFIK"],
		HTTPPort: freePort(r.t), HTTPSPort: freePort(r.t), SecretsDigest: "r1",
	}
}

// plan is what the component registers for args.
func (r *realServer) plan(args Args) dockerplan.Plan {
	r.t.Helper()
	rec := &mocktest.Recorder{Outputs: dockerplan.Outputs}
	err := mocktest.Run(r.t, "real", mocktest.Config{Values: map[string]string{}}, func(ctx *pulumi.Context) error {
		_, err := New(ctx, args.Service.Name, &args)
		return err
	}, rec)
	if err != nil {
		r.t.Fatal(err)
	}
	p, err := dockerplan.FromRecording(rec.All())
	if err != nil {
		r.t.Fatal(err)
	}
	return p
}

// up applies a plan as `pulumi up` would from where the engine stands:
// containers of the plan that exist stay, new ones are created in order
// and waited for, and then containers of app replicas the plan no longer
// has are deleted (the provider's create-before-delete of a release).
func (r *realServer) up(p dockerplan.Plan) []dockerplan.Retired {
	r.t.Helper()
	if err := r.engine.Apply(r.ctx, p, &r.d); err != nil {
		r.t.Fatal(err)
	}
	// The old replicas go at once, as Pulumi deletes resources that do not
	// depend on each other in parallel.
	retired, err := r.engine.RetireAll(r.ctx, &r.d, r.d.Replaced(p, r.prefix+"-app-")...)
	if err != nil {
		r.t.Fatal(err)
	}
	return retired
}

// apps are the running replicas' names.
func (r *realServer) apps() []string { return r.d.Names(r.prefix + "-app-") }

// exec runs a command in a container and fails the test unless it exits 0.
func (r *realServer) exec(name string, cmd ...string) string {
	r.t.Helper()
	out, code, err := r.engine.Exec(r.ctx, r.d.IDs[name], cmd...)
	if err != nil || code != 0 {
		r.t.Fatalf("exec %v in %s: exit %d, %v\n%s", cmd, name, code, err, out)
	}
	return strings.TrimSpace(out)
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitFor polls cond until it holds or within passes.
// probeTimeline tells Docker's last healthchecks of a container, each as
// when it started after since, how long it took and how it ended.
func probeTimeline(st dockerplan.Inspected, since time.Time) string {
	if st.State.Health == nil {
		return "no healthcheck"
	}
	var parts []string
	for _, p := range st.State.Health.Log {
		out, _, _ := strings.Cut(strings.TrimSpace(p.Output), "\n")
		if len(out) > 60 {
			out = out[:60]
		}
		parts = append(parts, fmt.Sprintf("probe at +%s took %s: exit %d %s", p.Start.Sub(since).Round(10*time.Millisecond), p.End.Sub(p.Start).Round(10*time.Millisecond), p.ExitCode, out))
	}
	return strings.Join(parts, "; ")
}

func waitFor(t *testing.T, what string, within time.Duration, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := cond()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s did not happen within %s: %v", what, within, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
