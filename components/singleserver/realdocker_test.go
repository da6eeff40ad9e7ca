//go:build e2e

package singleserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/service"
	"github.com/fastapi-infra/fastapi-infra/internal/dockerapi"
	"github.com/fastapi-infra/fastapi-infra/lab"
	"github.com/fastapi-infra/fastapi-infra/lab/dockerstack"
)

// These tests deploy the SingleServer component with the real Pulumi
// engine and the real docker provider plugin (dockerstack.Pulumi: the pinned
// CLI, the provider v4.10.0 from $FASTAPI_INFRA_DOCKER_PLUGIN) on this
// machine's Docker engine, the program in this process, and after every
// `up` check that a preview proposes nothing and a refresh finds no drift.
// Images come from images/build.sh (Debian packages, no registry).

// realServer is one single server on the real engine.
type realServer struct {
	t      *testing.T
	ctx    context.Context
	docker *dockerapi.Client
	pulumi *dockerstack.Pulumi
	stack  *dockerstack.Stack
	images map[string]string
	prefix string
	subnet string
	// extra, when set, adds a test's own resources to the program (a
	// stand-in managed database, an ACME server) and returns options for
	// the component (transformations that join its containers to them).
	extra func(ctx *pulumi.Context, prov pulumi.ProviderResource) ([]pulumi.ResourceOption, error)
}

// subnetOctets are the /24s of 172.31/16 this run's servers took: each
// server's is picked at random, so runs do not collide, and never twice
// in a run, where tests run in parallel.
var subnetOctets struct {
	sync.Mutex
	taken map[int]bool
}

func subnetOctet() int {
	subnetOctets.Lock()
	defer subnetOctets.Unlock()
	if subnetOctets.taken == nil {
		subnetOctets.taken = map[int]bool{}
	}
	for {
		b := make([]byte, 1)
		_, _ = rand.Read(b)
		if n := int(b[0])%200 + 20; !subnetOctets.taken[n] {
			subnetOctets.taken[n] = true
			return n
		}
	}
}

// newRealServer builds (or finds) the images of images/build.sh's
// targets: dev (app, postgres, nginx, prometheus), acme (traefik, pebble).
func newRealServer(t *testing.T, targets ...string) *realServer {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Fatal("docker is not installed: the single server cannot be checked on a real engine")
	}
	images, err := lab.Images(context.Background(), filepath.Join("..", ".."), targets...)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	prefix := "fit-" + hex.EncodeToString(b)
	state := filepath.Join(os.TempDir(), "fastapi-infra-real", prefix)
	p, err := dockerstack.New(context.Background(), state, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	r := &realServer{t: t, ctx: context.Background(), docker: dockerapi.NewClient(""), pulumi: p, images: images,
		prefix: prefix,
		subnet: fmt.Sprintf("172.31.%d.0/24", subnetOctet())}
	t.Cleanup(func() { r.cleanup(state) })
	return r
}

// program deploys args with the docker provider on the local engine.
func (r *realServer) program(args Args) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		prov, err := docker.NewProvider(ctx, "docker", &docker.ProviderArgs{Host: pulumi.String("unix:///var/run/docker.sock")})
		if err != nil {
			return err
		}
		opts := []pulumi.ResourceOption{pulumi.Providers(prov)}
		if r.extra != nil {
			more, err := r.extra(ctx, prov)
			if err != nil {
				return err
			}
			opts = append(opts, more...)
		}
		c, err := New(ctx, args.Service.Name, &args, opts...)
		if err != nil {
			return err
		}
		ctx.Export("containers", c.ContainerNames)
		ctx.Export("volumes", c.Volumes)
		return nil
	}
}

// stopped is how a container that an update removed went: how long its
// stop took (SIGTERM to exit) and its exit code, from the engine's events.
type stopped struct {
	Name     string
	Stopped  time.Duration
	ExitCode int
}

// up deploys args (the first call creates the stack) and checks that the
// update left nothing to do; it returns the containers the update removed.
func (r *realServer) up(args Args) []stopped {
	r.t.Helper()
	start := time.Now()
	if err := r.update(args, true); err != nil {
		r.t.Fatal(err)
	}
	return r.removedSince(start)
}

// tryUp deploys args and returns the update's error (one meant to fail).
func (r *realServer) tryUp(args Args) error {
	r.t.Helper()
	return r.update(args, false)
}

