package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	k8sops "github.com/fastapi-infra/fastapi-infra/components/kubernetes/operations"
	"github.com/fastapi-infra/fastapi-infra/components/singleserver/operations"
	"github.com/fastapi-infra/fastapi-infra/deploy"
	"github.com/fastapi-infra/fastapi-infra/stacks"
)

// exitCode is a command's own exit status, which the driver exits with.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("the command exited with code %d", int(e)) }

func execCommand(g *globals, _ *terminal) *cobra.Command {
	var interactive, tty bool
	c := &cobra.Command{
		Use:   "exec [-i] [-t] STACK -- COMMAND [ARG...]",
		Short: "run a one-off command with the current release's environment",
		Long: `Runs COMMAND once with the current release's image, user, environment,
secret files (DATABASE_URL_FILE, ...), network, limits and hardening, but no
health check, no route from the proxy or Service and no restart. Its output
streams here, it is removed after, and the driver exits with its exit code:
a management script, a migration check, a query. A single server runs it in
a one-off container; Kubernetes in a Job's pod made from the Deployment's
template, under the migration's NetworkPolicy (database and DNS only).
Ctrl-C removes it. -i passes this terminal's input (or a pipe's) to the
command and -t gives it a terminal, as docker exec -it does: a shell, a
REPL with the app's settings (Kubernetes: the pod is attached once it
runs, as kubectl run -it does).
  fastapi-infra exec dev -- python3 -m app.manage --dry-run
  fastapi-infra exec -it dev -- python3`,
		Args: func(c *cobra.Command, args []string) error {
			if c.ArgsLenAtDash() != 1 || len(args) < 2 {
				return usageError{fmt.Errorf("exec takes a stack, then -- and the command, e.g. fastapi-infra exec dev -- python3 -c 'print(1)'; got %q", args)}
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			ctx := context.Background()
			o, err := g.options(args[0])
			if err != nil {
				return err
			}
			if tty && !term.IsTerminal(int(os.Stdin.Fd())) {
				return usageError{fmt.Errorf("exec -t: the input is not a terminal; without -t, -i passes a pipe's input")}
			}
			t, err := deploy.Prepare(ctx, o, deploy.Needs{})
			if err != nil {
				return err
			}
			// Ctrl-C removes what runs the command (named once it exists).
			removeOnInterrupt := func(remove func(context.Context, string) error) func(string) {
				return func(name string) {
					onInterrupt(func() {
						rm, cancel := context.WithTimeout(context.Background(), 30*time.Second)
						defer cancel()
						_ = remove(rm, name)
					})
				}
			}
			defer onInterrupt(nil)
			var code int
			if t.Arch == stacks.Kubernetes {
				svc, err := runningService(t.Config)
				if err != nil {
					return err
				}
				streams, restore, err := execStreams(interactive, tty)
				if err != nil {
					return err
				}
				defer restore()
				code, err = svc.ExecWith(ctx, args[1:], k8sops.Streams(streams), removeOnInterrupt(svc.RemoveJob))
				if err != nil {
					return err
				}
			} else {
				server, err := singleServerOf(t)
				if err != nil {
					return err
				}
				streams, restore, err := execStreams(interactive, tty)
				if err != nil {
					return err
				}
				defer restore()
				code, err = server.ExecWith(ctx, args[1:], streams, removeOnInterrupt(server.Remove))
				if err != nil {
					return err
				}
			}
			if code != 0 {
				return exitCode(code)
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&interactive, "interactive", "i", false, "pass this terminal's (or a pipe's) input to the command")
	c.Flags().BoolVarP(&tty, "tty", "t", false, "give the command a terminal (with -i for a shell)")
	return c
}

// execStreams are exec's streams: this process's output, its input with
// -i, and with -t its terminal, raw until restore (every key passes on,
// Ctrl-C too, to the command, as docker exec -it's terminal does).
func execStreams(interactive, tty bool) (operations.Streams, func(), error) {
	streams := operations.Streams{Out: os.Stdout, TTY: tty}
	if interactive {
		streams.In = os.Stdin
	}
	if !tty {
		return streams, func() {}, nil
	}
	state, err := term.MakeRaw(int(os.Stdin.Fd()))
	if err != nil {
		return streams, func() {}, err
	}
	streams.Size = func() (int, int) {
		w, h, _ := term.GetSize(int(os.Stdout.Fd()))
		return h, w
	}
	return streams, func() { _ = term.Restore(int(os.Stdin.Fd()), state) }, nil
}
