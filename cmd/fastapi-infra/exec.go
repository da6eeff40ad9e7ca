package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// exitCode is a command's own exit status, which the driver exits with.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("the command exited with code %d", int(e)) }

func execCommand(g *globals, _ *terminal) *cobra.Command {
	return &cobra.Command{
		Use:   "exec STACK -- COMMAND [ARG...]",
		Short: "run a one-off command with the current release's environment",
		Long: `Runs COMMAND in a one-off container of the current release: the image, user,
environment, secret files (DATABASE_URL_FILE, ...), network, limits and
hardening of a running replica, but no health check, no route from the proxy
and no restart. Its output streams here, it is removed after, and the driver
exits with its exit code: a management script, a migration check, a query.
A single server; Ctrl-C removes the container.
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
			server, err := singleServer(ctx, o, fmt.Sprintf("exec %s: a Kubernetes stack's one-off command is not here yet: kubectl -n <kubernetes.namespace> exec deploy/<app.name> -- %s", o.Stack, strings.Join(args[1:], " ")))
			if err != nil {
				return err
			}
			defer onInterrupt(nil)
			code, err := server.Exec(ctx, args[1:], os.Stdout, func(name string) {
				onInterrupt(func() {
					rm, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					_ = server.Remove(rm, name)
				})
			})
			if err != nil {
				return err
			}
			if code != 0 {
				return exitCode(code)
			}
			return nil
		},
	}
}