// upReplacing deploys args, replacing the component's child named role
// (<name>-<role>) as a change that forces a new resource would.
func (r *realServer) upReplacing(args Args, role string) {
	r.t.Helper()
	urn := fmt.Sprintf("urn:pulumi:%s::fastapi-infra-lab::%s$docker:index/container:Container::%s-%s", r.stack.Name(), Type, args.Service.Name, role)
	if err := r.update(args, true, optup.Replace([]string{urn})); err != nil {
		r.t.Fatal(err)
	}
}

func (r *realServer) update(args Args, check bool, opts ...optup.Option) error {
	program := r.program(args)
	if r.stack == nil {
		s, err := r.pulumi.Stack(r.ctx, r.prefix, program)
		if err != nil {
			return err
		}
		r.stack = s
	} else {
		r.stack.SetProgram(program)
	}
	_, err := r.stack.UpOnly(r.ctx, opts...)
	if err != nil || !check {
		return err
	}
	return r.stack.CheckNoChanges(r.ctx)
}

// removedSince reads the engine's events since start: each container
// destroyed, with the time from its SIGTERM to its exit and its code.
func (r *realServer) removedSince(start time.Time) []stopped {
	r.t.Helper()
	events, err := r.docker.Events(r.ctx, start, time.Now())
	if err != nil {
		r.t.Fatal(err)
	}
	var out []stopped
	term := map[string]time.Time{}
	died := map[string]dockerapi.Event{}
	for _, e := range events {
		switch {
		case e.Action == "kill" && e.Attrs["signal"] == "15":
			if _, seen := term[e.Name]; !seen {
				term[e.Name] = e.Time
			}
		case e.Action == "die":
			died[e.Name] = e
		case e.Action == "destroy":
			s := stopped{Name: e.Name, ExitCode: -1}
			if d, ok := died[e.Name]; ok {
				s.ExitCode, _ = strconv.Atoi(d.Attrs["exitCode"])
				if t0, ok := term[e.Name]; ok {
					s.Stopped = d.Time.Sub(t0)
				}
			}
			out = append(out, s)
		}
	}
	return out
}

// cleanup removes what the stack made and the volumes destroy keeps; after
// a failure it logs each container's interesting lines first and keeps
// the stack's folder (the engine's output of every update) for a look.
func (r *realServer) cleanup(state string) {
	names, _ := r.docker.List(r.ctx, "")
	if r.t.Failed() {
		for _, name := range slices.Sorted(maps.Keys(names)) {
			if !strings.HasPrefix(name, r.prefix+"-") {
				continue
			}
			logs, _ := r.docker.Logs(r.ctx, name)
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
		r.t.Logf("the engine's output of each update: %s", state)
	}
	// Every container, network and volume of the stack is named after its
	// prefix (builder.dockerName), a test's own containers too: removing
	// them takes a second, where a `pulumi destroy` took 10-20 s of
	// engine time per server, in a package whose tests (destroy's own
	// among them) are the run's longest sequential part. The stack's
	// state goes with its folder.
	if err := r.docker.RemoveNamed(r.ctx, r.prefix+"-"); err != nil {
		r.t.Errorf("cleanup: %v", err)
	}
	if !r.t.Failed() {
		_ = os.RemoveAll(state)
	}
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
			// TEST_ROUTES: the example app's /_meta routes (app.testRoutes).
			Env:       map[string]string{"LOG_LEVEL": "info", "TEST_ROUTES": "1"},
			Health:    service.Health{LivePath: "/health/live", ReadyPath: "/health/ready"},
			Migration: service.Migration{Strategy: service.MigrationJob, Command: []string{"alembic", "upgrade", "head"}},
			Resources: service.Resources{CPU: cpu, Memory: mem},
			Database: service.Database{Mode: service.DatabaseContainer, Image: r.images["POSTGRES"], Port: 5432, Name: "app", User: "app",
				Password: pulumi.ToSecret(pulumi.String(realPassword)).(pulumi.StringOutput), SSLMode: "disable", RetainOnDelete: true,
				AppUser: "app_rw", AppPassword: pulumi.ToSecret(pulumi.String(realAppPassword)).(pulumi.StringOutput)},
		},
		Subnet: r.subnet, ProxyImage: r.images["NGINX"], TraefikImage: r.images["TRAEFIK"],
		HTTPPort: freePort(r.t), HTTPSPort: freePort(r.t), SecretsDigest: "r1",
	}
}

