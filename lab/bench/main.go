// Command bench measures the project on the lab cluster and prints the
// figures side by side from one run (medians of -runs repetitions):
//
//   - the engine: `preview` of the prod stack against `preview` of an empty
//     program on the same engine (what this program costs over Pulumi's own
//     floor), `up` from empty, and a no-op `up`, on kwok's fake nodes; and
//     the same no-op `up` through the driver (`./infra up --yes`: its checks
//     before the engine, the Automation API's reads after it), against the
//     Automation API's `up` alone;
//   - real pods against kwok: the development-cluster stack (2 app pods,
//     in-cluster PostgreSQL, the ingress controller) from empty to every
//     await satisfied, then to HTTPS 200 through the ingress; an image
//     update's rollout; and on the real node the requests a steady 50/s
//     load loses and their p99 during that rollout. kwok runs no process,
//     so its column is the floor the engine and the control plane set.
//
// It is a benchmark, not a test: it asserts nothing. Run it with
// `go run ./lab/bench` (it starts the lab; stop it with go run ./cmd/lab stop).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/deploy"
	"github.com/fastapi-infra/fastapi-infra/internal/loadgen"
	"github.com/fastapi-infra/fastapi-infra/internal/pki"
	"github.com/fastapi-infra/fastapi-infra/lab"
)

// otherDriver is -compare-driver, otherCheckout -compare-infra.
var otherDriver, otherCheckout string

