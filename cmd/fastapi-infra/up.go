package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/fastapi-infra/fastapi-infra/deploy"
)

func upCommand(g *globals, term *terminal) *cobra.Command {
	var f engineFlags
	c := stackVerb(g, "up", "deploy the stack (shows the preview and asks first)",
		`Deploys the stack: the preview, a question (--yes skips it), then the update;
it prints the stack's outputs. A second up of the same stack at once is
refused, naming who holds the lock. A migration that failed on the last up
runs again; a PostgreSQL major upgrade through db.image is refused. A single
server's failed health check says why: its probes and last log lines.`,
		func(ctx context.Context, o deploy.Options) error { return engineVerb(ctx, g, term, o, "up", f) })
	f.add(c)
	return c
}
