package lab

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
)

// KillContainer sends sig to a container's main process from the host, as
// the kernel's OOM killer or a crash would end it: from inside the
// container, PID 1 ignores signals it has no handler for, even SIGKILL.
// containerID is the pod status's form, containerd://<id>.
func (l *Lab) KillContainer(ctx context.Context, containerID string, sig syscall.Signal) error {
	id := strings.TrimPrefix(containerID, "containerd://")
	out, err := l.ctr(ctx, "tasks", "ls")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == id {
			pid, err := strconv.Atoi(f[1])
			if err != nil {
				return fmt.Errorf("lab: task %s has pid %q", id, f[1])
			}
			return syscall.Kill(pid, sig)
		}
	}
	return fmt.Errorf("lab: no running task for container %s", containerID)
}
