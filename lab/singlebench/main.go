// Command singlebench runs the seed's compose pattern and the project's
// single server side by side on this machine's Docker engine, on the same
// local images, interleaved, and prints what each costs:
//
//	go run ./lab/singlebench [-rounds 3]
//
// The project's side is the dev stack as `./infra up dev` deploys it: the
// driver's workspace (deploy.Open: the pinned CLI, the program in this
// process) with the real Pulumi engine and the real docker provider plugin
// (installed from $FASTAPI_INFRA_DOCKER_PLUGIN when it is not), Pulumi.yaml
// and Pulumi.dev.yaml with this run's ports, subnet, names and images. The
// compose side is lab/singlebench/compose, the seed's file and nginx.conf
// made runnable. Each round measures, for each side: the cold start to
// HTTPS 200 on /items; an `up` with nothing to change; throughput through
// the TLS proxy on /health/live and /items; an app release (new replicas)
// under a steady 50 requests a second; and a SIGKILL of one replica's PID
// 1 under the same load. Load goes to 127.0.0.1 only, bounded in time.
package main

import (
	"context"
	"crypto/tls"
	"embed"
	"flag"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"

	"github.com/fastapi-infra/fastapi-infra/internal/dockerapi"
	"github.com/fastapi-infra/fastapi-infra/internal/loadgen"
	"github.com/fastapi-infra/fastapi-infra/internal/pki"
	"github.com/fastapi-infra/fastapi-infra/lab"
	"github.com/fastapi-infra/fastapi-infra/lab/devstack"
)

//go:embed compose
var composeFiles embed.FS

func main() {
	rounds := flag.Int("rounds", 3, "interleaved rounds (medians are printed)")
	flag.Parse()
	if err := run(*rounds); err != nil {
		fmt.Fprintln(os.Stderr, "singlebench:", err)
		os.Exit(1)
	}
}

// side is one way to run the single server.
type side interface {
	name() string
	// up creates everything from nothing; it returns when every
	// container is started as the tool does it (compose: started; the
	// project: what the provider waits for).
	up(ctx context.Context) error
	// release rolls the app replicas to a new environment.
	release(ctx context.Context, n int) error
	// again runs the tool's deploy once more with nothing changed.
	again(ctx context.Context) error
	// replicas are the running app containers' IDs or names.
	replicas(ctx context.Context) ([]string, error)
	// proxy is the proxy container's ID or name.
	proxy(ctx context.Context) (string, error)
	down(ctx context.Context)
	// httpsPort is where the proxy listens; known before up.
	httpsPort() int
}

// figures are one side's measurements of one round.
type figures struct {
	coldStart, noop, releaseTook, backAfterKill time.Duration
	liveRPS, itemsRPS                           float64
	// idleCPU is the host's busy cores while the stack is up and no
	// request comes (health checks, background work), 0-2 here.
	idleCPU       float64
	release, kill loadgen.Result
	// CPU time per request during the throughput runs, where it went:
	// the proxy's container, the app replicas', the load generator.
	liveCPU, itemsCPU cpuPerRequest
}

// daemons is Docker's own processes (dockerd copying and encoding the
// containers' log lines and running health checks, containerd and the
// shims, docker-proxy forwarding the published ports), and rest what the
// machine spent beside all four (mostly the kernel's network work): host
// busy time from /proc/stat less the others.
type cpuPerRequest struct{ proxy, app, client, daemons, rest time.Duration }

// saturate is loadgen.Saturate with the CPU time each part spent per
// request: the throughput figures say how fast, these say where the
// machine's two cores went.
func saturate(ctx context.Context, engine *dockerapi.Client, s side, client *http.Client, req func(context.Context) (*http.Request, error)) (float64, cpuPerRequest, error) {
	var per cpuPerRequest
	proxy, err := s.proxy(ctx)
	if err != nil {
		return 0, per, err
	}
	apps, err := s.replicas(ctx)
	if err != nil {
		return 0, per, err
	}
	cpu := func() (proxyT, appT, clientT, daemonT, hostT time.Duration, err error) {
		if hostT, err = hostBusy(); err != nil {
			return
		}
		if daemonT, err = dockerDaemons(); err != nil {
			return
		}
		if proxyT, err = engine.CPUTime(ctx, proxy); err != nil {
			return
		}
		for _, id := range apps {
			t, e := engine.CPUTime(ctx, id)
			if e != nil {
				return 0, 0, 0, 0, 0, e
			}
			appT += t
		}
		var ru syscall.Rusage
		if err = syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			return
		}
		clientT = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		return
	}
	p0, a0, c0, d0, h0, err := cpu()
	if err != nil {
		return 0, per, err
	}
	const window = 10 * time.Second
	rps, _ := loadgen.Saturate(client, req, 32, window)
	p1, a1, c1, d1, h1, err := cpu()
	if err != nil || rps == 0 {
		return rps, per, err
	}
	n := time.Duration(rps * window.Seconds())
	per = cpuPerRequest{proxy: (p1 - p0) / n, app: (a1 - a0) / n, client: (c1 - c0) / n, daemons: (d1 - d0) / n}
	per.rest = max(0, (h1-h0)/n-per.proxy-per.app-per.client-per.daemons)
	return rps, per, nil
}

