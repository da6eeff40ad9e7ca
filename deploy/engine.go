package deploy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"

	"github.com/fastapi-infra/fastapi-infra/stacks"
)

// Change is one run of the engine on a Target.
type Change struct {
	// Op is preview, up, refresh or destroy.
	Op string
	// ExpectNoChanges fails a preview or up that would change the stack
	// (the drift check); Diff shows a detailed diff.
	ExpectNoChanges, Diff bool
	// Replace are URNs to replace (Guards' failed migrations).
	Replace []string
	// Stdout and Stderr get the engine's progress as it runs.
	Stdout, Stderr io.Writer
}

// Run runs the engine and returns an up's outputs. A failure comes back as
// one error that says why in a few lines: who holds the lock, or the
// engine's diagnostics, and for a single server's up the probes and last
// log lines of the containers that are not healthy.
func (t Target) Run(ctx context.Context, c Change) (auto.OutputMap, error) {
	// The progress streams as the engine runs; a failure is summarised
	// from the engine's diagnostics (its event stream), and from the CLI's
	// own error lines when the engine never started.
	var stderr bytes.Buffer
	outs, errs := c.Stdout, io.MultiWriter(c.Stderr, &stderr)
	diags := CollectDiagnostics()
	var (
		outputs auto.OutputMap
		err     error
	)
	s := t.Stack
	switch c.Op {
	case "preview":
		opts := append(c.previewOptions(errs), optpreview.EventStreams(diags.Events()))
		if c.ExpectNoChanges {
			opts = append(opts, optpreview.ExpectNoChanges())
		}
		_, err = s.Preview(ctx, opts...)
	case "up":
		opts := []optup.Option{optup.ProgressStreams(outs), optup.ErrorProgressStreams(errs), optup.Message(Who()), optup.EventStreams(diags.Events())}
		if c.ExpectNoChanges {
			opts = append(opts, optup.ExpectNoChanges())
		}
		if c.Diff {
			opts = append(opts, optup.Diff())
		}
		if len(c.Replace) > 0 {
			opts = append(opts, optup.Replace(c.Replace))
		}
		var res auto.UpResult
		res, err = s.Up(ctx, opts...)
		outputs = res.Outputs
	case "refresh":
		_, err = s.Refresh(ctx, optrefresh.ProgressStreams(outs), optrefresh.ErrorProgressStreams(errs), optrefresh.Message(Who()), optrefresh.EventStreams(diags.Events()))
	case "destroy":
		_, err = s.Destroy(ctx, optdestroy.ProgressStreams(outs), optdestroy.ErrorProgressStreams(errs), optdestroy.Message(Who()), optdestroy.EventStreams(diags.Events()))
	default:
		close(diags.events)
		return nil, fmt.Errorf("the engine does not %s", c.Op)
	}
	if err == nil {
		return outputs, nil
	}
	if auto.IsConcurrentUpdateError(err) {
		return nil, LockedError(c.Op, t.Name(), stderr.String()+err.Error())
	}
	summary := Summarize(diags.All(), stderr.String())
	if c.Op == "up" && t.Arch == stacks.SingleServer {
		// The provider says only that a container "failed to be in
		// healthy state": its probes and logs say why.
		if why := WhyUnwell(ctx, t.Config, t.Name()); why != "" {
			summary = strings.TrimSpace(summary + "\n" + why)
		}
	}
	if summary != "" {
		return nil, fmt.Errorf("%s %s failed:\n%s", c.Op, t.Name(), summary)
	}
	return nil, fmt.Errorf("%s %s failed (the engine's output is above)", c.Op, t.Name())
}

// previewOptions are an update's preview's: its progress to c.Stdout and
// errs, the diff and the replacements it asks for.
func (c Change) previewOptions(errs io.Writer) []optpreview.Option {
	opts := []optpreview.Option{optpreview.ProgressStreams(c.Stdout), optpreview.ErrorProgressStreams(errs)}
	if c.Diff {
		opts = append(opts, optpreview.Diff())
	}
	if len(c.Replace) > 0 {
		opts = append(opts, optpreview.Replace(c.Replace))
	}
	return opts
}

// Preview shows what Run would do with c, for a person to confirm: the
// update's, refresh's or destroy's own preview.
func (t Target) Preview(ctx context.Context, c Change) error {
	s := t.Stack
	var err error
	switch c.Op {
	case "up":
		_, err = s.Preview(ctx, c.previewOptions(c.Stderr)...)
	case "destroy":
		_, err = s.PreviewDestroy(ctx, optdestroy.ProgressStreams(c.Stdout), optdestroy.ErrorProgressStreams(c.Stderr))
	case "refresh":
		_, err = s.PreviewRefresh(ctx, optrefresh.ProgressStreams(c.Stdout), optrefresh.ErrorProgressStreams(c.Stderr))
	default:
		return fmt.Errorf("no preview of %s", c.Op)
	}
	if err != nil {
		return fmt.Errorf("the preview before %s failed, so nothing was changed (the engine's output is above)", c.Op)
	}
	return nil
}
