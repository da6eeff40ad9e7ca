package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/fastapi-infra/fastapi-infra/deploy"
)

// engineFlags are what preview and up add to the engine's run.
type engineFlags struct{ expectNoChanges, diff bool }

func (f *engineFlags) add(c *cobra.Command) {
	c.Flags().BoolVar(&f.expectNoChanges, "expect-no-changes", false, "fail when the stack would change (drift check)")
	c.Flags().BoolVar(&f.diff, "diff", false, "show a detailed diff")
}

// engineVerb runs the engine on a stack (preview, up, refresh, destroy),
// in deploy's order: Prepare, Preflight (not for destroy), Guards (preview
// and up), the question, the run.
func engineVerb(ctx context.Context, g *globals, term *terminal, o deploy.Options, op string, f engineFlags) error {
	changes := op != "preview"
	if changes {
		if err := term.canAsk(g, op+" changes", o.Stack); err != nil {
			return err
		}
	}
	guarded := op == "up" || op == "preview"
	t, err := deploy.Prepare(ctx, o, deploy.Needs{StackFile: op != "destroy", Engine: true, State: guarded})
	if err != nil {
		return err
	}
	if op != "destroy" {
		if err := deploy.Preflight(ctx, t.Stack, t.Config, os.Stderr); err != nil {
			return err
		}
	}
	c := deploy.Change{Op: op, ExpectNoChanges: f.expectNoChanges, Diff: f.diff, Stdout: os.Stdout, Stderr: os.Stderr}
	if guarded {
		if c.Replace, err = deploy.Guards(t); err != nil {
			return err
		}
		for _, urn := range c.Replace {
			fmt.Fprintf(os.Stderr, "the last up left a failed migration; it runs again: %s\n", urn)
		}
	}
	if changes && !g.yes {
		if err := t.Preview(ctx, c); err != nil {
			return err
		}
		if err := term.confirm(g, fmt.Sprintf("\nDo you want to %s stack %s as previewed above? (yes/no) ", op, t.Name())); err != nil {
			return err
		}
	}
	if op == "destroy" {
		if err := term.productionName(t, "destroy it"); err != nil {
			return err
		}
	}
	outputs, err := t.Run(ctx, c)
	if err != nil || op != "up" {
		return err
	}
	// Up has read the outputs already: printed from its result, not read
	// again (two more CLI processes on every up).
	return printOutputMap(outputs, false)
}
