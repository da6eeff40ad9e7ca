package toolchain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Tool is one binary the project builds from the Go module proxy.
type Tool struct {
	// Name is what callers ask for: pulumi, kubernetes-plugin, ...
	Name string
	// Key is the NAME of the NAME=PATH line cmd/toolchain prints.
	Key string
	// Version is what the cache folder is keyed by.
	Version string
	// About says what the tool is for, in the progress line.
	About string
	// Cost is the measured cold build, in the progress line.
	Cost string
	// dir is the cache folder (under the cache root) and bin the binary
	// inside it; both are the layout the earlier shell toolchain used, so a
	// warm cache stays warm.
	dir, bin string
	build    func(b *build) error
}

// Path is where the tool's binary is (or will be) in the cache.
func (t Tool) Path(cache string) string { return filepath.Join(cache, t.dir, t.bin) }

// Lookup finds a tool by name.
func Lookup(name string) (Tool, error) {
	var names []string
	for _, t := range Tools() {
		if t.Name == name {
			return t, nil
		}
		names = append(names, t.Name)
	}
	return Tool{}, fmt.Errorf("unknown tool %q (want one of %s)", name, strings.Join(names, ", "))
}

// CacheDir is the root of the build cache: $FASTAPI_INFRA_CACHE, else
// $XDG_CACHE_HOME/fastapi-infra, else ~/.cache/fastapi-infra. It lives
// outside the clone so that a fresh clone (CI) finds everything built.
func CacheDir() (string, error) {
	if d := os.Getenv("FASTAPI_INFRA_CACHE"); d != "" {
		return d, nil
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "fastapi-infra"), nil
}

// Builder builds tools into the cache. Progress gets one line when a build
// starts and one when it ends (or why it waits); the go command's own output
// goes to a log file in the cache and is shown only when a build fails.
type Builder struct {
	// Cache is the cache root; empty: CacheDir().
	Cache    string
	Progress io.Writer
}

// Ensure returns the binary of each tool named, building what the cache
// lacks. Each tool has its own lock, so a build of one never holds up a
// caller that needs another that is built already.
func (b Builder) Ensure(ctx context.Context, names ...string) (map[string]string, error) {
	if b.Cache == "" {
		var err error
		if b.Cache, err = CacheDir(); err != nil {
			return nil, err
		}
	}
	if b.Progress == nil {
		b.Progress = io.Discard
	}
	paths := map[string]string{}
	for _, name := range names {
		t, err := Lookup(name)
		if err != nil {
			return nil, err
		}
		if err := b.ensure(ctx, t); err != nil {
			return nil, err
		}
		paths[t.Name] = t.Path(b.Cache)
	}
	return paths, nil
}

func executable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

func (b Builder) ensure(ctx context.Context, t Tool) error {
	final := t.Path(b.Cache)
	if executable(final) {
		return nil
	}
	unlock, err := b.lock(ctx, t)
	if err != nil {
		return err
	}
	defer unlock()
	if executable(final) { // built by whoever held the lock
		return nil
	}
	logDir := filepath.Join(b.Cache, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(logDir, t.dir+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	work := filepath.Join(b.Cache, "work", t.dir)
	if err := os.RemoveAll(work); err != nil {
		return err
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	fmt.Fprintf(b.Progress, "toolchain: building %s %s, %s (%s, once; into %s)\n", t.Name, t.Version, t.About, t.Cost, filepath.Dir(final))
	start := time.Now()
	bld := &build{ctx: ctx, work: work, log: logFile, tool: t}
	if err := t.build(bld); err != nil {
		_ = logFile.Sync()
		return fmt.Errorf("building %s %s failed: %w\n%s(the whole log: %s)", t.Name, t.Version, err, tail(logPath, 40), logPath)
	}
	// Atomic: an interrupted build never leaves a half-written binary that
	// a later run would take as built.
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(work, filepath.Base(t.bin)), final+".tmp"); err != nil {
		return err
	}
	if err := os.Rename(final+".tmp", final); err != nil {
		return err
	}
	_ = os.RemoveAll(work) // the Go caches keep what a rebuild needs
	fmt.Fprintf(b.Progress, "toolchain: built %s %s in %s\n", t.Name, t.Version, time.Since(start).Round(time.Second))
	return nil
}

// lock takes the tool's build lock, saying who holds it while it waits.
func (b Builder) lock(ctx context.Context, t Tool) (func(), error) {
	dir := filepath.Join(b.Cache, "locks")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, t.dir+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		holder, _ := os.ReadFile(path)
		fmt.Fprintf(b.Progress, "toolchain: waiting for another build of %s %s to finish (%s; lock %s)\n",
			t.Name, t.Version, strings.TrimSpace(string(holder)), path)
		done := make(chan error, 1)
		go func() { done <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
		select {
		case err = <-done:
		case <-ctx.Done():
			f.Close() // the blocked flock returns with EBADF
			return nil, ctx.Err()
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	_ = f.Truncate(0)
	_, _ = fmt.Fprintf(f, "pid %d, since %s", os.Getpid(), time.Now().Format(time.TimeOnly))
	return func() { _ = f.Truncate(0); f.Close() }, nil
}

// tail is the last n lines of a file, for a failure message.
func tail(path string, n int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}
