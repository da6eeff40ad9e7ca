package lab

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestExitedSeesAZombie: a killed child that nobody has reaped yet is a
// zombie, which is what KillContainer waits for (containerd's shim reaps
// a container's PID 1 on its own time).
func TestExitedSeesAZombie(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	pid := cmd.Process.Pid
	if exited(pid) {
		t.Fatalf("a running process %d counts as exited", pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !exited(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d, killed and not reaped, never counted as exited", pid)
		}
		time.Sleep(time.Millisecond)
	}
	cmd.Wait()
	if !exited(pid) {
		t.Errorf("a reaped process %d does not count as exited", pid)
	}
}