func main() {
	runs := flag.Int("runs", 3, "repetitions of each measurement (the median is printed)")
	engineOnly := flag.Bool("engine-only", false, "only the engine's figures (about 2 minutes): no real pods")
	flag.StringVar(&otherDriver, "compare-driver", "", "a driver binary to time beside this one's on the no-op up (one built from an earlier commit)")
	flag.StringVar(&otherCheckout, "compare-infra", "", "a checkout (an earlier commit's worktree) whose ./infra to time beside this one's own work")
	flag.Parse()
	if err := run(*runs, *engineOnly); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// bench holds what every measurement shares: the lab, one Pulumi home and
// file backend, the images.
type bench struct {
	ctx                context.Context
	repo, tmp          string
	home, backend      string
	lab                *lab.Lab
	images             lab.LocalImages
	updateImage        string
	ca                 *pki.CA
	tlsCert, tlsKey    string
	prodStackFile      []byte
	projectFile        []byte
	passphrase, suffix string
}

func run(runs int, engineOnly bool) error {
	ctx := context.Background()
	repo, err := filepath.Abs(".")
	if err != nil {
		return err
	}
	l, err := lab.New(lab.Config{Repo: repo, Kwok: true, RealNode: !engineOnly, Progress: os.Stderr})
	if err != nil {
		return err
	}
	if err := l.Start(ctx); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	b := &bench{ctx: ctx, repo: repo, tmp: tmp, home: filepath.Join(tmp, "home"), backend: filepath.Join(tmp, "state"), lab: l,
		passphrase: "bench", suffix: randomHex()}
	for _, d := range []string{b.home, b.backend} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if b.projectFile, err = os.ReadFile(filepath.Join(repo, "Pulumi.yaml")); err != nil {
		return err
	}
	if b.prodStackFile, err = os.ReadFile(filepath.Join(repo, "Pulumi.prod.yaml")); err != nil {
		return err
	}
	if !engineOnly {
		if err := b.prepareRealNode(); err != nil {
			return err
		}
	}
	engine, err := b.engine(runs)
	if err != nil {
		return err
	}
	if engineOnly {
		printReport(runs, engine, nil, nil)
		return nil
	}
	real, err := b.releases("real", runs)
	if err != nil {
		return err
	}
	fake, err := b.releases("kwok", runs)
	if err != nil {
		return err
	}
	printReport(runs, engine, &real, &fake)
	return nil
}

// prepareRealNode builds and loads the images, a retag of the app image for
// the update (the same content: a rollout, not an image import, is timed),
// and a certificate for the stacks.
func (b *bench) prepareRealNode() error {
	var err error
	if b.images, err = b.lab.BuildImages(b.ctx); err != nil {
		return err
	}
	b.updateImage = "fastapi-infra-app:bench-update"
	if out, err := exec.Command("docker", "tag", b.images.App, b.updateImage).CombinedOutput(); err != nil {
		return fmt.Errorf("docker tag: %v\n%s", err, out)
	}
	if err := b.lab.LoadImages(b.ctx, b.updateImage); err != nil {
		return err
	}
	if b.ca, err = pki.NewCA("bench"); err != nil {
		return err
	}
	cert, key, err := b.ca.Issue(pki.Subject{CommonName: lab.Domain, Names: []string{lab.Domain}, Server: true})
	b.tlsCert, b.tlsKey = string(cert), string(key)
	return err
}

// stack opens a stack of name from stackFile with path config and secrets.
func (b *bench) stack(name string, stackFile []byte, config, secrets map[string]string) (auto.Stack, error) {
	work := filepath.Join(b.tmp, name)
	if err := os.MkdirAll(work, 0o700); err != nil {
		return auto.Stack{}, err
	}
	if err := os.WriteFile(filepath.Join(work, "Pulumi.yaml"), b.projectFile, 0o644); err != nil {
		return auto.Stack{}, err
	}
	if err := os.WriteFile(filepath.Join(work, "Pulumi."+name+".yaml"), stackFile, 0o644); err != nil {
		return auto.Stack{}, err
	}
	s, err := deploy.Open(b.ctx, deploy.Options{ProjectDir: work, Stack: name, Backend: "file://" + b.backend, PulumiHome: b.home,
		Env: map[string]string{"PULUMI_CONFIG_PASSPHRASE": b.passphrase}, Progress: os.Stderr})
	if err != nil {
		return s, err
	}
	for k, v := range config {
		if err := s.SetConfigWithOptions(b.ctx, "fastapi-infra:"+k, auto.ConfigValue{Value: v}, &auto.ConfigOptions{Path: true}); err != nil {
			return s, err
		}
	}
	for k, v := range secrets {
		if err := s.SetConfig(b.ctx, "fastapi-infra:"+k, auto.ConfigValue{Value: v, Secret: true}); err != nil {
			return s, err
		}
	}
	cfg, err := deploy.ReadConfig(b.ctx, s)
	if err != nil {
		return s, err
	}
	return s, deploy.EnsurePlugin(b.ctx, s.Workspace(), deploy.Architecture(cfg), os.Stderr)
}

// engineFigures are the engine's own costs.
type engineFigures struct {
	emptyPreview, prodPreview, upFromEmpty, noopUp time.Duration
	driverNoopUp                                   time.Duration // ./infra up --yes, the driver binary
	otherDriverNoopUp                              time.Duration // the same with -compare-driver
	infraOwn, otherInfraOwn                        time.Duration // ./infra's own work before the driver, and -compare-infra's
}

func (b *bench) engine(runs int) (engineFigures, error) {
	var f engineFigures
	config := b.lab.KwokStack("bench-prod-" + b.suffix)
	config["app.image"] = "lab.local/fastapi-app:1.0.0"
	// Pulumi.prod.yaml's secrets, as the e2e prod stack sets them.
	prod, err := b.stack("prod", b.prodStackFile, config, map[string]string{"dbPassword": "bench-" + randomHex(),
		"dbAppPassword": "bench-app-" + randomHex(), "alertWebhookUrl": "https://hooks.example.com/lab-bench"})
	if err != nil {
		return f, err
	}
	defer func() { _, _ = prod.Destroy(b.ctx) }()
	// The floor: an empty program on the same CLI, backend and home.
	emptyDir := filepath.Join(b.tmp, "empty")
	if err := os.MkdirAll(emptyDir, 0o700); err != nil {
		return f, err
	}
	empty, err := auto.UpsertStackInlineSource(b.ctx, "empty", "bench-empty", func(*pulumi.Context) error { return nil },
		auto.Pulumi(prod.Workspace().PulumiCommand()), auto.PulumiHome(b.home), auto.WorkDir(emptyDir),
		auto.EnvVars(map[string]string{"PULUMI_BACKEND_URL": "file://" + b.backend, "PULUMI_CONFIG_PASSPHRASE": b.passphrase, "PULUMI_SKIP_UPDATE_CHECK": "true"}))
	if err != nil {
		return f, err
	}
	defer func() { _, _ = empty.Destroy(b.ctx) }()
	quiet := optpreview.ProgressStreams(io.Discard)
	if f.emptyPreview, err = median(runs, nil, func() error { _, err := empty.Preview(b.ctx, quiet); return err }); err != nil {
		return f, fmt.Errorf("empty preview: %w", err)
	}
	if f.prodPreview, err = median(runs, nil, func() error { _, err := prod.Preview(b.ctx, quiet); return err }); err != nil {
		return f, fmt.Errorf("prod preview: %w", err)
	}
	destroyFirst := func() error { _, err := prod.Destroy(b.ctx); return err }
	up := func() error { _, err := prod.Up(b.ctx, optup.ProgressStreams(io.Discard)); return err }
	if f.upFromEmpty, err = median(runs, destroyFirst, up); err != nil {
		return f, fmt.Errorf("up: %w", err)
	}
	if f.noopUp, err = median(runs, nil, up); err != nil {
		return f, fmt.Errorf("no-op up: %w", err)
	}
	driver, err := b.driver()
	if err != nil {
		return f, err
	}
	driverUp := func() error { return b.driverUp(driver, prod) }
	if f.driverNoopUp, err = median(runs, nil, driverUp); err != nil {
		return f, fmt.Errorf("no-op up through the driver: %w", err)
	}
	if f.infraOwn, err = b.infraOwnWork(b.repo); err != nil {
		return f, err
	}
	if otherCheckout != "" {
		if f.otherInfraOwn, err = b.infraOwnWork(otherCheckout); err != nil {
			return f, err
		}
	}
	if otherDriver != "" {
		other := func() error { return b.driverUp(otherDriver, prod) }
		if f.otherDriverNoopUp, err = median(runs, nil, other); err != nil {
			return f, fmt.Errorf("no-op up through %s: %w", otherDriver, err)
		}
	}
	return f, nil
}

// infraOwnWork is what ./infra in checkout does before its driver on a dev
// stack where nothing changed (build check, image check): the median of
// `./infra preview dev` less that of its driver's `preview dev` alone, both
// refused at once at the docker plugin by an empty Pulumi home (no stack
// is made). One run first builds what is missing.
func (b *bench) infraOwnWork(checkout string) (time.Duration, error) {
	project, home := filepath.Join(b.tmp, "infra-dev"), filepath.Join(b.tmp, "infra-home")
	for _, d := range []string{project, home} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return 0, err
		}
	}
	for _, f := range []string{"Pulumi.yaml", "Pulumi.dev.yaml"} {
		raw, err := os.ReadFile(filepath.Join(b.repo, f))
		if err == nil {
			err = os.WriteFile(filepath.Join(project, f), raw, 0o644)
		}
		if err != nil {
			return 0, err
		}
	}
	preview := func(program string) func() error {
		return func() error {
			cmd := exec.Command(program, "--dir", project, "--backend", "file://"+filepath.Join(b.tmp, "infra-state"), "preview", "dev")
			cmd.Dir = checkout
			cmd.Env = append(os.Environ(), "PULUMI_HOME="+home, "PULUMI_CONFIG_PASSPHRASE="+b.passphrase, "PULUMI_SKIP_UPDATE_CHECK=true")
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), "needs the Pulumi docker provider plugin") {
				return fmt.Errorf("%s preview dev: want the docker plugin refusal, got %v\n%s", program, err, out)
			}
			return nil
		}
	}
	infra := preview(filepath.Join(checkout, "infra"))
	if err := infra(); err != nil { // builds what is missing
		return 0, err
	}
	whole, err := median(3, nil, infra)
	if err != nil {
		return 0, err
	}
	driver, err := median(3, nil, preview(filepath.Join(checkout, "bin", "fastapi-infra")))
	return whole - driver, err
}

