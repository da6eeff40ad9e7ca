package deploy

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/fastapi-infra/fastapi-infra/internal/pluginhome"
	"github.com/fastapi-infra/fastapi-infra/stacks"
	"github.com/fastapi-infra/fastapi-infra/toolchain"
)

// EnsurePlugin makes sure the provider plugin of the architecture
// (Architecture or StackFileArchitecture) is installed in the workspace's
// Pulumi home, before the engine would look for it. kubernetes: when
// missing it is downloaded as the CLI does (CI, any machine online), else
// the toolchain's build (that commit of provider/v4, stamped 4.25.0) is
// installed, its build announced on progress. docker: it
// cannot be built here; when it is missing it is installed from the file
// that $FASTAPI_INFRA_DOCKER_PLUGIN names, else downloaded as the CLI
// does, and when neither works this stops with the command that installs
// it.
func EnsurePlugin(ctx context.Context, ws auto.Workspace, arch stacks.Architecture, progress io.Writer) error {
	name, version := "docker", toolchain.PulumiDockerVersion
	if arch == stacks.Kubernetes {
		name, version = "kubernetes", toolchain.PulumiKubernetesVersion
	}
	installed, err := pluginhome.Has(pluginDir(ws), name, version)
	if err != nil || installed {
		return err
	}
	if name == "kubernetes" {
		if download(ctx, ws, name, version) == nil {
			return nil
		}
		tools, err := toolchain.Builder{Progress: progress}.Ensure(ctx, "kubernetes-plugin")
		if err != nil {
			return err
		}
		return pluginhome.InstallResource(ctx, ws.PulumiCommand(), ws.WorkDir(), envList(ws), name, version, tools["kubernetes-plugin"])
	}
	if file, ok, err := toolchain.PluginFile(toolchain.DockerPluginEnv); err != nil {
		return fmt.Errorf("the docker provider plugin: %w\nNothing was changed.", err)
	} else if ok {
		if progress != nil {
			fmt.Fprintf(progress, "fastapi-infra: installing the docker provider plugin v%s from %s ($%s) into %s\n", version, file, toolchain.DockerPluginEnv, pluginDir(ws))
		}
		if err := pluginhome.InstallResource(ctx, ws.PulumiCommand(), ws.WorkDir(), envList(ws), name, version, file); err != nil {
			return fmt.Errorf("installing the docker provider plugin from $%s: %w\nNothing was changed.", toolchain.DockerPluginEnv, err)
		}
		return nil
	}
	if download(ctx, ws, name, version) == nil {
		return nil
	}
	return fmt.Errorf(`the %s architecture needs the Pulumi docker provider plugin v%s, which is not installed in %s and cannot be downloaded here.
Nothing was changed. Install it from the release tarball or a binary built elsewhere, then run this again:
    %s
or name that file in $%s and run this again.`,
		arch, version, pluginDir(ws), toolchain.DockerPluginInstall(), toolchain.DockerPluginEnv)
}

// download tries the ordinary download of a plugin once, briefly: offline
// it fails at once.
func download(ctx context.Context, ws auto.Workspace, name, version string) error {
	dl, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	return ws.InstallPlugin(dl, name, "v"+version)
}

func envList(ws auto.Workspace) []string {
	var env []string
	for k, v := range ws.GetEnvVars() {
		env = append(env, k+"="+v)
	}
	if home := ws.PulumiHome(); home != "" {
		env = append(env, "PULUMI_HOME="+home)
	}
	return env
}

// pluginDir is where the CLI the workspace starts looks for plugins: its
// Pulumi home (the workspace's option, else PULUMI_HOME in the workspace's
// environment or this process's), else ~/.pulumi.
func pluginDir(ws auto.Workspace) string {
	if home := ws.PulumiHome(); home != "" {
		return filepath.Join(home, "plugins")
	}
	if home := ws.GetEnvVars()["PULUMI_HOME"]; home != "" {
		return filepath.Join(home, "plugins")
	}
	if home := os.Getenv("PULUMI_HOME"); home != "" {
		return filepath.Join(home, "plugins")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".pulumi", "plugins")
}
