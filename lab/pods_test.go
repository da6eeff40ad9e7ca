package lab

import (
	"fmt"
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

// TestExitedWaitsForEveryThread: a process whose main thread has exited
// while another thread runs shows its leader as a zombie, but it is alive
// (and for a PID namespace's init, the kernel kills the namespace's other
// processes only when its last thread exits): a multi-threaded PID 1 (a
// Python server) looked dead while its workers still accepted
// connections, and a request sent "after" its death failed in the lab.
func TestExitedWaitsForEveryThread(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is not installed: apt-get install python3")
	}
	// The main thread ends itself (pthread_exit) once a daemon thread runs.
	cmd := exec.Command(python, "-c", `import ctypes, threading, time
threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
ctypes.CDLL(None).pthread_exit(None)`)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	pid := cmd.Process.Pid
	defer syscall.Kill(pid, syscall.SIGKILL)
	deadline := time.Now().Add(5 * time.Second)
	for !leaderIsZombie(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d's main thread never exited", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if exited(pid) {
		t.Fatalf("process %d counts as exited while a thread of it runs", pid)
	}
}

func leaderIsZombie(pid int) bool {
	state, err := procState(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && state == 'Z'
}
