package singleserver

import (
	"bufio"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestDrainWrapperKeepsServingAfterSIGTERM runs the wrapper for real: on
// SIGTERM the server goes on for the drain, then gets SIGTERM itself, and
// the wrapper exits with the server's code.
func TestDrainWrapperKeepsServingAfterSIGTERM(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is not installed, so the drain wrapper cannot be run: apt-get install python3")
	}
	// A server that says when it starts and when SIGTERM reaches it, and
	// exits 7 then.
	server := `import signal, sys, time
signal.signal(signal.SIGTERM, lambda *a: (print("term", flush=True), sys.exit(7)))
print("ready", flush=True)
while True: time.sleep(0.05)`
	cmd := exec.Command(python, "-c", DrainWrapper, "1", "0.5", python, "-c", server)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("the server did not start: %q", lines.Text())
	}
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !lines.Scan() || lines.Text() != "term" {
		t.Fatalf("the server never got SIGTERM: %q", lines.Text())
	}
	if d := time.Since(sent); d < 900*time.Millisecond || d > 3*time.Second {
		t.Errorf("the server got SIGTERM %s after the wrapper, want the 1 s drain", d)
	}
	termed := time.Now()
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
		t.Errorf("the wrapper exited with %v, want the server's 7", err)
	}
	if d := time.Since(termed); d < 400*time.Millisecond || d > 3*time.Second {
		t.Errorf("the wrapper exited %s after the server, want the 0.5 s linger", d)
	}
}

// TestDrainWrapperEndsWithACrash: a server that exits without SIGTERM
// ends the wrapper at once (no linger), so Docker restarts it at once.
func TestDrainWrapperEndsWithACrash(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is not installed, so the drain wrapper cannot be run: apt-get install python3")
	}
	start := time.Now()
	err = exec.Command(python, "-c", DrainWrapper, "3", "5", python, "-c", "import sys; sys.exit(9)").Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 9 {
		t.Errorf("the wrapper exited with %v, want the server's 9", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the wrapper stayed %s after its server crashed", d)
	}
}