// apps are the running replicas' names, sorted.
func (r *realServer) apps() []string {
	r.t.Helper()
	found, err := r.docker.List(r.ctx, "fastapi-infra.release")
	if err != nil {
		r.t.Fatal(err)
	}
	var out []string
	for name := range found {
		if strings.HasPrefix(name, r.prefix+"-app-") {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// exec runs a command in a container and fails the test unless it exits 0.
func (r *realServer) exec(name string, cmd ...string) string {
	r.t.Helper()
	out, code, err := r.docker.Exec(r.ctx, name, cmd...)
	if err != nil || code != 0 {
		r.t.Fatalf("exec %v in %s: exit %d, %v\n%s", cmd, name, code, err, out)
	}
	return strings.TrimSpace(out)
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := lab.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// waitFor polls cond until it holds or within passes.
// probeTimeline tells Docker's last healthchecks of a container, each as
// when it started after since, how long it took and how it ended.
func probeTimeline(st dockerapi.Inspected, since time.Time) string {
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

// joinNetwork is a transformation of the component's containers whose
// logical names match: each also joins network under aliases, and is
// created after the resources in after. A test's own server (a stand-in
// managed database, an ACME server) lives on such a network, and the
// containers that must reach it, or be reached by it, join it.
func joinNetwork(match func(name string) bool, network pulumi.StringInput, aliases []string, after ...pulumi.Resource) pulumi.ResourceOption {
	//nolint:staticcheck // Transformations run in the program, typed; Transforms would hand over untyped maps.
	return pulumi.Transformations([]pulumi.ResourceTransformation{func(a *pulumi.ResourceTransformationArgs) *pulumi.ResourceTransformationResult {
		args, ok := a.Props.(*docker.ContainerArgs)
		if !ok || !match(a.Name) {
			return nil
		}
		nets, _ := args.NetworksAdvanced.(docker.ContainerNetworksAdvancedArray)
		args.NetworksAdvanced = append(nets, docker.ContainerNetworksAdvancedArgs{Name: network, Aliases: pulumi.ToStringArray(aliases)})
		return &pulumi.ResourceTransformationResult{Props: args, Opts: append(a.Opts, pulumi.DependsOn(after))}
	}})
}

// fixtureLogOpts are a test's own containers' log options, set as the
// component sets its own: left out, the engine's defaults (this machine's
// daemon.json has some) are read back and every preview proposes them.
var fixtureLogOpts = pulumi.StringMap{"max-size": pulumi.String("10m"), "max-file": pulumi.String("3")}

// fixtureNetwork is a network for a test's own servers, <prefix>-<role>,
// on a /24 of 10.231/16 beside the test's private one (172.31.N/24 gets
// 10.231.N/24): left to Docker's pools it could take the /16 the private
// /24 lies in, being created at the same time, and the private network
// was refused ("networks have overlapping IPv4").
func (r *realServer) fixtureNetwork(ctx *pulumi.Context, prov pulumi.ProviderResource, role string) (*docker.Network, error) {
	octet := strings.Split(r.subnet, ".")[2]
	return docker.NewNetwork(ctx, role+"-net", &docker.NetworkArgs{
		Name:        pulumi.String(r.prefix + "-" + role),
		IpamConfigs: docker.NetworkIpamConfigArray{docker.NetworkIpamConfigArgs{Subnet: pulumi.String("10.231." + octet + ".0/24")}},
	}, pulumi.Provider(prov))
}

// The passwords of r.args()'s database.
const (
	realPassword    = "real-docker-test-pw"
	realAppPassword = "real-docker-test-app-pw"
)

// fixtureImage is one of images/build.sh's images (by its NAME= key) for
// a test's own server, kept on the engine at destroy.
func (r *realServer) fixtureImage(ctx *pulumi.Context, prov pulumi.ProviderResource, key string) (*docker.RemoteImage, error) {
	return docker.NewRemoteImage(ctx, strings.ToLower(key)+"-image", &docker.RemoteImageArgs{Name: pulumi.String(r.images[key]), KeepLocally: pulumi.Bool(true)}, pulumi.Provider(prov))
}
