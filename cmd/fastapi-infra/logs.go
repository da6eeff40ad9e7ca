package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/fastapi-infra/fastapi-infra/deploy"
	"github.com/fastapi-infra/fastapi-infra/internal/dockerapi"
	"github.com/fastapi-infra/fastapi-infra/stacks"
)

func logsCommand(g *globals, _ *terminal) *cobra.Command {
	var (
		since         time.Duration
		grep, service string
	)
	c := stackVerb(g, "logs", "a single server's containers' lines in one time-ordered stream",
		`Prints the lines of a single server's containers (replicas, proxy, database,
...) in one stream in time order, from the engine.`,
		func(ctx context.Context, o deploy.Options) error {
			t, err := deploy.Prepare(ctx, o, deploy.Needs{})
			if err != nil {
				return err
			}
			if t.Arch == stacks.Kubernetes {
				return fmt.Errorf("logs %s: a Kubernetes stack's logs are its pods': kubectl logs -n <kubernetes.namespace> -l app.kubernetes.io/name=<app.name> --prefix --timestamps --since=10m (./infra logs reads a single server's engine only, for now)", o.Stack)
			}
			socket, err := deploy.DockerSocket(t.Config)
			if err != nil {
				return err
			}
			filter := deploy.LogFilter{Grep: grep, Service: service}
			if since > 0 {
				filter.Since = time.Now().Add(-since)
			}
			lines, err := deploy.StackLogs(ctx, dockerapi.NewClient(socket), deploy.DockerNamePrefix(t.Config, o.Stack), filter)
			if err != nil {
				return fmt.Errorf("logs %s: %w", o.Stack, err)
			}
			for _, l := range lines {
				fmt.Println(l)
			}
			return nil
		})
	c.Flags().DurationVar(&since, "since", 0, "only lines of the last duration, e.g. 10m (0: every line the engine keeps)")
	c.Flags().StringVar(&grep, "grep", "", "only lines that contain this text")
	c.Flags().StringVar(&service, "service", "", "only this service's containers: app, proxy, db, backup, migrate, ...")
	return c
}