// driverUp runs `driver --yes up` on the stack, as ./infra up --yes does.
func (b *bench) driverUp(driver string, prod auto.Stack) error {
	cmd := exec.Command(driver, "--dir", prod.Workspace().WorkDir(), "--backend", "file://"+b.backend, "--yes", "up", prod.Name())
	cmd.Env = append(os.Environ(), "PULUMI_CONFIG_PASSPHRASE="+b.passphrase, "PULUMI_HOME="+b.home, "PULUMI_SKIP_UPDATE_CHECK=true")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v\n%s", err, out)
	}
	return nil
}

// driver builds ./infra's driver (cmd/fastapi-infra), as ./infra does.
func (b *bench) driver() (string, error) {
	bin := filepath.Join(b.tmp, "fastapi-infra")
	build := exec.Command("go", "build", "-o", bin, "./cmd/fastapi-infra")
	build.Dir = b.repo
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the driver: %v\n%s", err, out)
	}
	return bin, nil
}

// releaseFigures are one target's medians over the runs, and the load's
// outcome summed over them.
type releaseFigures struct {
	upFromEmpty, toHTTPS, rollout time.Duration
	sent, failed                  int
	p99, max                      time.Duration
}

// releases deploys the development-cluster stack on target ("real" or
// "kwok") from empty runs times, each in a namespace of its own, and rolls
// out an image update.
func (b *bench) releases(target string, runs int) (releaseFigures, error) {
	var f releaseFigures
	var ups, https, rollouts, p99s []time.Duration
	client := b.lab.IngressClient(b.ca)
	for i := range runs {
		name := fmt.Sprintf("%s-%d", target, i)
		namespace := "bench-" + name + "-" + b.suffix
		config := b.lab.RealNodeStack(namespace, b.images)
		if target == "kwok" {
			for k, v := range b.lab.KwokStack(namespace) {
				config[k] = v
			}
		}
		s, err := b.stack(name, []byte("config: {}\n"), config, map[string]string{
			"dbPassword": "bench-" + randomHex(), "tlsCert": b.tlsCert, "tlsKey": b.tlsKey})
		if err != nil {
			return f, err
		}
		start := time.Now()
		if _, err := s.Up(b.ctx, optup.ProgressStreams(io.Discard)); err != nil {
			return f, fmt.Errorf("%s: up from empty: %w", name, err)
		}
		ups = append(ups, time.Since(start))
		if target == "real" {
			served, err := waitServing(client, 2*time.Minute)
			if err != nil {
				return f, fmt.Errorf("%s: %w", name, err)
			}
			https = append(https, served)
		}
		if err := s.SetConfigWithOptions(b.ctx, "fastapi-infra:app.image", auto.ConfigValue{Value: b.updateImage}, &auto.ConfigOptions{Path: true}); err != nil {
			return f, err
		}
		var load *loadgen.Run
		if target == "real" {
			load = loadgen.Start(client, func(ctx context.Context) (*http.Request, error) {
				return http.NewRequestWithContext(ctx, "GET", "https://"+lab.Domain+"/items", nil)
			}, loadgen.Options{Rate: 50, Max: 4 * time.Minute})
			time.Sleep(2 * time.Second)
		}
		start = time.Now()
		if _, err := s.Up(b.ctx, optup.ProgressStreams(io.Discard)); err != nil {
			return f, fmt.Errorf("%s: image update: %w", name, err)
		}
		rollouts = append(rollouts, time.Since(start))
		if load != nil {
			time.Sleep(8 * time.Second) // the old pods' preStop and stop
			res := load.Stop()
			f.sent += res.Sent
			f.failed += res.Failed
			p99s = append(p99s, res.P99)
			f.max = max(f.max, res.Max)
		}
		if _, err := s.Destroy(b.ctx, optdestroy.ProgressStreams(io.Discard)); err != nil {
			return f, fmt.Errorf("%s: destroy: %w", name, err)
		}
		// The database's claim and its namespace outlive destroy by design.
		_ = exec.Command("kubectl", "--kubeconfig", b.lab.Kubeconfig, "delete", "namespace", namespace, "--wait=false").Run()
	}
	f.upFromEmpty, f.toHTTPS, f.rollout, f.p99 = middle(ups), middle(https), middle(rollouts), middle(p99s)
	return f, nil
}

