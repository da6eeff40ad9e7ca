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

func logsCommand(g *globals, _ *terminal) *cobra.Command {
	var (
		since         time.Duration
		grep, service string
		follow        bool
	)
	c := stackVerb(g, "logs", "the stack's lines in one time-ordered stream",
		`Prints the lines of the stack's containers in one stream in time order: a
single server's (replicas, proxy, database, ...) from its log store when
logging.aggregate is on (it keeps the lines of replicas a release replaced
and of removed containers), else from its engine; a Kubernetes stack's
pods' (app, db, migrate, backup) from the API server. With -f, the lines
after the first read come from the engine, every second.`,
		func(ctx context.Context, o deploy.Options) error {
			t, err := deploy.Prepare(ctx, o, deploy.Needs{})
			if err != nil {
				return err
			}
			var read func(context.Context, deploy.LogFilter) ([]deploy.StackLogLine, error)
			if t.Arch == stacks.Kubernetes {
				svc, err := runningService(t.Config)
				if err != nil {
					return err
				}
				read = func(ctx context.Context, f deploy.LogFilter) ([]deploy.StackLogLine, error) {
					return deploy.KubernetesLogs(ctx, svc, f)
				}
			} else {
				server, err := singleServerOf(t)
				if err != nil {
					return err
				}
				// The first read from the log store when the stack
				// has one (it keeps the lines of replaced replicas
				// too); -f's later ones from the engine, every second.
				first := true
				read = func(ctx context.Context, f deploy.LogFilter) ([]deploy.StackLogLine, error) {
					if first {
						first = false
						lines, stored, err := deploy.StoredLogs(ctx, server.Engine, server.Prefix, f)
						if stored {
							fmt.Fprintf(os.Stderr, "logs: from the log store %s-logs\n", server.Prefix)
							return lines, err
						}
					}
					return deploy.StackLogs(ctx, server.Engine, server.Prefix, f)
				}
			}
			filter := deploy.LogFilter{Grep: grep, Service: service}
			if since > 0 {
				filter.Since = time.Now().Add(-since)
			}
			// With --follow, every second the lines since the newest one
			// printed, from every container or pod of the stack then (a
			// release's new replicas too), until Ctrl-C.
			for {
				lines, err := read(ctx, filter)
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
	c.Flags().StringVar(&service, "service", "", "only this service's containers or pods: app, proxy, db, backup, migrate, ...")
	return c
}
