package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/fastapi-infra/fastapi-infra/deploy"
)

func refreshCommand(g *globals, term *terminal) *cobra.Command {
	return stackVerb(g, "refresh", "read the real resources back into the state",
		`Reads every resource of the stack back from its engine into the state, after
its preview and a question (--yes skips it).`,
		func(ctx context.Context, o deploy.Options) error {
			return engineVerb(ctx, g, term, o, "refresh", engineFlags{})
		})
}