// dockerDaemons is the CPU time Docker's processes spent, with their
// children that ended (runc, a health check's exec), from /proc/PID/stat.
func dockerDaemons() (time.Duration, error) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return 0, err
	}
	var total time.Duration
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // the process ended
		}
		// pid (comm) state ppid ... utime stime cutime cstime: fields
		// 14-17; comm may hold spaces, so count from its closing paren.
		open, closing := strings.IndexByte(string(b), '('), strings.LastIndexByte(string(b), ')')
		if open < 0 || closing < open {
			continue
		}
		switch comm := string(b[open+1 : closing]); {
		case comm == "dockerd", comm == "containerd", comm == "docker-proxy", strings.HasPrefix(comm, "containerd-shim"):
		default:
			continue
		}
		fields := strings.Fields(string(b[closing+1:]))
		if len(fields) < 15 {
			continue
		}
		for _, f := range fields[11:15] {
			ticks, _ := strconv.ParseInt(f, 10, 64)
			total += clockTicks(ticks)
		}
	}
	return total, nil
}

// hostBusy is the CPU time all cores spent not idle since boot, from
// /proc/stat's first line (user nice system idle iowait irq softirq steal,
// in clock ticks of 1/100 s).
func hostBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var busy time.Duration
	for i, f := range fields[1:9] {
		ticks, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		busy += clockTicks(ticks)
	}
	return busy, nil
}

// clockTicks converts /proc's CPU times, counted in USER_HZ ticks (1/100 s
// on Linux, whatever the kernel's own HZ), to a duration.
func clockTicks(n int64) time.Duration { return time.Duration(n) * 10 * time.Millisecond }

func run(rounds int) error {
	ctx := context.Background()
	repo, err := filepath.Abs(".")
	if err != nil {
		return err
	}
	images, err := lab.Images(ctx, repo, "dev")
	if err != nil {
		return err
	}
	engine := dockerapi.NewClient("")
	results := map[string][]figures{}
	for round := range rounds {
		sides := []side{newCompose(repo, images, round), &project{repo: repo, images: images, engine: engine, round: round, https: freePort()}}
		if round%2 == 1 {
			slices.Reverse(sides) // interleaved: neither side always goes first
		}
		for _, s := range sides {
			fmt.Fprintf(os.Stderr, "singlebench: round %d, %s\n", round+1, s.name())
			f, err := measure(ctx, engine, s)
			s.down(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name(), err)
			}
			results[s.name()] = append(results[s.name()], f)
		}
	}
	report(rounds, results["compose"], results["fastapi-infra"])
	return nil
}

