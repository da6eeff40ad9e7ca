package deploy

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
)

// Reads is what the driver reads of a stack before the engine runs.
type Reads struct {
	Config auto.ConfigMap
	// State is the stack's state (with WithState), for DatabaseMajorGuard
	// and FailedMigrations.
	State apitype.UntypedDeployment
}

// SelectAndRead selects the stack, creating it when it does not exist, and
// reads its config and, withState, its state, in CLI processes that run at
// the same time: each process costs 0.2-1 s on 2 cores, mostly the CLI's
// own start, and a no-op up is mostly such processes. The reads name the
// stack, so they need not wait for the selection; for a new stack they
// fail and run again once it exists.
func SelectAndRead(ctx context.Context, ws auto.Workspace, name string, withState bool) (auto.Stack, Reads, error) {
	var (
		wg                  sync.WaitGroup
		r                   Reads
		configErr, stateErr error
	)
	read := func() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Config, configErr = againIfCutShort(ctx, func() (auto.ConfigMap, error) { return ws.GetAllConfig(ctx, name) })
		}()
		if withState {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.State, stateErr = exportStack(ctx, ws.ExportStack, name)
			}()
		}
	}
	read()
	s, err := againIfCutShort(ctx, func() (auto.Stack, error) { return auto.SelectStack(ctx, name, ws) })
	wg.Wait()
	if err != nil && auto.IsSelectStack404Error(err) {
		if s, err = auto.NewStack(ctx, name, ws); err == nil {
			read()
			wg.Wait()
		}
	}
	switch {
	case err != nil:
		return s, r, err
	case configErr != nil:
		return s, r, fmt.Errorf("reading the config of stack %s: %w", name, configErr)
	case stateErr != nil:
		return s, r, fmt.Errorf("reading the state of stack %s: %w", name, stateErr)
	}
	return s, r, nil
}

// exportStack reads a stack's state, again when the read was cut short:
// beside an update that is writing the checkpoint (a second ./infra up
// while one runs) the CLI can find it empty, "failed to load checkpoint:
// EOF", and the second up then failed on that instead of being refused
// with who holds the stack's lock.
func exportStack(ctx context.Context, export func(context.Context, string) (apitype.UntypedDeployment, error), name string) (apitype.UntypedDeployment, error) {
	return againIfCutShort(ctx, func() (apitype.UntypedDeployment, error) { return export(ctx, name) })
}

// againIfCutShort runs a read of the stack through the CLI (its state,
// its selection, its config) again while it fails with the checkpoint
// found empty: every such read loads the checkpoint, and beside an update
// writing it each can find it so ("failed to select stack: ... failed to
// load checkpoint: EOF", seen in CI once the state's own read was retried).
func againIfCutShort[T any](ctx context.Context, read func() (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		v, err := read()
		if err == nil || attempt == checkpointReads || !strings.Contains(err.Error(), "failed to load checkpoint") {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(checkpointRetry):
		}
	}
}

// checkpointReads and checkpointRetry bound againIfCutShort's attempts: a
// checkpoint is rewritten in milliseconds.
var (
	checkpointReads = 5
	checkpointRetry = 200 * time.Millisecond
)
