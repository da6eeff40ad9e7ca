package deploy

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/fastapi-infra/fastapi-infra/stacks"
)

// ReadConfig is the stack's config as the CLI resolves it (one `pulumi
// config` process), for EnsurePlugin and Preflight to share.
func ReadConfig(ctx context.Context, s auto.Stack) (auto.ConfigMap, error) {
	cfg, err := s.GetAllConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the config of stack %s: %w", s.Name(), err)
	}
	return cfg, nil
}

// Preflight checks the stack's config (from ReadConfig) before the engine
// runs: unknown keys (the program cannot see them through the Automation
// API), and the required database password. For a development stack a
// missing password is generated and stored encrypted, so the dev stack
// needs no set-up; any other stack gets the command that sets it.
func Preflight(ctx context.Context, s auto.Stack, cfg auto.ConfigMap, out io.Writer) error {
	values := map[string]string{}
	for k, v := range cfg {
		values[k] = v.Value
	}
	if err := stacks.CheckKnownKeys(values); err != nil {
		return fmt.Errorf("stack %s: %w", s.Name(), err)
	}
	key := stacks.FullKey("dbPassword")
	if v, ok := cfg[key]; ok && v.Value != "" {
		return nil
	}
	env := cfg[stacks.FullKey("environment")].Value
	if env != "" && env != "development" {
		return fmt.Errorf("%s: is required and not set; run: pulumi config set --secret dbPassword <value> --stack %s\nNothing was changed.", key, s.Name())
	}
	buf := make([]byte, 24)
	if _, err := rand.Read(buf); err != nil {
		return err
	}
	if err := s.SetConfig(ctx, key, auto.ConfigValue{Value: base64.RawURLEncoding.EncodeToString(buf), Secret: true}); err != nil {
		return err
	}
	fmt.Fprintf(out, "fastapi-infra: generated a random %s for the development stack %s, stored encrypted in Pulumi.%s.yaml\n", key, s.Name(), s.Name())
	return nil
}

// Architecture is the stack's architecture, with the project default.
func Architecture(cfg auto.ConfigMap) stacks.Architecture {
	if v := cfg[stacks.FullKey("architecture")].Value; v != "" {
		return stacks.Architecture(v)
	}
	return stacks.SingleServer
}
