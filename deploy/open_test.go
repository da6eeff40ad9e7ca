package deploy

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
)

// TestAStateReadCutShortIsReadAgain: the CLI's "failed to load checkpoint:
// EOF", seen when a second up read the state while the first wrote it, is
// read again; any other error is returned at once.
func TestAStateReadCutShortIsReadAgain(t *testing.T) {
	defer func(n int, d time.Duration) { checkpointReads, checkpointRetry = n, d }(checkpointReads, checkpointRetry)
	checkpointRetry = 0
	calls := 0
	export := func(failures int, err error) func(context.Context, string) (apitype.UntypedDeployment, error) {
		calls = 0
		return func(context.Context, string) (apitype.UntypedDeployment, error) {
			calls++
			if calls <= failures {
				return apitype.UntypedDeployment{}, err
			}
			return apitype.UntypedDeployment{Version: 3}, nil
		}
	}
	cut := errors.New("could not export stack: exit status 1\nstderr: error: failed to load checkpoint: EOF")
	if state, err := exportStack(context.Background(), export(2, cut), "s"); err != nil || state.Version != 3 || calls != 3 {
		t.Errorf("two reads cut short: %v after %d calls", err, calls)
	}
	if _, err := exportStack(context.Background(), export(9, cut), "s"); err == nil || calls != checkpointReads {
		t.Errorf("reads cut short every time: %v after %d calls, want the error after %d", err, calls, checkpointReads)
	}
	other := errors.New("no stack named s")
	if _, err := exportStack(context.Background(), export(1, other), "s"); !errors.Is(err, other) || calls != 1 {
		t.Errorf("another error: %v after %d calls, want it at once", err, calls)
	}
}

// TestASelectionCutShortIsTriedAgain: CI saw the second up beside a
// running one fail with "failed to select stack: exit status 1 ...
// failed to load checkpoint: EOF" once the state's own read was retried:
// the selection loads the checkpoint too.
func TestASelectionCutShortIsTriedAgain(t *testing.T) {
	defer func(n int, d time.Duration) { checkpointReads, checkpointRetry = n, d }(checkpointReads, checkpointRetry)
	checkpointRetry = 0
	calls := 0
	cut := errors.New("failed to select stack: exit status 1\ncode: 1\nstderr: error: failed to load checkpoint: EOF")
	got, err := againIfCutShort(context.Background(), func() (string, error) {
		calls++
		if calls < 3 {
			return "", cut
		}
		return "dev", nil
	})
	if err != nil || got != "dev" || calls != 3 {
		t.Errorf("select cut short twice: %q, %v after %d calls; want dev after 3", got, err, calls)
	}
}
