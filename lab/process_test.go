//go:build e2e

package lab

import (
	"testing"
	"time"
)

// TestStartedProcessIsKnownAtOnce: Start returns a moment before the
// kernel shows the new command line; a check right after must still find
// the process (it once reported a running etcd and Traefik as exited).
func TestStartedProcessIsKnownAtOnce(t *testing.T) {
	l := &Lab{Config: Config{State: t.TempDir()}}
	for i := range 20 {
		// The state folder on the command line marks the process as ours.
		// (/usr/bin/python3 itself: a wrapper such as a pyenv shim changes
		// its command line while it execs the real one.)
		if err := l.start(process{name: "sleeper", argv: []string{"/usr/bin/python3", "-c", "import time; time.sleep(30)", l.State}}); err != nil {
			t.Fatal(err)
		}
		if _, ok := l.pid("sleeper"); !ok {
			t.Fatalf("start %d: not known as running right after it started", i)
		}
		if !l.stop("sleeper", time.Second) {
			t.Fatalf("start %d: stop found nothing to stop", i)
		}
		if _, ok := l.pid("sleeper"); ok {
			t.Fatalf("start %d: still known as running after stop", i)
		}
	}
}
