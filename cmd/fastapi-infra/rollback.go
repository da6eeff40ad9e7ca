package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/fastapi-infra/fastapi-infra/deploy"
)

func rollbackCommand(g *globals, term *terminal) *cobra.Command {
	var to string
	c := stackVerb(g, "rollback", "go back to an earlier release from the stack's history",
		`Goes back to an earlier release: the app.image and app.env an earlier
successful update deployed (--to N, the number ./infra history shows; by
default the newest release that differs from the running one). It writes
them into Pulumi.<stack>.yaml (commit that, or the next deploy from git goes
forward again) and runs up: a normal zero-downtime release, with the
preview and the question (--yes skips it); the database is not touched and
secrets stay as they are. When the older release cannot run on today's
schema its migration fails, nothing of it starts, the running release
serves on, and the stack file is put back. An unknown --to lists what it can
go back to.`,
		func(ctx context.Context, o deploy.Options) error {
			number := 0
			if to != "" {
				n, err := deploy.ParseUpdate(to)
				if err != nil {
					return usageError{err}
				}
				number = n
			}
			if err := term.canAsk(g, "rollback changes", o.Stack); err != nil {
				return err
			}
			t, err := deploy.Prepare(ctx, o, deploy.Needs{StackFile: true})
			if err != nil {
				return err
			}
			updates, err := t.Stack.History(ctx, 0, 0)
			if err != nil {
				return err
			}
			target, err := deploy.RollbackTo(deploy.Releases(updates), number)
			if err != nil {
				return fmt.Errorf("rollback %s: %w", o.Stack, err)
			}
			was := deploy.CurrentRelease(t.Config)
			fmt.Fprintf(os.Stderr, "rollback: stack %s goes back to the release of update %s\n", o.Stack, target)
			if err := deploy.SetRelease(ctx, t.Stack, was, target); err != nil {
				return fmt.Errorf("rollback %s: writing the release into the stack's config: %w", o.Stack, err)
			}
			err = engineVerb(ctx, g, term, o, "up", engineFlags{})
			if err == nil {
				fmt.Fprintf(os.Stderr, "rollback: stack %s runs app.image=%s; Pulumi.%s.yaml says so (commit it)\n", o.Stack, target.Image, o.Stack)
				return nil
			}
			if putBack := deploy.SetRelease(ctx, t.Stack, target, was); putBack != nil {
				return fmt.Errorf("%w\nrollback: putting app.image=%s back into the stack's config failed too: %v", err, was.Image, putBack)
			}
			return fmt.Errorf("%w\nrollback: the stack's config is back to app.image=%s, the release that serves", err, was.Image)
		})
	c.Flags().StringVar(&to, "to", "", "the update whose release to go back to (./infra history's number)")
	return c
}
