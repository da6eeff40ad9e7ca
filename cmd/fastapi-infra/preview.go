package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/fastapi-infra/fastapi-infra/deploy"
)

func previewCommand(g *globals, term *terminal) *cobra.Command {
	var f engineFlags
	c := stackVerb(g, "preview", "show what up would change",
		`Shows what up would change, as pulumi preview does, after the same checks
(config, plugin, a PostgreSQL major upgrade refused). Changes nothing.`,
		func(ctx context.Context, o deploy.Options) error { return engineVerb(ctx, g, term, o, "preview", f) })
	f.add(c)
	return c
}
