package main

import (
	"context"
	"encoding/json"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/spf13/cobra"

	"github.com/fastapi-infra/fastapi-infra/deploy"
)

func outputsCommand(g *globals, _ *terminal) *cobra.Command {
	var showSecrets bool
	c := stackVerb(g, "outputs", "print the stack's outputs as JSON",
		`Prints the stack's outputs as JSON, secret ones as "[secret]" unless
--show-secrets.`,
		func(ctx context.Context, o deploy.Options) error {
			s, err := deploy.Open(ctx, o)
			if err != nil {
				return err
			}
			outs, err := s.Outputs(ctx)
			if err != nil {
				return err
			}
			return printOutputMap(outs, showSecrets)
		})
	c.Flags().BoolVar(&showSecrets, "show-secrets", false, "print secret values")
	return c
}

// printOutputMap prints the outputs as JSON, secret ones as "[secret]"
// unless showSecrets.
func printOutputMap(outs auto.OutputMap, showSecrets bool) error {
	plain := map[string]any{}
	for k, v := range outs {
		if v.Secret && !showSecrets {
			plain[k] = "[secret]"
			continue
		}
		plain[k] = v.Value
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(plain)
}
