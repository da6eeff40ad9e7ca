//go:build e2e

package e2e

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/fastapi-infra/fastapi-infra/deploy"
	"github.com/fastapi-infra/fastapi-infra/toolchain"
)

// stackConfig is the stack's config as the driver reads it once per run.
func stackConfig(t *testing.T, s auto.Stack) auto.ConfigMap {
	t.Helper()
	cfg, err := deploy.ReadConfig(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// openBare opens a stack from a shipped stack file, on its own backend and
// Pulumi home, with no overrides: what a user's ./infra would see.
func openBare(t *testing.T, shipped string) auto.Stack {
	t.Helper()
	work, backend, home := t.TempDir(), t.TempDir(), t.TempDir()
	name := "driver-" + randomSuffix(t)
	copyFile(t, filepath.Join(env.repo, "Pulumi.yaml"), filepath.Join(work, "Pulumi.yaml"))
	copyFile(t, filepath.Join(env.repo, "Pulumi."+shipped+".yaml"), filepath.Join(work, "Pulumi."+name+".yaml"))
	s, err := deploy.Open(context.Background(), deploy.Options{
		ProjectDir: work, Stack: name, Backend: "file://" + backend, PulumiHome: home,
		Env: map[string]string{"PULUMI_CONFIG_PASSPHRASE": "driver-test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDriverStopsBeforeTouchingAnything checks the driver's preflight on
// the real CLI: an unknown key, a missing production secret, and a missing
// docker provider plugin each stop it with the fix, before any update.
func TestDriverStopsBeforeTouchingAnything(t *testing.T) {
	ctx := context.Background()

	t.Run("unknown key", func(t *testing.T) {
		s := openBare(t, "prod")
		if err := s.SetConfigWithOptions(ctx, "fastapi-infra:app.replica", auto.ConfigValue{Value: "3"}, &auto.ConfigOptions{Path: true}); err != nil {
			t.Fatal(err)
		}
		err := deploy.Preflight(ctx, s, stackConfig(t, s), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "fastapi-infra:app.replica: unknown key (did you mean app.replicas?)") {
			t.Fatalf("preflight: %v", err)
		}
	})

	t.Run("a secretEnv value in plain text beside an encrypted one", func(t *testing.T) {
		s := openBare(t, "prod")
		if err := s.SetConfigWithOptions(ctx, "fastapi-infra:secretEnv.API_KEY", auto.ConfigValue{Value: "k-1", Secret: true}, &auto.ConfigOptions{Path: true}); err != nil {
			t.Fatal(err)
		}
		// Without --secret: the CLI stores B in plain text, and the engine
		// still calls the whole of secretEnv secret.
		if err := s.SetConfigWithOptions(ctx, "fastapi-infra:secretEnv.B", auto.ConfigValue{Value: "x"}, &auto.ConfigOptions{Path: true}); err != nil {
			t.Fatal(err)
		}
		cfg := stackConfig(t, s)
		if !cfg["fastapi-infra:secretEnv"].Secret {
			t.Fatal("the CLI no longer marks the whole object secret; this test's premise changed")
		}
		err := deploy.Preflight(ctx, s, cfg, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "fastapi-infra:secretEnv.B: is stored in plain text in the stack file; store it encrypted instead: pulumi config set --secret --path 'secretEnv.B' <value>") {
			t.Fatalf("preflight: %v", err)
		}
	})

	t.Run("production without its database password", func(t *testing.T) {
		s := openBare(t, "prod")
		err := deploy.Preflight(ctx, s, stackConfig(t, s), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "run: pulumi config set --secret dbPassword <value> --stack "+s.Name()) {
			t.Fatalf("preflight: %v", err)
		}
	})

	t.Run("development gets a generated password and rollout key, stored encrypted", func(t *testing.T) {
		s := openBare(t, "dev")
		if err := deploy.Preflight(ctx, s, stackConfig(t, s), io.Discard); err != nil {
			t.Fatal(err)
		}
		raw, _ := os.ReadFile(filepath.Join(s.Workspace().WorkDir(), "Pulumi."+s.Name()+".yaml"))
		for _, key := range []string{"dbPassword", "rolloutKey"} {
			v, err := s.GetConfig(ctx, "fastapi-infra:"+key)
			if err != nil || !v.Secret || len(v.Value) < 32 {
				t.Fatalf("%s: secret %v, %d characters, %v", key, v.Secret, len(v.Value), err)
			}
			if strings.Contains(string(raw), v.Value) {
				t.Errorf("the generated %s is in the stack file in plain text", key)
			}
		}
		if strings.Count(string(raw), "secure: ") != 2 {
			t.Errorf("want two encrypted values in the stack file:\n%s", raw)
		}
	})

	t.Run("no docker provider plugin", func(t *testing.T) {
		// As on a machine that was given no plugin file.
		t.Setenv(toolchain.DockerPluginEnv, "")
		s := openBare(t, "dev")
		err := deploy.EnsurePlugin(ctx, s.Workspace(), deploy.Architecture(stackConfig(t, s)), io.Discard)
		if err == nil {
			// Where the plugin can be had, the driver must have installed it.
			plugins, perr := s.Workspace().ListPlugins(ctx)
			for _, p := range plugins {
				if p.Name == "docker" && p.Version != nil && p.Version.String() == toolchain.PulumiDockerVersion {
					return
				}
			}
			t.Fatalf("EnsurePlugin accepted, but no docker plugin v%s is installed (%v)", toolchain.PulumiDockerVersion, perr)
		}
		want := toolchain.DockerPluginInstall()
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "Nothing was changed") || !strings.Contains(err.Error(), "$"+toolchain.DockerPluginEnv) {
			t.Fatalf("EnsurePlugin: %v", err)
		}
		// Nothing was touched: the stack has no update in its history.
		hist, herr := s.History(ctx, 0, 0)
		if herr != nil || len(hist) != 0 {
			t.Errorf("history after the refusal: %d entries, %v", len(hist), herr)
		}
	})
}

// TestDockerPluginFromAFile: where the plugin server cannot be reached,
// the driver installs the docker provider plugin from the file that
// $FASTAPI_INFRA_DOCKER_PLUGIN names (./run-tests names ../shared/plugins'
// tarball), into the stack's Pulumi home, and a second call finds it there.
func TestDockerPluginFromAFile(t *testing.T) {
	ctx := context.Background()
	if _, ok, err := toolchain.PluginFile(toolchain.DockerPluginEnv); err != nil || !ok {
		t.Fatalf("$%s must name the docker provider plugin's tarball for the real-engine tests (./run-tests sets it from ../shared/plugins): %v", toolchain.DockerPluginEnv, err)
	}
	s := openBare(t, "dev")
	var progress strings.Builder
	if err := deploy.EnsurePlugin(ctx, s.Workspace(), deploy.Architecture(stackConfig(t, s)), &progress); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(progress.String(), "installing the docker provider plugin v"+toolchain.PulumiDockerVersion+" from ") {
		t.Errorf("progress: %q", progress.String())
	}
	plugins, err := s.Workspace().ListPlugins(ctx)
	found := false
	for _, p := range plugins {
		found = found || p.Name == "docker" && p.Version != nil && p.Version.String() == toolchain.PulumiDockerVersion
	}
	if err != nil || !found {
		t.Fatalf("after the install: %+v, %v", plugins, err)
	}
	progress.Reset()
	if err := deploy.EnsurePlugin(ctx, s.Workspace(), deploy.Architecture(stackConfig(t, s)), &progress); err != nil || progress.Len() != 0 {
		t.Errorf("a second EnsurePlugin: %v, %q (want nothing to do)", err, progress.String())
	}
}

// TestSelectAndReadMakesAMissingStack: the driver reads the config and the
// state beside the stack's selection; for a stack that does not exist yet
// those reads fail, the stack is created, and they run again.
func TestSelectAndReadMakesAMissingStack(t *testing.T) {
	ctx := context.Background()
	work, backend, home := t.TempDir(), t.TempDir(), t.TempDir()
	name := "driver-" + randomSuffix(t)
	copyFile(t, filepath.Join(env.repo, "Pulumi.yaml"), filepath.Join(work, "Pulumi.yaml"))
	copyFile(t, filepath.Join(env.repo, "Pulumi.prod.yaml"), filepath.Join(work, "Pulumi."+name+".yaml"))
	ws, err := deploy.Workspace(ctx, deploy.Options{
		ProjectDir: work, Stack: name, Backend: "file://" + backend, PulumiHome: home,
		Env: map[string]string{"PULUMI_CONFIG_PASSPHRASE": "driver-test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 2 { // made, then found
		s, reads, err := deploy.SelectAndRead(ctx, ws, name, true)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if s.Name() != name || reads.Config["fastapi-infra:environment"].Value != "production" || len(reads.State.Deployment) == 0 {
			t.Fatalf("round %d: stack %q, environment %q, state %d bytes", round, s.Name(), reads.Config["fastapi-infra:environment"].Value, len(reads.State.Deployment))
		}
		if retry, err := deploy.FailedMigrations(reads.State); err != nil || retry != nil {
			t.Fatalf("round %d: a new stack's state: %v, %v", round, retry, err)
		}
	}
	stacks, err := ws.ListStacks(ctx)
	if err != nil || len(stacks) != 1 || stacks[0].Name != name {
		t.Fatalf("stacks in the backend: %+v, %v", stacks, err)
	}
}
