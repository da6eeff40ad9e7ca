package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/fastapi-infra/fastapi-infra/deploy"
	"github.com/fastapi-infra/fastapi-infra/stacks"
)

// exitCode is a command's own exit status, which the driver exits with.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("the command exited with code %d", int(e)) }

func execCommand(g *globals, _ *terminal) *cobra.Command {
	return &cobra.Command{
		Use:   "exec STACK -- COMMAND [ARG...]",
		Short: "run a one-off command with the current release's environment",
		Long: `Runs COMMAND once with the current release's image, user, environment,
secret files (DATABASE_URL_FILE, ...), network, limits and hardening, but no
health check, no route from the proxy or Service and no restart. Its output
streams here, it is removed after, and the driver exits with its exit code:
a management script, a migration check, a query. A single server runs it in
a one-off container; Kubernetes in a Job's pod made from the Deployment's
template, under the migration's NetworkPolicy (database and DNS only).
Ctrl-C removes it.
  fastapi-infra exec dev -- python3 -m app.manage --dry-run`,
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
				code, err = svc.Exec(ctx, args[1:], os.Stdout, removeOnInterrupt(svc.RemoveJob))
				if err != nil {
					return err
				}
			} else {
				server, err := singleServerOf(t)
				if err != nil {
					return err
				}
				code, err = server.Exec(ctx, args[1:], os.Stdout, removeOnInterrupt(server.Remove))
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
}