func waitServing(client *http.Client, within time.Duration) (time.Duration, error) {
	start := time.Now()
	for time.Since(start) < within {
		resp, err := client.Get("https://" + lab.Domain + "/items")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return 0, fmt.Errorf("no HTTPS 200 on /items through the ingress within %s", within)
}

func printReport(runs int, e engineFigures, real, kwok *releaseFigures) {
	s := func(d time.Duration) string { return fmt.Sprintf("%6.2f s", d.Seconds()) }
	ratio := func(a, b time.Duration) string { return fmt.Sprintf("%5.2fx", a.Seconds()/b.Seconds()) }
	fmt.Printf("fastapi-infra benchmark (median of %d runs each; one machine, same CLI, plugin home and file backend)\n\n", runs)
	fmt.Println("engine, prod stack on kwok's fake nodes")
	fmt.Printf("  %-44s %s\n", "preview, empty program", s(e.emptyPreview))
	fmt.Printf("  %-44s %s   %s the empty program\n", "preview, prod stack", s(e.prodPreview), ratio(e.prodPreview, e.emptyPreview))
	fmt.Printf("  %-44s %s\n", "up from empty, every await satisfied", s(e.upFromEmpty))
	fmt.Printf("  %-44s %s   %s the empty preview\n", "up with no changes", s(e.noopUp), ratio(e.noopUp, e.emptyPreview))
	fmt.Printf("  %-44s %s   %s the Automation API's up\n", "  the same through the driver (./infra)", s(e.driverNoopUp), ratio(e.driverNoopUp, e.noopUp))
	if otherDriver != "" {
		fmt.Printf("  %-44s %s   %s this driver\n", "  the same through -compare-driver", s(e.otherDriverNoopUp), ratio(e.otherDriverNoopUp, e.driverNoopUp))
	}
	fmt.Printf("  %-44s %s\n", "./infra's own work before the driver, dev", s(e.infraOwn))
	if otherCheckout != "" {
		fmt.Printf("  %-44s %s   %s this one\n", "  the same in -compare-infra's checkout", s(e.otherInfraOwn), ratio(e.otherInfraOwn, e.infraOwn))
	}
	if real == nil {
		return
	}
	fmt.Println()
	fmt.Println("development-cluster stack (2 app pods, in-cluster PostgreSQL, ingress): real pods vs kwok")
	fmt.Printf("  %-44s %10s %10s %8s\n", "", "real node", "kwok", "real/kwok")
	fmt.Printf("  %-44s %10s %10s %8s\n", "up from empty, every await satisfied", s(real.upFromEmpty), s(kwok.upFromEmpty), ratio(real.upFromEmpty, kwok.upFromEmpty))
	fmt.Printf("  %-44s %10s %10s\n", "  then HTTPS 200 on /items through the ingress", "+"+s(real.toHTTPS), "-")
	fmt.Printf("  %-44s %10s %10s %8s\n", "image update: rollout (up)", s(real.rollout), s(kwok.rollout), ratio(real.rollout, kwok.rollout))
	fmt.Printf("  %-44s %10s %10s\n", "  requests at 50/s during it: failed", fmt.Sprintf("%d of %d", real.failed, real.sent), "-")
	fmt.Printf("  %-44s %10s %10s\n", "  p99 / max latency", fmt.Sprintf("%d / %d ms", real.p99.Milliseconds(), real.max.Milliseconds()), "-")
}

// median times f runs times, with setup before each, and returns the median.
func median(runs int, setup, f func() error) (time.Duration, error) {
	var ds []time.Duration
	for range runs {
		if setup != nil {
			if err := setup(); err != nil {
				return 0, err
			}
		}
		start := time.Now()
		if err := f(); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(start))
	}
	return middle(ds), nil
}

func middle(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[len(ds)/2]
}

func randomHex() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
