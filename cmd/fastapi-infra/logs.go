package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/fastapi-infra/fastapi-infra/deploy"
)

func logsCommand(g *globals, _ *terminal) *cobra.Command {
	var (
		since         time.Duration
		grep, service string
		follow        bool
	)
	c := stackVerb(g, "logs", "a single server's containers' lines in one time-ordered stream",
		`Prints the lines of a single server's containers (replicas, proxy, database,
...) in one stream in time order, from the engine.`,
		func(ctx context.Context, o deploy.Options) error {
			server, err := singleServer(ctx, o, fmt.Sprintf("logs %s: a Kubernetes stack's logs are its pods': kubectl logs -n <kubernetes.namespace> -l app.kubernetes.io/name=<app.name> --prefix --timestamps --since=10m (./infra logs reads a single server's engine only, for now)", o.Stack))
			if err != nil {
				return err
			}
			filter := deploy.LogFilter{Grep: grep, Service: service}
			if since > 0 {
				filter.Since = time.Now().Add(-since)
			}
			// With --follow, every second the lines since the newest one
			// printed, from every container of the stack then (a release's
			// new replicas too), until Ctrl-C.
			for {
				lines, err := deploy.StackLogs(ctx, server.Engine, server.Prefix, filter)
				if err != nil {
					return fmt.Errorf("logs %s: %w", o.Stack, err)
				}
				for _, l := range lines {
					fmt.Println(l)
					if l.Time.After(filter.Since) {
						filter.Since = l.Time
					}
				}
				if !follow {
					return nil
				}
				if filter.Since.IsZero() {
					filter.Since = time.Now()
				}
				filter.Since = filter.Since.Add(time.Nanosecond)
				time.Sleep(time.Second)
			}
		})
	c.Flags().DurationVar(&since, "since", 0, "only lines of the last duration, e.g. 10m (0: every line the engine keeps)")
	c.Flags().StringVar(&grep, "grep", "", "only lines that contain this text")
	c.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines as they come, until Ctrl-C")
	c.Flags().StringVar(&service, "service", "", "only this service's containers: app, proxy, db, backup, migrate, ...")
	return c
}
