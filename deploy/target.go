package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/fastapi-infra/fastapi-infra/stacks"
)

// Needs say what an operation needs of its stack before it runs.
type Needs struct {
	// StackFile: Pulumi.<stack>.yaml must exist (preview, up, refresh: the
	// engine runs the program with it). Other operations work from the
	// backend's copy of the config, a destroy of a stack whose file is
	// gone among them.
	StackFile bool
	// Engine: the architecture's provider plugin, installed before the
	// stack is even selected (preview, up, refresh, destroy).
	Engine bool
	// State: the stack's state, for the guards that run before the engine
	// changes anything (Guards: preview and up).
	State bool
}

// Target is a stack ready for an operation: selected (created when
// missing), its config read (the backend's, with the stack file's
// values), and with Needs.State its state.
type Target struct {
	Stack  auto.Stack
	Reads  Reads
	Config auto.ConfigMap
	Arch   stacks.Architecture
}

// Name is the stack's name.
func (t Target) Name() string { return t.Stack.Name() }

// Prepare takes the steps every operation on a stack begins with, in this
// order: the stack file's check, the workspace (the pinned CLI and the
// backend), the provider plugin while nothing is selected yet (a refusal
// for a missing docker plugin must leave the stack file as it was:
// creating a stack writes its encryption salt there, and Preflight may
// store generated secrets), then the stack's selection and reads.
func Prepare(ctx context.Context, o Options, n Needs) (Target, error) {
	var t Target
	if n.StackFile {
		if _, err := os.Stat(filepath.Join(o.ProjectDir, "Pulumi."+o.Stack+".yaml")); errors.Is(err, os.ErrNotExist) {
			return t, fmt.Errorf("no Pulumi.%s.yaml in %s: create it with the overrides of the new stack (see docs/configuration.md)", o.Stack, o.ProjectDir)
		}
	}
	ws, err := Workspace(ctx, o)
	if err != nil {
		return t, err
	}
	arch, fromFile, err := StackFileArchitecture(o.ProjectDir, o.Stack)
	if err != nil {
		return t, err
	}
	if n.Engine && fromFile {
		if err := EnsurePlugin(ctx, ws, arch, o.Progress); err != nil {
			return t, err
		}
	}
	s, reads, err := SelectAndRead(ctx, ws, o.Stack, n.State)
	if err != nil {
		return t, err
	}
	t = Target{Stack: s, Reads: reads, Config: reads.Config, Arch: Architecture(reads.Config)}
	if n.Engine && !fromFile { // a destroy of a stack whose file is gone: the backend's config
		if err := EnsurePlugin(ctx, ws, t.Arch, o.Progress); err != nil {
			return t, err
		}
	}
	return t, nil
}

// Existing selects a stack that must exist in the backend (history), without
// creating it.
func Existing(ctx context.Context, o Options) (auto.Stack, error) {
	ws, err := Workspace(ctx, o)
	if err != nil {
		return auto.Stack{}, err
	}
	s, err := auto.SelectStack(ctx, o.Stack, ws)
	if err != nil {
		return s, fmt.Errorf("no stack %s in the backend (%w)", o.Stack, err)
	}
	return s, nil
}

// Guards run before the engine previews or changes a stack: a PostgreSQL
// major upgrade through db.image, which would leave the release without a
// database, is refused; a migration that failed on the last up is to run
// again (its URNs, for the engine's --replace). Target needs its state.
func Guards(t Target) (retry []string, err error) {
	if err := DatabaseMajorGuard(t.Reads.State, t.Config, t.Name()); err != nil {
		return nil, err
	}
	return FailedMigrations(t.Reads.State)
}
