// Package devstack opens the dev stack as ./infra up dev does, for the
// benchmarks that measure it (lab/singlebench, lab/pitrbench): the
// driver's workspace (deploy.Open, the program in this process) with the
// real Pulumi engine and the real docker provider plugin (installed from
// $FASTAPI_INFRA_DOCKER_PLUGIN when it is not), in a folder of its own
// with the project's Pulumi.yaml and Pulumi.dev.yaml and the run's
// overrides. Not in package lab: deploy imports the components, whose
// real-engine tests import lab.
package devstack

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/fastapi-infra/fastapi-infra/deploy"
	"github.com/fastapi-infra/fastapi-infra/stacks"
	"github.com/fastapi-infra/fastapi-infra/toolchain"
)

// Open copies the project's stack files from repo into dir, opens the dev
// stack there with a file backend in dir and passphrase as its secrets'
// passphrase, and sets settings (fastapi-infra keys by path) and secrets.
func Open(ctx context.Context, repo, dir, passphrase string, settings, secrets map[string]string) (auto.Stack, error) {
	for _, f := range []string{"Pulumi.yaml", "Pulumi.dev.yaml"} {
		raw, err := os.ReadFile(filepath.Join(repo, f))
		if err != nil {
			return auto.Stack{}, err
		}
		if err := os.WriteFile(filepath.Join(dir, f), raw, 0o644); err != nil {
			return auto.Stack{}, err
		}
	}
	cache, err := toolchain.CacheDir()
	if err != nil {
		return auto.Stack{}, err
	}
	s, err := deploy.Open(ctx, deploy.Options{ProjectDir: dir, Stack: "dev", Backend: "file://" + dir,
		// The Pulumi home the real-engine tests share (dockerstack.Pulumi).
		PulumiHome: filepath.Join(cache, "pulumi-home-docker"),
		Env:        map[string]string{"PULUMI_CONFIG_PASSPHRASE": passphrase}, Progress: os.Stderr})
	if err != nil {
		return auto.Stack{}, err
	}
	if err := deploy.EnsurePlugin(ctx, s.Workspace(), stacks.SingleServer, os.Stderr); err != nil {
		return auto.Stack{}, err
	}
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		if err := s.SetConfigWithOptions(ctx, "fastapi-infra:"+k, auto.ConfigValue{Value: settings[k]}, &auto.ConfigOptions{Path: true}); err != nil {
			return auto.Stack{}, err
		}
	}
	for _, k := range slices.Sorted(maps.Keys(secrets)) {
		if err := s.SetConfig(ctx, "fastapi-infra:"+k, auto.ConfigValue{Value: secrets[k], Secret: true}); err != nil {
			return auto.Stack{}, err
		}
	}
	return s, nil
}
