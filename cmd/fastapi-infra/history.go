package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fastapi-infra/fastapi-infra/deploy"
)

func historyCommand(g *globals, _ *terminal) *cobra.Command {
	return stackVerb(g, "history", "one line per update of the stack: the audit log",
		`Prints one line per update of the stack, newest first: when, kind, result,
duration, who (user@host, or the GitHub actor and run), the release
(app.image), the config keys changed (never a secret: a rotation shows in
the resource changes) and the resource changes.`,
		func(ctx context.Context, o deploy.Options) error {
			s, err := deploy.Existing(ctx, o)
			if err != nil {
				return fmt.Errorf("history %s: %w", o.Stack, err)
			}
			updates, err := s.History(ctx, 0, 0)
			if err != nil {
				return err
			}
			for _, line := range deploy.HistoryLines(updates) {
				fmt.Println(line)
			}
			return nil
		})
}