func measure(ctx context.Context, engine *dockerapi.Client, s side) (figures, error) {
	var f figures
	client := httpsClient()
	base := fmt.Sprintf("https://localhost:%d", s.httpsPort())
	get := func(path string) func(context.Context) (*http.Request, error) {
		return func(ctx context.Context) (*http.Request, error) {
			return http.NewRequestWithContext(ctx, "GET", base+path, nil)
		}
	}
	start := time.Now()
	if err := s.up(ctx); err != nil {
		return f, err
	}
	if err := waitOK(client, base+"/items", 2*time.Minute); err != nil {
		return f, err
	}
	f.coldStart = time.Since(start)
	start = time.Now()
	if err := s.again(ctx); err != nil {
		return f, err
	}
	f.noop = time.Since(start)
	// Both replicas settle; what the machine spends meanwhile with no
	// request is the stack's standing cost (health checks, mostly).
	h0, err := hostBusy()
	if err != nil {
		return f, err
	}
	const settle = 5 * time.Second
	time.Sleep(settle)
	h1, err := hostBusy()
	if err != nil {
		return f, err
	}
	f.idleCPU = float64(h1-h0) / float64(settle)
	if f.liveRPS, f.liveCPU, err = saturate(ctx, engine, s, client, get("/health/live")); err != nil {
		return f, err
	}
	if f.itemsRPS, f.itemsCPU, err = saturate(ctx, engine, s, client, get("/items")); err != nil {
		return f, err
	}

	load := loadgen.Start(client, get("/items"), loadgen.Options{Rate: 50, Max: 3 * time.Minute})
	time.Sleep(2 * time.Second)
	start = time.Now()
	if err := s.release(ctx, 2); err != nil {
		return f, err
	}
	f.releaseTook = time.Since(start)
	time.Sleep(3 * time.Second)
	f.release = load.Stop()
	slowest(s.name()+" release", start, f.release)

	reps, err := s.replicas(ctx)
	if err != nil || len(reps) == 0 {
		return f, fmt.Errorf("no replicas to kill: %v", err)
	}
	load = loadgen.Start(client, get("/items"), loadgen.Options{Rate: 50, Max: 3 * time.Minute})
	time.Sleep(2 * time.Second)
	victim := reps[0]
	st, err := engine.Inspect(ctx, victim)
	if err != nil {
		return f, err
	}
	if err := engine.Crash(ctx, victim); err != nil {
		return f, err
	}
	f.backAfterKill = backAgain(ctx, engine, victim, st.RestartCount, 60*time.Second)
	time.Sleep(2 * time.Second)
	f.kill = load.Stop()
	return f, nil
}

// slowest prints the five slowest requests of a phase with when they
// started, from the phase's start: whether they gather at the new
// replicas' start, the old ones' stop or the proxy's reload.
func slowest(what string, start time.Time, r loadgen.Result) {
	out := slices.Clone(r.Outcomes)
	slices.SortFunc(out, func(a, b loadgen.Outcome) int { return int(b.Latency - a.Latency) })
	var parts []string
	for _, o := range out[:min(5, len(out))] {
		parts = append(parts, fmt.Sprintf("%+.2fs %s", o.Start.Sub(start).Seconds(), o.Latency.Round(time.Millisecond)))
	}
	fmt.Fprintf(os.Stderr, "singlebench: %s, slowest requests (start from the phase's start, latency): %s\n", what, strings.Join(parts, ", "))
}

// backAgain is how long until the container restarted and its app answers
// its live endpoint from inside (60 s when it never does).
func backAgain(ctx context.Context, engine *dockerapi.Client, id string, restarts int, limit time.Duration) time.Duration {
	start := time.Now()
	for time.Since(start) < limit {
		st, err := engine.Inspect(ctx, id)
		if err == nil && st.RestartCount > restarts && st.State.Running {
			if _, code, err := engine.Exec(ctx, id, "python3", "-c",
				"import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=1)"); err == nil && code == 0 {
				return time.Since(start)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return limit
}

func httpsClient() *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, _ := net.SplitHostPort(addr)
			return dialer.DialContext(ctx, "tcp4", "127.0.0.1:"+port)
		},
		MaxIdleConnsPerHost: 64,
	}}
}

func waitOK(client *http.Client, url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no HTTPS 200 on %s within %s", url, within)
}

func freePort() int {
	port, err := lab.FreePort()
	if err != nil {
		panic(err)
	}
	return port
}

// compose is the seed's compose pattern, run by docker-compose.
type compose struct {
	dir, project string
	env          []string
	https        int
	releaseN     int // the release deployed last
}

func newCompose(repo string, images map[string]string, round int) *compose {
	return &compose{project: fmt.Sprintf("singlebench%d%d", os.Getpid()%1000, round), https: freePort(), env: []string{
		"APP_IMAGE=" + images["APP"], "POSTGRES_IMAGE=" + images["POSTGRES"], "NGINX_IMAGE=" + images["NGINX"],
		fmt.Sprintf("HTTP_PORT=%d", freePort())}}
}

func (c *compose) name() string   { return "compose" }
func (c *compose) httpsPort() int { return c.https }

