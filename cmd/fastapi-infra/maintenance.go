package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/fastapi-infra/fastapi-infra/deploy"
	"github.com/fastapi-infra/fastapi-infra/stacks"
)

func maintenanceCommand(g *globals, _ *terminal) *cobra.Command {
	var message string
	c := &cobra.Command{
		Use:   "maintenance on|off STACK",
		Short: "put the proxy's maintenance page up, or take it down",
		Long: `Puts the proxy's maintenance page up (on) or takes it down (off). While it is
up the proxy answers every request with 503, Retry-After and a small page
(JSON for clients that accept it), whether the replicas run or not; its own
health check stays green. A restore puts it up by itself. A single server:
behind nginx the proxy serves the page (an up that replaces the proxy takes
it down); behind Traefik a small container of the stack's serves it, which
Traefik routes to ahead of the replicas once it is healthy (on waits for
that, about 3 s; off waits until Traefik has let go of it). Kubernetes: a
pod of the app's image serves it through an Ingress for the same host that
the controller prefers (Traefik: router priority; ingress-nginx: a canary
of weight 100); off removes that Ingress first.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 2 || args[0] != "on" && args[0] != "off" {
				return usageError{fmt.Errorf("maintenance takes on or off and a stack, e.g. fastapi-infra maintenance on dev --message 'back at 10:00'; got %q", args)}
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			ctx := context.Background()
			o, err := g.options(args[1])
			if err != nil {
				return err
			}
			on := args[0] == "on"
			if !on && message != "" {
				return usageError{fmt.Errorf("--message goes with maintenance on")}
			}
			t, err := deploy.Prepare(ctx, o, deploy.Needs{})
			if err != nil {
				return err
			}
			var server interface {
				Maintenance(ctx context.Context, on bool, message string) error
			}
			if t.Arch == stacks.Kubernetes {
				server, err = runningService(t.Config)
			} else {
				server, err = singleServerOf(t)
			}
			if err != nil {
				return err
			}
			if err := server.Maintenance(ctx, on, message); err != nil {
				return fmt.Errorf("maintenance %s %s: %w", args[0], o.Stack, err)
			}
			fmt.Fprintf(os.Stderr, "maintenance: %s for stack %s\n", args[0], o.Stack)
			return nil
		},
	}
	c.Flags().StringVar(&message, "message", "", "the page's text (default: down for maintenance, back shortly)")
	return c
}
