package deploy

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

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

// Preflight checks the stack's config (ReadConfig, or SelectAndRead in the
// driver) before the engine runs: unknown keys (the program cannot see them through the Automation
// API), secrets stored in plain text down to each field (only the stack
// file shows those), and the required database password. It generates
// what a person should never have to choose: a single server's rolloutKey,
// and a development stack's database password, each random and stored
// encrypted, so the dev stack needs no set-up; any other stack gets the
// command that sets its password.
func Preflight(ctx context.Context, s auto.Stack, cfg auto.ConfigMap, out io.Writer) error {
	values := map[string]string{}
	for k, v := range cfg {
		values[k] = v.Value
	}
	if err := stacks.CheckKnownKeys(values); err != nil {
		return fmt.Errorf("stack %s: %w", s.Name(), err)
	}
	stackFile := filepath.Join(s.Workspace().WorkDir(), "Pulumi."+s.Name()+".yaml")
	if raw, err := os.ReadFile(stackFile); err == nil {
		if err := stacks.CheckStackFileSecrets(raw); err != nil {
			return fmt.Errorf("stack %s: %w\nNothing was changed.", s.Name(), err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	password := stacks.FullKey("dbPassword")
	if v := cfg[password]; v.Value == "" {
		if env := cfg[stacks.FullKey("environment")].Value; env != "" && env != "development" {
			return fmt.Errorf("%s: is required and not set; run: pulumi config set --secret dbPassword <value> --stack %s\nNothing was changed.", password, s.Name())
		}
		if err := generate(ctx, s, password, 24, out, "the development stack"); err != nil {
			return err
		}
	}
	if key := stacks.FullKey("rolloutKey"); Architecture(cfg) == stacks.SingleServer && cfg[key].Value == "" {
		return generate(ctx, s, key, 32, out, "the single-server stack")
	}
	return nil
}

// generate stores a random value of n bytes as the encrypted config key.
// The value goes to `pulumi config set` on its stdin: the Automation API's
// SetConfig puts it on the command line, where any user of the machine
// reads it (ps, /proc/PID/cmdline) while the CLI runs.
func generate(ctx context.Context, s auto.Stack, key string, n int, out io.Writer, what string) error {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		return err
	}
	ws := s.Workspace()
	_, stderr, _, err := ws.PulumiCommand().Run(ctx, ws.WorkDir(), strings.NewReader(base64.RawURLEncoding.EncodeToString(buf)), nil, nil,
		envList(ws), "config", "set", "--secret", key, "--stack", s.Name(), "--non-interactive")
	if err != nil {
		return fmt.Errorf("storing the generated %s: %w\n%s", key, err, stderr)
	}
	fmt.Fprintf(out, "fastapi-infra: generated a random %s for %s %s, stored encrypted in Pulumi.%s.yaml\n", key, what, s.Name(), s.Name())
	return nil
}

// Architecture is the stack's architecture, with the project default.
func Architecture(cfg auto.ConfigMap) stacks.Architecture {
	if v := cfg[stacks.FullKey("architecture")].Value; v != "" {
		return stacks.Architecture(v)
	}
	return stacks.SingleServer
}

// StackFileArchitecture is the architecture Pulumi.<stack>.yaml in
// projectDir names, read without the CLI (before the stack exists);
// exists is false without the file.
func StackFileArchitecture(projectDir, stack string) (arch stacks.Architecture, exists bool, err error) {
	raw, err := os.ReadFile(filepath.Join(projectDir, "Pulumi."+stack+".yaml"))
	if errors.Is(err, os.ErrNotExist) {
		return stacks.SingleServer, false, nil
	}
	if err != nil {
		return "", false, err
	}
	arch, err = stacks.StackFileArchitecture(raw)
	return arch, true, err
}
