package toolchain

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLookupNamesTheChoices(t *testing.T) {
	if _, err := Lookup("pulumi"); err != nil {
		t.Fatal(err)
	}
	_, err := Lookup("kubectl")
	if err == nil || !strings.Contains(err.Error(), `unknown tool "kubectl" (want one of pulumi, kubernetes-plugin, controlplane, kubenode`) {
		t.Fatalf("Lookup(kubectl): %v", err)
	}
}

// TestEnsureWaitsPerToolAndSaysWhy: a build of one tool holds only that
// tool's lock, and a second caller that needs the same tool says what it
// waits for instead of waiting without a word.
func TestEnsureWaitsPerToolAndSaysWhy(t *testing.T) {
	cache := t.TempDir()
	release := make(chan struct{})
	built := 0
	var mu sync.Mutex
	slow := Tool{Name: "slow", Version: "v1", About: "a test tool", Cost: "a moment", dir: "slow-v1", bin: "slow",
		build: func(b *build) error {
			mu.Lock()
			built++
			mu.Unlock()
			<-release
			return os.WriteFile(filepath.Join(b.work, "slow"), []byte("#!/bin/sh\n"), 0o755)
		}}
	first := Builder{Cache: cache, Progress: &bytes.Buffer{}}
	done := make(chan error, 1)
	go func() { done <- first.ensure(context.Background(), slow) }()
	// Another tool is not held up by slow's build.
	other := slow
	other.Name, other.dir, other.bin = "other", "other-v1", "other"
	other.build = func(b *build) error {
		return os.WriteFile(filepath.Join(b.work, "other"), []byte("#!/bin/sh\n"), 0o755)
	}
	if err := (Builder{Cache: cache, Progress: &bytes.Buffer{}}).ensure(context.Background(), other); err != nil {
		t.Fatalf("another tool waited for slow's build: %v", err)
	}
	// The same tool waits, and says so: once the first caller is inside
	// slow's build, holding its lock (before, the second could take the
	// lock first; seen once on a busy machine).
	for start := time.Now(); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		inside := built == 1
		mu.Unlock()
		if inside {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("the first caller never started slow's build")
		}
	}
	var progress syncBuffer
	second := make(chan error, 1)
	go func() { second <- (Builder{Cache: cache, Progress: &progress}).ensure(context.Background(), slow) }()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(progress.String(), "waiting for another build of slow v1 to finish (pid ") {
		if time.Now().After(deadline) {
			t.Fatalf("the waiting caller said %q", progress.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if built != 1 {
		t.Errorf("built %d times, want once (the waiter finds it built)", built)
	}
	if !executable(slow.Path(cache)) {
		t.Error("no binary in the cache")
	}
}

// TestFailedBuildShowsTheLogTail: the go command's output stays out of the
// terminal until a build fails; then its end is in the error.
func TestFailedBuildShowsTheLogTail(t *testing.T) {
	broken := Tool{Name: "broken", Version: "v0", dir: "broken-v0", bin: "broken",
		build: func(b *build) error { return b.run(b.goCmd("build", "./does-not-exist")) }}
	var progress bytes.Buffer
	err := (Builder{Cache: t.TempDir(), Progress: &progress}).ensure(context.Background(), broken)
	if err == nil || !strings.Contains(err.Error(), "building broken v0 failed") || !strings.Contains(err.Error(), "does-not-exist") ||
		!strings.Contains(err.Error(), "(the whole log: ") {
		t.Fatalf("error: %v", err)
	}
	if strings.Contains(progress.String(), "does-not-exist") {
		t.Errorf("the go command's output reached the progress: %q", progress.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
