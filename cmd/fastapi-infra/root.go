package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/fastapi-infra/fastapi-infra/deploy"
)

// globals are the flags every verb takes, before or after it.
type globals struct {
	dir, backend string
	// yes answers the question before a change (up, destroy, refresh,
	// restore); never a production destroy's, which wants the name.
	yes bool
}

// options are the deploy options of a verb on stack.
func (g *globals) options(stack string) (deploy.Options, error) {
	dir, err := filepath.Abs(g.dir)
	return deploy.Options{ProjectDir: dir, Stack: stack, Backend: g.backend, Progress: os.Stderr}, err
}

// usageError is a command line the driver cannot read: exit status 2.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

// verbs are the driver's commands, in the order its help lists them.
var verbs = []func(*globals, *terminal) *cobra.Command{
	previewCommand, upCommand, refreshCommand, destroyCommand,
	outputsCommand, historyCommand, logsCommand,
	rollbackCommand, backupCommand, restoreCommand, maintenanceCommand, execCommand,
}

func newRoot(term *terminal) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "fastapi-infra VERB STACK [flags]",
		Short: "deploy and operate a stack of fastapi-infra",
		Long: `Runs VERB on STACK (dev, prod, or any Pulumi.<stack>.yaml) with the program in
this process. Changes show the preview and ask first, as pulumi does; --yes
skips the question (CI). Ctrl-C lets the engine finish the step it is in and
release the stack; a second Ctrl-C stops it at once.
Backend: --backend, else $PULUMI_BACKEND_URL, else the one you are logged
into, else a local file backend in ~/.fastapi-infra.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(*cobra.Command, []string) error {
			return usageError{fmt.Errorf("name a verb and a stack, e.g. fastapi-infra up dev (see fastapi-infra --help)")}
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	cobra.EnableCommandSorting = false // the help lists the verbs as verbs does
	root.PersistentFlags().StringVar(&g.dir, "dir", ".", "the project folder (Pulumi.yaml)")
	root.PersistentFlags().StringVar(&g.backend, "backend", "", "backend URL, e.g. file://~/state, s3://bucket, https://api.pulumi.com")
	root.PersistentFlags().BoolVar(&g.yes, "yes", false, "go ahead without asking (CI); a production destroy still asks for the stack's name")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see fastapi-infra %s --help)", err, c.Name())}
	})
	for _, verb := range verbs {
		root.AddCommand(verb(g, term))
	}
	return root
}

// stackVerb is a verb on one stack, `fastapi-infra VERB STACK`: run gets
// the stack's deploy options.
func stackVerb(g *globals, name, short, long string, run func(ctx context.Context, o deploy.Options) error) *cobra.Command {
	return &cobra.Command{
		Use:   name + " STACK",
		Short: short,
		Long:  long,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("%s takes one stack, e.g. fastapi-infra %s dev; got %q", name, name, args)}
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			o, err := g.options(args[0])
			if err != nil {
				return err
			}
			return run(context.Background(), o)
		},
	}
}