func (c *compose) run(ctx context.Context, release int, args ...string) error {
	cmd := exec.CommandContext(ctx, "docker-compose", append([]string{"-p", c.project}, args...)...)
	cmd.Dir = c.dir
	cmd.Env = append(append(os.Environ(), c.env...), fmt.Sprintf("HTTPS_PORT=%d", c.https), fmt.Sprintf("RELEASE=%d", release))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (c *compose) up(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "singlebench-compose-")
	if err != nil {
		return err
	}
	c.dir = dir
	for _, f := range []string{"docker-compose.yml", "nginx.conf"} {
		raw, err := composeFiles.ReadFile("compose/" + f)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, f), raw, 0o644); err != nil {
			return err
		}
	}
	ca, err := pki.NewCA("singlebench")
	if err != nil {
		return err
	}
	cert, key, err := ca.Issue(pki.Subject{CommonName: "localhost", Names: []string{"localhost"}, Server: true})
	if err != nil {
		return err
	}
	live := filepath.Join(dir, "certs", "live", "localhost")
	if err := os.MkdirAll(live, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(live, "fullchain.pem"), cert, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(live, "privkey.pem"), key, 0o644); err != nil {
		return err
	}
	return c.run(ctx, 1, "up", "-d")
}

func (c *compose) release(ctx context.Context, n int) error {
	c.releaseN = n
	return c.run(ctx, n, "up", "-d")
}

func (c *compose) again(ctx context.Context) error { return c.run(ctx, max(1, c.releaseN), "up", "-d") }

// containers are the IDs of a compose service's running containers.
func (c *compose) containers(ctx context.Context, service string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "docker-compose", "-p", c.project, "ps", "-q", service)
	cmd.Dir = c.dir
	cmd.Env = append(append(os.Environ(), c.env...), fmt.Sprintf("HTTPS_PORT=%d", c.https), "RELEASE=2")
	out, err := cmd.Output()
	return strings.Fields(string(out)), err
}

func (c *compose) replicas(ctx context.Context) ([]string, error) { return c.containers(ctx, "api") }

func (c *compose) proxy(ctx context.Context) (string, error) {
	ids, err := c.containers(ctx, "nginx")
	if err == nil && len(ids) == 1 {
		return ids[0], nil
	}
	return "", fmt.Errorf("compose's nginx container: %v %q", err, ids)
}

func (c *compose) down(ctx context.Context) {
	_ = c.run(ctx, 2, "down", "-v", "--remove-orphans")
	_ = os.RemoveAll(c.dir)
}

// project is the dev stack as ./infra up dev deploys it, on the real
// Pulumi engine and docker provider.
type project struct {
	repo   string
	images map[string]string
	engine *dockerapi.Client
	round  int
	https  int
	prefix string
	dir    string
	stack  auto.Stack
}

func (p *project) name() string   { return "fastapi-infra" }
func (p *project) httpsPort() int { return p.https }

// up opens the stack as the driver does, in a folder of its own with the
// project's Pulumi.yaml and Pulumi.dev.yaml, sets this run's overrides,
// and deploys.
func (p *project) up(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "singlebench-project-")
	if err != nil {
		return err
	}
	p.dir = dir
	p.prefix = fmt.Sprintf("singlebench%d%d", os.Getpid()%1000, p.round)
	settings := map[string]string{
		"app.name": p.prefix, "docker.namePrefix": p.prefix,
		// One client address sends everything here; the compose side has
		// no per-client limits either.
		"proxy.rateLimit": "0", "proxy.connLimit": "0",
		"app.image": p.images["APP"], "db.image": p.images["POSTGRES"], "proxy.image": p.images["NGINX"],
		"proxy.httpPort": fmt.Sprint(freePort()), "proxy.httpsPort": fmt.Sprint(p.https),
		"docker.subnet": fmt.Sprintf("172.31.%d.0/24", 220+p.round%30), "app.env.RELEASE": "1",
	}
	secrets := map[string]string{"dbPassword": "bench-project-pw", "rolloutKey": "0123456789abcdef0123456789abcdef"}
	if p.stack, err = devstack.Open(ctx, p.repo, dir, "singlebench", settings, secrets); err != nil {
		return err
	}
	return p.deploy(ctx)
}

// deploy runs `pulumi up` as ./infra up --yes does.
func (p *project) deploy(ctx context.Context) error {
	var out strings.Builder
	if _, err := p.stack.Up(ctx, optup.ProgressStreams(&out), optup.SuppressProgress()); err != nil {
		return fmt.Errorf("up: %w\n%s", err, out.String())
	}
	return nil
}

func (p *project) again(ctx context.Context) error { return p.deploy(ctx) }

