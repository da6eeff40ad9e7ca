// Command bench measures the real engine on the lab cluster and prints the
// figures side by side from one run: `preview` of the prod stack against
// `preview` of an empty program on the same engine (the ratio is what this
// program costs over Pulumi's own floor), `up` from empty to every await
// satisfied, and a no-op `up`. It is a benchmark, not a test: it asserts
// nothing. Run it with `go run ./lab/bench` (it starts the lab cluster).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/deploy"
	"github.com/fastapi-infra/fastapi-infra/lab"
)

func main() {
	runs := flag.Int("runs", 3, "repetitions of each measurement (the median is printed)")
	flag.Parse()
	if err := run(*runs); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(runs int) error {
	ctx := context.Background()
	repo, err := filepath.Abs(".")
	if err != nil {
		return err
	}
	l, err := lab.New(lab.Config{Repo: repo, Kwok: true, Progress: os.Stderr})
	if err != nil {
		return err
	}
	if err := l.Start(ctx); err != nil {
		return err
	}
	kubeconfig := l.Kubeconfig
	tmp, err := os.MkdirTemp("", "bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	home, backend, work := filepath.Join(tmp, "home"), filepath.Join(tmp, "state"), filepath.Join(tmp, "work")
	for _, d := range []string{home, backend, work, filepath.Join(tmp, "empty")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	for from, to := range map[string]string{"Pulumi.yaml": "Pulumi.yaml", "Pulumi.prod.yaml": "Pulumi.bench.yaml"} {
		raw, err := os.ReadFile(filepath.Join(repo, from))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(work, to), raw, 0o644); err != nil {
			return err
		}
	}
	env := map[string]string{"PULUMI_CONFIG_PASSPHRASE": "bench"}
	prod, err := deploy.Open(ctx, deploy.Options{ProjectDir: work, Stack: "bench", Backend: "file://" + backend, PulumiHome: home, Env: env})
	if err != nil {
		return err
	}
	for k, v := range map[string]string{"kubernetes.kubeconfig": kubeconfig, "kubernetes.namespace": "bench", "app.image": "lab.local/fastapi-app:1.0.0", "kubernetes.nodeSelector.type": "kwok"} {
		if err := prod.SetConfigWithOptions(ctx, "fastapi-infra:"+k, auto.ConfigValue{Value: v}, &auto.ConfigOptions{Path: true}); err != nil {
			return err
		}
	}
	if err := prod.SetConfig(ctx, "fastapi-infra:dbPassword", auto.ConfigValue{Value: "bench-password", Secret: true}); err != nil {
		return err
	}
	cfg, err := deploy.ReadConfig(ctx, prod)
	if err != nil {
		return err
	}
	if err := deploy.EnsurePlugin(ctx, prod, cfg, os.Stderr); err != nil {
		return err
	}
	// The floor: an empty program on the same CLI, backend and home.
	cli := prod.Workspace().PulumiCommand()
	empty, err := auto.UpsertStackInlineSource(ctx, "empty", "bench-empty", func(*pulumi.Context) error { return nil },
		auto.Pulumi(cli), auto.PulumiHome(home), auto.WorkDir(filepath.Join(tmp, "empty")),
		auto.EnvVars(map[string]string{"PULUMI_BACKEND_URL": "file://" + backend, "PULUMI_CONFIG_PASSPHRASE": "bench", "PULUMI_SKIP_UPDATE_CHECK": "true"}))
	if err != nil {
		return err
	}
	defer func() {
		_, _ = prod.Destroy(ctx)
		_, _ = empty.Destroy(ctx)
	}()

	time1 := func(f func() error) (time.Duration, error) {
		start := time.Now()
		err := f()
		return time.Since(start), err
	}
	median := func(f func() error, setup func() error) (time.Duration, error) {
		var ds []time.Duration
		for range runs {
			if setup != nil {
				if err := setup(); err != nil {
					return 0, err
				}
			}
			d, err := time1(f)
			if err != nil {
				return 0, err
			}
			ds = append(ds, d)
		}
		slices.Sort(ds)
		return ds[len(ds)/2], nil
	}
	quiet := []optpreview.Option{optpreview.ProgressStreams(io.Discard)}

	emptyPreview, err := median(func() error { _, err := empty.Preview(ctx, quiet...); return err }, nil)
	if err != nil {
		return fmt.Errorf("empty preview: %w", err)
	}
	prodPreview, err := median(func() error { _, err := prod.Preview(ctx, quiet...); return err }, nil)
	if err != nil {
		return fmt.Errorf("prod preview: %w", err)
	}
	destroyFirst := func() error { _, err := prod.Destroy(ctx); return err }
	upFromEmpty, err := median(func() error { _, err := prod.Up(ctx, optup.ProgressStreams(io.Discard)); return err }, destroyFirst)
	if err != nil {
		return fmt.Errorf("up: %w", err)
	}
	noopUp, err := median(func() error { _, err := prod.Up(ctx, optup.ProgressStreams(io.Discard)); return err }, nil)
	if err != nil {
		return fmt.Errorf("no-op up: %w", err)
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%7.2f s", d.Seconds()) }
	fmt.Printf("fastapi-infra engine benchmark (median of %d runs each; same CLI, plugin home and file backend)\n", runs)
	fmt.Printf("%-48s %s\n", "preview, empty program", ms(emptyPreview))
	fmt.Printf("%-48s %s   ratio %.2fx the empty program\n", "preview, prod stack (lab cluster)", ms(prodPreview), prodPreview.Seconds()/emptyPreview.Seconds())
	fmt.Printf("%-48s %s\n", "up from empty, every await satisfied", ms(upFromEmpty))
	fmt.Printf("%-48s %s   ratio %.2fx the empty preview\n", "up with no changes", ms(noopUp), noopUp.Seconds()/emptyPreview.Seconds())
	return nil
}
