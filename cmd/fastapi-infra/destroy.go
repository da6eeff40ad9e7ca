package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/fastapi-infra/fastapi-infra/deploy"
)

func destroyCommand(g *globals, term *terminal) *cobra.Command {
	return stackVerb(g, "destroy", "remove the stack's resources (its data volumes stay)",
		`Removes the stack's resources after their preview and a question (--yes skips
it). The database's volumes are retained; in production they are protected,
and destroy asks for the stack's name even with --yes
(echo prod | fastapi-infra destroy prod --yes).`,
		func(ctx context.Context, o deploy.Options) error {
			return engineVerb(ctx, g, term, o, "destroy", engineFlags{})
		})
}
