// Command fastapi-infra runs preview, up, destroy, refresh and outputs of a
// stack of this project through the Automation API, with the program in
// this process (stacks.Run) and the project's Pulumi.yaml and
// Pulumi.<stack>.yaml. Use it where `pulumi up` cannot start a Go program,
// and for the README's one-command dev deployment (./infra up dev).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"

	"github.com/fastapi-infra/fastapi-infra/deploy"
)

const usage = `usage: fastapi-infra [flags] preview|up|destroy|refresh|outputs STACK

Runs the operation on STACK (dev, prod, or any Pulumi.<stack>.yaml) with the
program in this process. Backend: --backend, else $PULUMI_BACKEND_URL, else
the one you are logged into, else a local file backend in ~/.fastapi-infra.

flags:
`

func main() {
	dir := flag.String("dir", ".", "the project folder (Pulumi.yaml)")
	backend := flag.String("backend", "", "backend URL, e.g. file://~/state, s3://bucket, https://api.pulumi.com")
	expectNoChanges := flag.Bool("expect-no-changes", false, "preview/up: fail when the stack would change (drift check)")
	diff := flag.Bool("diff", false, "preview/up: show a detailed diff")
	showSecrets := flag.Bool("show-secrets", false, "outputs: print secret values")
	flag.Usage = func() { fmt.Fprint(os.Stderr, usage); flag.PrintDefaults() }
	flag.Parse()
	if flag.NArg() != 2 {
		flag.Usage()
		os.Exit(2)
	}
	op, stackName := flag.Arg(0), flag.Arg(1)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	projectDir, err := filepath.Abs(*dir)
	if err == nil {
		err = run(ctx, op, deploy.Options{ProjectDir: projectDir, Stack: stackName, Backend: *backend, Progress: os.Stderr}, *expectNoChanges, *diff, *showSecrets)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fastapi-infra:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, op string, o deploy.Options, expectNoChanges, diff, showSecrets bool) error {
	switch op {
	case "preview", "up", "destroy", "refresh", "outputs":
	default:
		return fmt.Errorf("unknown operation %q; want preview, up, destroy, refresh or outputs", op)
	}
	if _, err := os.Stat(filepath.Join(o.ProjectDir, "Pulumi."+o.Stack+".yaml")); errors.Is(err, os.ErrNotExist) && op != "outputs" && op != "destroy" {
		return fmt.Errorf("no Pulumi.%s.yaml in %s: create it with the overrides of the new stack (see the README)", o.Stack, o.ProjectDir)
	}
	s, err := deploy.Open(ctx, o)
	if err != nil {
		return err
	}
	if op == "outputs" {
		return printOutputs(ctx, s, showSecrets)
	}
	// The plugin first: a refusal for a missing docker plugin must leave
	// even the stack file as it was (Preflight may store a generated dev
	// password in it).
	cfg, err := deploy.ReadConfig(ctx, s)
	if err != nil {
		return err
	}
	if err := deploy.EnsurePlugin(ctx, s, cfg, os.Stderr); err != nil {
		return err
	}
	if op != "destroy" {
		if err := deploy.Preflight(ctx, s, cfg, os.Stderr); err != nil {
			return err
		}
	}
	switch op {
	case "preview":
		opts := []optpreview.Option{optpreview.ProgressStreams(os.Stdout), optpreview.ErrorProgressStreams(os.Stderr)}
		if expectNoChanges {
			opts = append(opts, optpreview.ExpectNoChanges())
		}
		if diff {
			opts = append(opts, optpreview.Diff())
		}
		_, err = s.Preview(ctx, opts...)
	case "up":
		opts := []optup.Option{optup.ProgressStreams(os.Stdout), optup.ErrorProgressStreams(os.Stderr)}
		if expectNoChanges {
			opts = append(opts, optup.ExpectNoChanges())
		}
		if diff {
			opts = append(opts, optup.Diff())
		}
		if _, err = s.Up(ctx, opts...); err == nil {
			err = printOutputs(ctx, s, false)
		}
	case "refresh":
		_, err = s.Refresh(ctx, optrefresh.ProgressStreams(os.Stdout), optrefresh.ErrorProgressStreams(os.Stderr))
	case "destroy":
		_, err = s.Destroy(ctx, optdestroy.ProgressStreams(os.Stdout), optdestroy.ErrorProgressStreams(os.Stderr))
	}
	if auto.IsCompilationError(err) || auto.IsConcurrentUpdateError(err) {
		return fmt.Errorf("%s %s: %w", op, o.Stack, err)
	}
	return err
}

func printOutputs(ctx context.Context, s auto.Stack, showSecrets bool) error {
	outs, err := s.Outputs(ctx)
	if err != nil {
		return err
	}
	plain := map[string]any{}
	for k, v := range outs {
		if v.Secret && !showSecrets {
			plain[k] = "[secret]"
			continue
		}
		plain[k] = v.Value
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(plain)
}
