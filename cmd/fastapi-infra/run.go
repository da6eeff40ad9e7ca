package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"

	"github.com/fastapi-infra/fastapi-infra/deploy"
	"github.com/fastapi-infra/fastapi-infra/internal/dockerapi"
	"github.com/fastapi-infra/fastapi-infra/stacks"
)

type flags struct {
	yes, expectNoChanges, diff, showSecrets bool
	from                                    string
	// logs: the window, the text and the service.
	since         time.Duration
	grep, service string
}

// terminal is where the driver asks before it changes anything.
type terminal struct {
	in     io.Reader
	out    io.Writer
	reader *bufio.Reader // one for every question: it may read ahead
}

// interactive says whether there is a person to ask: stdin is a terminal.
func (t *terminal) interactive() bool {
	f, ok := t.in.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// ask prints question and returns the answer's first line, trimmed.
func (t *terminal) ask(question string) string {
	fmt.Fprint(t.out, question)
	if t.reader == nil {
		t.reader = bufio.NewReader(t.in)
	}
	line, _ := t.reader.ReadString('\n')
	return strings.TrimSpace(line)
}

var errDeclined = errors.New("nothing was changed: the answer was not yes")

func run(ctx context.Context, op string, o deploy.Options, f flags, term *terminal) error {
	switch op {
	case "preview", "up", "destroy", "refresh", "outputs", "history", "logs", "backup", "restore":
	default:
		return fmt.Errorf("unknown operation %q; want preview, up, destroy, refresh, outputs, history, logs, backup or restore", op)
	}
	if _, err := os.Stat(filepath.Join(o.ProjectDir, "Pulumi."+o.Stack+".yaml")); errors.Is(err, os.ErrNotExist) && op != "outputs" && op != "history" && op != "logs" && op != "destroy" && op != "backup" && op != "restore" {
		return fmt.Errorf("no Pulumi.%s.yaml in %s: create it with the overrides of the new stack (see docs/configuration.md)", o.Stack, o.ProjectDir)
	}
	changes := op == "up" || op == "destroy" || op == "refresh"
	if changes && !f.yes && !term.interactive() {
		return fmt.Errorf("%s changes stack %s and there is no terminal to ask on; run it with --yes to go ahead without asking (CI)", op, o.Stack)
	}
	ws, err := deploy.Workspace(ctx, o)
	if err != nil {
		return err
	}
	// The plugin first, before the stack is even selected: a refusal for
	// a missing docker plugin must leave the stack file as it was (creating
	// a stack writes its encryption salt there, and Preflight may store
	// generated secrets) and the backend without a new stack.
	engine := op != "outputs" && op != "history" && op != "logs" && op != "backup" && op != "restore"
	arch, fromFile, err := deploy.StackFileArchitecture(o.ProjectDir, o.Stack)
	if err != nil {
		return err
	}
	if engine && fromFile {
		if err := deploy.EnsurePlugin(ctx, ws, arch, os.Stderr); err != nil {
			return err
		}
	}
	if op == "outputs" {
		s, err := auto.UpsertStack(ctx, o.Stack, ws)
		if err != nil {
			return err
		}
		return printOutputs(ctx, s, f.showSecrets)
	}
	if op == "history" {
		s, err := auto.SelectStack(ctx, o.Stack, ws)
		if err != nil {
			return fmt.Errorf("history %s: no such stack in the backend (%w)", o.Stack, err)
		}
		updates, err := s.History(ctx, 0, 0)
		if err != nil {
			return err
		}
		for _, line := range deploy.HistoryLines(updates) {
			fmt.Println(line)
		}
		return nil
	}
	// The state, for up and preview: a migration that failed on the last
	// `up` runs again (see deploy.FailedMigrations), and a PostgreSQL major
	// upgrade through db.image, which would leave the release without a
	// database, is refused before anything changes.
	checkState := op == "up" || op == "preview"
	s, reads, err := deploy.SelectAndRead(ctx, ws, o.Stack, checkState)
	if err != nil {
		return err
	}
	cfg := reads.Config
	if op == "backup" || op == "restore" {
		return database(ctx, op, s, cfg, f.from, f.yes, term)
	}
	if op == "logs" {
		return logs(ctx, cfg, o.Stack, f)
	}
	if !fromFile { // destroy of a stack whose file is gone: the backend's config
		if err := deploy.EnsurePlugin(ctx, ws, deploy.Architecture(cfg), os.Stderr); err != nil {
			return err
		}
	}
	if op != "destroy" {
		if err := deploy.Preflight(ctx, s, cfg, os.Stderr); err != nil {
			return err
		}
	}
	var retry []string
	if checkState {
		if err := deploy.DatabaseMajorGuard(reads.State, cfg, s.Name()); err != nil {
			return err
		}
		if retry, err = deploy.FailedMigrations(reads.State); err != nil {
			return err
		}
		for _, urn := range retry {
			fmt.Fprintf(os.Stderr, "the last up left a failed migration; it runs again: %s\n", urn)
		}
	}
	if changes && !f.yes {
		if err := confirm(ctx, s, op, retry, f, term); err != nil {
			return err
		}
	}
	// --yes answers the preview's question, never this one: a production
	// stack is destroyed only by someone who types its name (on stdin,
	// without a terminal: `echo prod | ./infra destroy prod --yes`).
	if op == "destroy" && cfg["fastapi-infra:environment"].Value == "production" {
		if answer := term.ask(fmt.Sprintf("%s is a production stack. Type its name to destroy it: ", s.Name())); answer != s.Name() {
			return fmt.Errorf("nothing was changed: %q is not the stack's name", answer)
		}
	}
	// The progress streams as the engine runs; the same text is kept to
	// summarise a failure, instead of printing it all a second time.
	var stdout, stderr bytes.Buffer
	outs := io.MultiWriter(os.Stdout, &stdout)
	errs := io.MultiWriter(os.Stderr, &stderr)
	switch op {
	case "preview":
		opts := []optpreview.Option{optpreview.ProgressStreams(outs), optpreview.ErrorProgressStreams(errs)}
		if f.expectNoChanges {
			opts = append(opts, optpreview.ExpectNoChanges())
		}
		if f.diff {
			opts = append(opts, optpreview.Diff())
		}
		if len(retry) > 0 {
			opts = append(opts, optpreview.Replace(retry))
		}
		_, err = s.Preview(ctx, opts...)
	case "up":
		opts := []optup.Option{optup.ProgressStreams(outs), optup.ErrorProgressStreams(errs), optup.Message(deploy.Who())}
		if f.expectNoChanges {
			opts = append(opts, optup.ExpectNoChanges())
		}
		if f.diff {
			opts = append(opts, optup.Diff())
		}
		if len(retry) > 0 {
			opts = append(opts, optup.Replace(retry))
		}
		// Up has read the outputs already: printed from its result, not
		// read again (two more CLI processes on every up).
		var res auto.UpResult
		if res, err = s.Up(ctx, opts...); err == nil {
			err = printOutputMap(res.Outputs, false)
		}
	case "refresh":
		_, err = s.Refresh(ctx, optrefresh.ProgressStreams(outs), optrefresh.ErrorProgressStreams(errs), optrefresh.Message(deploy.Who()))
	case "destroy":
		_, err = s.Destroy(ctx, optdestroy.ProgressStreams(outs), optdestroy.ErrorProgressStreams(errs), optdestroy.Message(deploy.Who()))
	}
	if err == nil {
		return nil
	}
	if auto.IsConcurrentUpdateError(err) {
		return deploy.LockedError(op, o.Stack, stderr.String()+err.Error())
	}
	summary := deploy.Summarize(stdout.String(), stderr.String())
	if op == "up" && deploy.Architecture(cfg) == stacks.SingleServer {
		// The provider says only that a container "failed to be in
		// healthy state": its probes and logs say why.
		if why := deploy.WhyUnwell(ctx, cfg, o.Stack); why != "" {
			summary = strings.TrimSpace(summary + "\n" + why)
		}
	}
	if summary != "" {
		return fmt.Errorf("%s %s failed:\n%s", op, o.Stack, summary)
	}
	return fmt.Errorf("%s %s failed (the engine's output is above)", op, o.Stack)
}

// confirm shows what the operation would do and asks, as `pulumi up`
// does.
func confirm(ctx context.Context, s auto.Stack, op string, retry []string, f flags, term *terminal) error {
	var err error
	switch op {
	case "up":
		opts := []optpreview.Option{optpreview.ProgressStreams(os.Stdout), optpreview.ErrorProgressStreams(os.Stderr)}
		if f.diff {
			opts = append(opts, optpreview.Diff())
		}
		if len(retry) > 0 {
			opts = append(opts, optpreview.Replace(retry))
		}
		_, err = s.Preview(ctx, opts...)
	case "destroy":
		_, err = s.PreviewDestroy(ctx, optdestroy.ProgressStreams(os.Stdout), optdestroy.ErrorProgressStreams(os.Stderr))
	case "refresh":
		_, err = s.PreviewRefresh(ctx, optrefresh.ProgressStreams(os.Stdout), optrefresh.ErrorProgressStreams(os.Stderr))
	}
	if err != nil {
		return fmt.Errorf("the preview before %s failed, so nothing was changed (the engine's output is above)", op)
	}
	if answer := term.ask(fmt.Sprintf("\nDo you want to %s stack %s as previewed above? (yes/no) ", op, s.Name())); answer != "yes" && answer != "y" {
		return errDeclined
	}
	return nil
}

func printOutputs(ctx context.Context, s auto.Stack, showSecrets bool) error {
	outs, err := s.Outputs(ctx)
	if err != nil {
		return err
	}
	return printOutputMap(outs, showSecrets)
}

// printOutputMap prints the outputs as JSON, secret ones as "[secret]"
// unless showSecrets.
func printOutputMap(outs auto.OutputMap, showSecrets bool) error {
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

// logs prints the single server's containers' lines in one time-ordered
// stream (deploy.StackLogs), from the engine.
func logs(ctx context.Context, cfg auto.ConfigMap, stack string, f flags) error {
	if deploy.Architecture(cfg) == stacks.Kubernetes {
		return fmt.Errorf("logs %s: a Kubernetes stack's logs are its pods': kubectl logs -n <kubernetes.namespace> -l app.kubernetes.io/name=<app.name> --prefix --timestamps --since=10m (./infra logs reads a single server's engine only, for now)", stack)
	}
	socket, err := deploy.DockerSocket(cfg)
	if err != nil {
		return err
	}
	filter := deploy.LogFilter{Grep: f.grep, Service: f.service}
	if f.since > 0 {
		filter.Since = time.Now().Add(-f.since)
	}
	lines, err := deploy.StackLogs(ctx, dockerapi.NewClient(socket), deploy.DockerNamePrefix(cfg, stack), filter)
	if err != nil {
		return fmt.Errorf("logs %s: %w", stack, err)
	}
	for _, l := range lines {
		fmt.Println(l)
	}
	return nil
}
