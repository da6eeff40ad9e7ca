package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is one long-running program of the lab: started in a session of
// its own (so it outlives `go run ./cmd/lab start`), its output kept in
// <state>/logs/<name>.log and its pid in <state>/pids/<name>.pid.
type process struct {
	name string
	argv []string
	env  []string
}

func (l *Lab) pidFile(name string) string { return filepath.Join(l.State, "pids", name+".pid") }

// LogFile is where a process's output goes.
func (l *Lab) LogFile(name string) string { return filepath.Join(l.State, "logs", name+".log") }

// pid is the process's pid when it runs and is ours: its command line
// carries the lab's state folder, so a pid the system reused never counts.
func (l *Lab) pid(name string) (int, bool) {
	raw, err := os.ReadFile(l.pidFile(name))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return 0, false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(l.State)) {
		return 0, false
	}
	return pid, true
}

// start runs p unless it runs already.
func (l *Lab) start(p process) error {
	if _, ok := l.pid(p.name); ok {
		return nil
	}
	for _, dir := range []string{"pids", "logs"} {
		if err := os.MkdirAll(filepath.Join(l.State, dir), 0o755); err != nil {
			return err
		}
	}
	logFile, err := os.OpenFile(l.LogFile(p.name), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), p.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	// Reap it when it ends while this process lives; a person's `lab
	// start` exits and leaves it to init.
	go func() { _ = cmd.Wait() }()
	if err := os.WriteFile(l.pidFile(p.name), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		return err
	}
	// Start returns a moment before the kernel shows the new command line
	// (an empty one, or even the parent's, for a while under load), and
	// pid() knows the process as ours by its command line: wait for it.
	for range 500 {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid))
		if err != nil || bytes.Contains(cmdline, []byte(l.State)) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// stop sends SIGTERM, waits up to grace, then SIGKILL.
func (l *Lab) stop(name string, grace time.Duration) bool {
	pid, ok := l.pid(name)
	defer os.Remove(l.pidFile(name))
	if !ok {
		return false
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for range 50 {
		if syscall.Kill(pid, 0) != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// waitFor polls check until it succeeds, the process died, or the time is
// up; the error then quotes the end of the process's log.
func (l *Lab) waitFor(ctx context.Context, what, proc string, within time.Duration, check func() error) error {
	deadline := time.Now().Add(within)
	var last error
	for {
		if last = check(); last == nil {
			return nil
		}
		if proc != "" {
			if _, ok := l.pid(proc); !ok {
				return fmt.Errorf("%s: %s exited; the end of %s:\n%s", what, proc, l.LogFile(proc), tailFile(l.LogFile(proc), 25))
			}
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	msg := fmt.Sprintf("%s did not happen within %s (last: %v)", what, within, last)
	if proc != "" {
		msg += fmt.Sprintf("; the end of %s:\n%s", l.LogFile(proc), tailFile(l.LogFile(proc), 25))
	}
	return errors.New(msg)
}

func tailFile(path string, n int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// run runs a short command and returns its combined output, or an error
// that quotes it.
func run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}
