package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// KillContainer sends SIGKILL to a container's main process from the host,
// as the kernel's OOM killer or a crash would end it (from inside the
// container, PID 1 ignores signals it has no handler for, even SIGKILL),
// and returns once it has exited, with the time it saw it gone; containerID
// is the pod status's form, containerd://<id>. The kill only
// queues the signal: the process, and the workers it forked, die a moment
// later, and a test that counts what failed "after the crash" needs the
// moment the sockets were closed. The main process is PID 1 of the
// container's PID namespace, and the kernel kills and reaps every other
// process of the namespace before PID 1's last thread becomes a zombie,
// so "every thread of PID 1 is a zombie, or it is gone" means the whole
// container is dead.
func (l *Lab) KillContainer(ctx context.Context, containerID string, within time.Duration) (time.Time, error) {
	pid, err := l.containerPID(ctx, containerID)
	if err != nil {
		return time.Time{}, err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return time.Time{}, err
	}
	deadline := time.Now().Add(within)
	for {
		if exited(pid) {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("lab: process %d of container %s still runs %s after SIGKILL", pid, containerID, within)
		}
		time.Sleep(time.Millisecond)
	}
}

// exited reports whether pid is gone, or every thread of it is a zombie
// (state Z or X in /proc/PID/task/TID/stat: the third field, after the
// parenthesised command name). The leader alone is not enough: a
// multi-threaded process whose main thread ended first shows it as a
// zombie while the others run, and a PID namespace's init has its
// namespace's other processes killed only when its last thread exits.
func exited(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	if err != nil {
		return false
	}
	for _, task := range tasks {
		state, err := procState(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue // this thread is gone
		}
		if err != nil || (state != 'Z' && state != 'X') {
			return false
		}
	}
	return true
}

// procState is the state letter of a /proc stat file: the third field,
// after the parenthesised command name (which may hold spaces and ')').
func procState(path string) (byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0, fmt.Errorf("lab: %s: no state in %q", path, s)
	}
	return s[i+2], nil
}

// containerPID is the host PID of a container's main process, from
// containerd's task list.
func (l *Lab) containerPID(ctx context.Context, containerID string) (int, error) {
	id := strings.TrimPrefix(containerID, "containerd://")
	out, err := l.ctr(ctx, "tasks", "ls")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == id {
			pid, err := strconv.Atoi(f[1])
			if err != nil {
				return 0, fmt.Errorf("lab: task %s has pid %q", id, f[1])
			}
			return pid, nil
		}
	}
	return 0, fmt.Errorf("lab: no running task for container %s", containerID)
}