func (p *project) release(ctx context.Context, n int) error {
	if err := p.stack.SetConfigWithOptions(ctx, "fastapi-infra:app.env.RELEASE", auto.ConfigValue{Value: fmt.Sprint(n)}, &auto.ConfigOptions{Path: true}); err != nil {
		return err
	}
	start := time.Now()
	err := p.deploy(ctx)
	fmt.Fprintf(os.Stderr, "singlebench: fastapi-infra release: up took %s\n", time.Since(start).Round(10*time.Millisecond))
	return err
}

func (p *project) replicas(ctx context.Context) ([]string, error) {
	found, err := p.engine.List(ctx, "fastapi-infra.release")
	if err != nil {
		return nil, err
	}
	var names []string
	for name := range found {
		if strings.HasPrefix(name, p.prefix+"-app-") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

func (p *project) proxy(context.Context) (string, error) { return p.prefix + "-proxy", nil }

// down destroys the stack and the volumes it retains (the data).
func (p *project) down(ctx context.Context) {
	if p.stack.Name() != "" {
		if _, err := p.stack.Destroy(ctx, optdestroy.SuppressProgress()); err != nil {
			fmt.Fprintf(os.Stderr, "singlebench: destroy: %v\n", err)
		}
	}
	for _, v := range []string{"db-data", "backups"} {
		_ = p.engine.RemoveVolume(ctx, p.prefix+"-"+v)
	}
	_ = os.RemoveAll(p.dir)
}

func report(rounds int, compose, project []figures) {
	med := func(fs []figures, get func(figures) float64) float64 {
		var v []float64
		for _, f := range fs {
			v = append(v, get(f))
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	sum := func(fs []figures, get func(figures) int) int {
		n := 0
		for _, f := range fs {
			n += get(f)
		}
		return n
	}
	secs := func(d time.Duration) float64 { return d.Seconds() }
	ms := func(d time.Duration) float64 { return float64(d.Milliseconds()) }
	row := func(what, unit string, get func(figures) float64) {
		c, p := med(compose, get), med(project, get)
		ratio := "-"
		if c > 0 {
			ratio = fmt.Sprintf("%.2fx", p/c)
		}
		fmt.Printf("%-52s %12.2f %12.2f %8s  %s\n", what, c, p, ratio, unit)
	}
	fmt.Printf("single server: the seed's compose pattern vs fastapi-infra's dev stack (median of %d interleaved rounds; same images, same machine)\n", rounds)
	fmt.Printf("%-52s %12s %12s %8s\n", "", "compose", "fastapi-infra", "ratio")
	row("cold start -> HTTPS 200 on /items", "s", func(f figures) float64 { return secs(f.coldStart) })
	row("deploy again, nothing changed (up / compose up -d)", "s", func(f figures) float64 { return secs(f.noop) })
	row("host CPU with no requests (health checks, ...)", "cores", func(f figures) float64 { return f.idleCPU })
	row("throughput via the TLS proxy, /health/live (32 conns)", "req/s", func(f figures) float64 { return f.liveRPS })
	row("throughput via the TLS proxy, /items (32 conns)", "req/s", func(f figures) float64 { return f.itemsRPS })
	us := func(d time.Duration) float64 { return float64(d.Microseconds()) }
	row("  CPU per /health/live request: proxy", "us", func(f figures) float64 { return us(f.liveCPU.proxy) })
	row("  CPU per /health/live request: app replicas", "us", func(f figures) float64 { return us(f.liveCPU.app) })
	row("  CPU per /health/live request: load generator", "us", func(f figures) float64 { return us(f.liveCPU.client) })
	row("  CPU per /health/live request: Docker's daemons", "us", func(f figures) float64 { return us(f.liveCPU.daemons) })
	row("  CPU per /health/live request: rest of the host", "us", func(f figures) float64 { return us(f.liveCPU.rest) })
	row("  CPU per /items request: proxy", "us", func(f figures) float64 { return us(f.itemsCPU.proxy) })
	row("  CPU per /items request: app replicas", "us", func(f figures) float64 { return us(f.itemsCPU.app) })
	row("  CPU per /items request: Docker's daemons", "us", func(f figures) float64 { return us(f.itemsCPU.daemons) })
	row("  CPU per /items request: rest of the host", "us", func(f figures) float64 { return us(f.itemsCPU.rest) })
	row("app release: duration", "s", func(f figures) float64 { return secs(f.releaseTook) })
	row("app release under 50 req/s: p99", "ms", func(f figures) float64 { return ms(f.release.P99) })
	row("app release under 50 req/s: max", "ms", func(f figures) float64 { return ms(f.release.Max) })
	row("SIGKILL of a replica under 50 req/s: p99", "ms", func(f figures) float64 { return ms(f.kill.P99) })
	row("killed replica answering again after", "s", func(f figures) float64 { return secs(f.backAfterKill) })
	fmt.Printf("%-52s %12s %12s\n", "app release under 50 req/s: failed (all rounds)",
		fmt.Sprintf("%d/%d", sum(compose, func(f figures) int { return f.release.Failed }), sum(compose, func(f figures) int { return f.release.Sent })),
		fmt.Sprintf("%d/%d", sum(project, func(f figures) int { return f.release.Failed }), sum(project, func(f figures) int { return f.release.Sent })))
	fmt.Printf("%-52s %12s %12s\n", "SIGKILL of a replica under 50 req/s: failed (all rounds)",
		fmt.Sprintf("%d/%d", sum(compose, func(f figures) int { return f.kill.Failed }), sum(compose, func(f figures) int { return f.kill.Sent })),
		fmt.Sprintf("%d/%d", sum(project, func(f figures) int { return f.kill.Failed }), sum(project, func(f figures) int { return f.kill.Sent })))
	// The goals of the single server on its real engine, each met or not
	// by this run's medians (failures: all rounds).
	c, pr := func(get func(figures) float64) float64 { return med(compose, get) }, func(get func(figures) float64) float64 { return med(project, get) }
	failed := func(get func(figures) loadgen.Result) int {
		return sum(project, func(f figures) int { return get(f).Failed })
	}
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT MET"
	}
	noop := pr(func(f figures) float64 { return secs(f.noop) })
	cold, coldC := pr(func(f figures) float64 { return secs(f.coldStart) }), c(func(f figures) float64 { return secs(f.coldStart) })
	p99 := pr(func(f figures) float64 { return ms(f.release.P99) })
	back := pr(func(f figures) float64 { return secs(f.backAfterKill) })
	items, itemsC := pr(func(f figures) float64 { return f.itemsRPS }), c(func(f figures) float64 { return f.itemsRPS })
	live, liveC := pr(func(f figures) float64 { return f.liveRPS }), c(func(f figures) float64 { return f.liveRPS })
	fmt.Println("goals (fastapi-infra):")
	fmt.Printf("  %-58s %-28s %s\n", "an up with nothing to change <= 2 s", fmt.Sprintf("%.2f s", noop), verdict(noop <= 2))
	fmt.Printf("  %-58s %-28s %s\n", "cold start to HTTPS 200 <= compose's", fmt.Sprintf("%.2f s vs %.2f s", cold, coldC), verdict(cold <= coldC))
	fmt.Printf("  %-58s %-28s %s\n", "a release under 50 req/s: 0 failed, p99 < 100 ms", fmt.Sprintf("%d failed, p99 %.0f ms", failed(func(f figures) loadgen.Result { return f.release }), p99),
		verdict(failed(func(f figures) loadgen.Result { return f.release }) == 0 && p99 < 100))
	fmt.Printf("  %-58s %-28s %s\n", "SIGKILL of a replica: 0 failed, answering again <= 10 s", fmt.Sprintf("%d failed, %.1f s", failed(func(f figures) loadgen.Result { return f.kill }), back),
		verdict(failed(func(f figures) loadgen.Result { return f.kill }) == 0 && back <= 10))
	fmt.Printf("  %-58s %-28s %s\n", "throughput on /items and /health/live >= compose's", fmt.Sprintf("%.2fx, %.2fx", items/itemsC, live/liveC), verdict(items >= itemsC && live >= liveC))
	// What failed, so that a loss explains itself.
	for _, phase := range []struct {
		what string
		get  func(figures) loadgen.Result
	}{{"release", func(f figures) loadgen.Result { return f.release }}, {"SIGKILL", func(f figures) loadgen.Result { return f.kill }}} {
		errs := map[string]int{}
		for _, f := range project {
			for msg, n := range phase.get(f).Errors {
				errs[msg] += n
			}
		}
		for _, msg := range slices.Sorted(maps.Keys(errs)) {
			fmt.Printf("fastapi-infra %s failures: %dx %s\n", phase.what, errs[msg], msg)
		}
	}
}
