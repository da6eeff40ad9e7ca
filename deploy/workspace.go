package deploy

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"

	"github.com/fastapi-infra/fastapi-infra/stacks"
	"github.com/fastapi-infra/fastapi-infra/toolchain"
)

// Options say which stack to open and where its state lives.
type Options struct {
	// ProjectDir holds Pulumi.yaml and the stack files (required).
	ProjectDir string
	// Stack is the stack name, e.g. dev or prod (required).
	Stack string
	// Backend is a backend URL; empty: $PULUMI_BACKEND_URL, else the
	// backend the user is logged into, else a local file backend in
	// ~/.fastapi-infra/state.
	Backend string
	// PulumiHome is the Pulumi home with plugins and credentials; empty:
	// $PULUMI_HOME or ~/.pulumi, as the CLI does.
	PulumiHome string
	// Env is extra environment for the engine (PULUMI_CONFIG_PASSPHRASE ...).
	Env map[string]string
	// Progress gets a line when the pinned CLI or a plugin must be built
	// first; nil discards it.
	Progress io.Writer
}

// Open selects or creates the stack with stacks.Run as its program, and the
// pinned CLI. The program runs in this process: the CLI calls back into it,
// so no Go language host is needed.
func Open(ctx context.Context, o Options) (auto.Stack, error) {
	ws, err := Workspace(ctx, o)
	if err != nil {
		return auto.Stack{}, err
	}
	return auto.UpsertStack(ctx, o.Stack, ws)
}

// Workspace is the project's workspace (stacks.Run, the pinned CLI, the
// backend) before any stack is selected: creating a stack writes its
// encryption salt into the stack file and a record into the backend, which
// a check that refuses (EnsurePlugin) must not leave behind.
func Workspace(ctx context.Context, o Options) (auto.Workspace, error) {
	cli, err := pulumiCLI(ctx, o.Progress)
	if err != nil {
		return nil, err
	}
	env := map[string]string{"PULUMI_SKIP_UPDATE_CHECK": "true"}
	for k, v := range o.Env {
		env[k] = v
	}
	if err := chooseBackend(o, env); err != nil {
		return nil, err
	}
	opts := []auto.LocalWorkspaceOption{auto.WorkDir(o.ProjectDir), auto.Program(stacks.Run), auto.Pulumi(cli), auto.EnvVars(env)}
	if o.PulumiHome != "" {
		opts = append(opts, auto.PulumiHome(o.PulumiHome))
	}
	return auto.NewLocalWorkspace(ctx, opts...)
}

// pulumiCLI is the pinned CLI: `pulumi` on PATH if it is that version,
// otherwise the toolchain's build (built on first use).
func pulumiCLI(ctx context.Context, progress io.Writer) (auto.PulumiCommand, error) {
	want, err := semver.ParseTolerant(toolchain.PulumiVersion)
	if err != nil {
		return nil, fmt.Errorf("toolchain.PulumiVersion %q: %w", toolchain.PulumiVersion, err)
	}
	if _, err := exec.LookPath("pulumi"); err == nil {
		if cmd, err := auto.NewPulumiCommand(&auto.PulumiCommandOptions{Version: want}); err == nil && cmd.Version().Equals(want) {
			return cmd, nil
		}
	}
	tools, err := toolchain.Builder{Progress: progress}.Ensure(ctx, "pulumi")
	if err != nil {
		return nil, err
	}
	// The cache holds <root>/bin/pulumi, the layout NewPulumiCommand expects.
	root := filepath.Dir(filepath.Dir(tools["pulumi"]))
	return auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: root, Version: want})
}

// chooseBackend fills PULUMI_BACKEND_URL, and for the local default a
// passphrase file, unless the caller or the user already chose.
func chooseBackend(o Options, env map[string]string) error {
	switch {
	case o.Backend != "":
		env["PULUMI_BACKEND_URL"] = o.Backend
	case os.Getenv("PULUMI_BACKEND_URL") != "" || env["PULUMI_BACKEND_URL"] != "":
		return nil
	case loggedIn(o.PulumiHome):
		return nil
	default:
		home, err := os.UserHomeDir()
		if err != nil {
			return err
		}
		state := filepath.Join(home, ".fastapi-infra", "state")
		if err := os.MkdirAll(state, 0o700); err != nil {
			return err
		}
		env["PULUMI_BACKEND_URL"] = "file://" + state
		if os.Getenv("PULUMI_CONFIG_PASSPHRASE") == "" && os.Getenv("PULUMI_CONFIG_PASSPHRASE_FILE") == "" &&
			env["PULUMI_CONFIG_PASSPHRASE"] == "" && env["PULUMI_CONFIG_PASSPHRASE_FILE"] == "" {
			file, err := localPassphrase(filepath.Dir(state))
			if err != nil {
				return err
			}
			env["PULUMI_CONFIG_PASSPHRASE_FILE"] = file
		}
	}
	return nil
}

// loggedIn reports whether `pulumi login` chose a backend in the standard
// Pulumi home ($PULUMI_HOME or ~/.pulumi), read with the SDK's own
// credentials reader. A caller with a home of its own passes a backend.
func loggedIn(pulumiHome string) bool {
	if pulumiHome != "" {
		return false
	}
	creds, err := workspace.GetStoredCredentials()
	return err == nil && creds.Current != ""
}

// localPassphrase is the passphrase of the local default backend: made once,
// readable only by its owner, so a fresh machine needs no set-up.
func localPassphrase(dir string) (string, error) {
	file := filepath.Join(dir, "passphrase")
	if _, err := os.Stat(file); err == nil {
		return file, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	return file, os.WriteFile(file, []byte(base64.RawURLEncoding.EncodeToString(buf)), 0o600)
}
