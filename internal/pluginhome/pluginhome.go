// Package pluginhome reads and fills a Pulumi home's plugin folder: the
// driver's (deploy.EnsurePlugin) and the real-engine tests' shared home
// (lab/dockerstack) do it the same way.
package pluginhome

import (
	"context"
	"fmt"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
)

// Has reads the plugin folder dir with the SDK's own reader (what `pulumi
// plugin ls` prints, partial installs left out) instead of starting a CLI
// process for it: every `up` asks. A folder that does not exist has none.
func Has(dir, name, version string) (bool, error) {
	want, err := semver.ParseTolerant(version)
	if err != nil {
		return false, err
	}
	plugins, err := workspace.GetPluginsFromDir(dir)
	if err != nil {
		return false, fmt.Errorf("listing plugins in %s: %w", dir, err)
	}
	for _, p := range plugins {
		if p.Name == name && string(p.Kind) == "resource" && p.Version != nil && p.Version.Equals(want) {
			return true, nil
		}
	}
	return false, nil
}

// InstallResource installs the resource plugin name at version from file
// (a release tarball or the binary) with cli, whose environment env names
// the Pulumi home (PULUMI_HOME).
func InstallResource(ctx context.Context, cli auto.PulumiCommand, workdir string, env []string, name, version, file string) error {
	args := []string{"plugin", "install", "resource", name, "v" + version, "--file", file}
	stdout, stderr, _, err := cli.Run(ctx, workdir, nil, nil, nil, env, args...)
	if err != nil {
		return fmt.Errorf("pulumi %v: %w\n%s%s", args, err, stdout, stderr)
	}
	return nil
}
