//go:build e2e

package singleserver

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeWorker stands in for `uvicorn --fd 3`: it takes IMPORT_SECONDS to
// start, then listens on the inherited socket (asyncio's create_server
// does), answers "hi" and, on SIGTERM, does what uvicorn's shutdown does in
// that order: close its copy of the listening socket, then take a while
// (in-flight requests, the lifespan shutdown) and exit, here with 7. Each
// line is one write, so the three workers' lines never interleave.
const fakeWorker = `import os, signal, socket, sys, time
listener = socket.socket(fileno=3)
time.sleep(float(os.environ.get("IMPORT_SECONDS", "0")))
listener.listen(2048)
def term(signum, frame):
    listener.close()
    os.write(1, b"term %d\n" % os.getpid())
    time.sleep(0.6)
    sys.exit(7)
signal.signal(signal.SIGTERM, term)
os.write(1, b"ready %d\n" % os.getpid())
while True:
    conn, _ = listener.accept()
    conn.sendall(b"hi")
    conn.close()
`

// supervised starts the replica supervisor for real with three fake
// workers on a free port and returns once all three said they are ready.
func supervised(t *testing.T, drain, linger string, worker string) (*exec.Cmd, *bufio.Scanner, string) {
	t.Helper()
	cmd, addr := startSupervisor(t, drain, linger, worker)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	for range 3 {
		if !lines.Scan() || !strings.HasPrefix(lines.Text(), "ready ") {
			t.Fatalf("a worker did not start: %q", lines.Text())
		}
	}
	return cmd, lines, addr
}

// startSupervisor is the command that runs the supervisor with three
// workers on a free port, and that port's address.
func startSupervisor(t *testing.T, drain, linger string, worker string) (*exec.Cmd, string) {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is not installed, so the replica supervisor cannot be run: apt-get install python3")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	cmd := exec.Command(python, "-c", ReplicaSupervisor, drain, linger, port, "3", python, "-c", worker)
	// Its own process group, so that the cleanup's SIGKILL reaches the
	// workers too (in a container, PID 1's end takes them with it).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t.Cleanup(func() {
		if cmd.Process != nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
		}
	})
	return cmd, "127.0.0.1:" + port
}

// answers reports whether the port serves, and fails the test on
// anything but an answer or a refusal.
func answers(t *testing.T, addr string) bool {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return false
	}
	if err != nil {
		t.Fatalf("connect to %s: %v, want an answer or a refusal", addr, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	b, err := io.ReadAll(conn)
	if err != nil || string(b) != "hi" {
		t.Fatalf("%s accepted a connection but answered %q, %v: a connection that waits in the backlog of a socket nobody accepts from", addr, b, err)
	}
	return true
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err == nil {
		return 0
	}
	return -1
}

// TestReplicaSupervisorRefusesAtOnceOnSIGTERM: the three workers share
// the port; on SIGTERM every one of them gets it at once and the port
// refuses connections while they are still finishing, so a proxy retries
// elsewhere instead of waiting on a backlog (uvicorn's own supervisor
// stopped its workers one by one and held the socket until the last one
// exited). The supervisor stays for the linger and exits with the
// workers' code.
func TestReplicaSupervisorRefusesAtOnceOnSIGTERM(t *testing.T) {
	cmd, lines, addr := supervised(t, "0", "0.5", fakeWorker)
	for range 10 {
		if !answers(t, addr) {
			t.Fatal("the workers do not serve the supervisor's port")
		}
	}
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	termed := map[string]bool{}
	for len(termed) < 3 && lines.Scan() {
		if pid, ok := strings.CutPrefix(lines.Text(), "term "); ok {
			termed[pid] = true
		}
	}
	// One after another, as uvicorn's supervisor does, would take 1.2 s
	// at least (0.6 s each before the next gets the signal).
	if d := time.Since(sent); len(termed) < 3 || d > time.Second {
		t.Fatalf("%d workers got SIGTERM within %s, want all 3 at once", len(termed), d)
	}
	if answers(t, addr) {
		t.Fatal("the port still serves after every worker got SIGTERM")
	}
	if d := time.Since(sent); d > time.Second {
		t.Errorf("the port refused %s after SIGTERM, want at once (the workers take 0.6 s to exit)", d)
	}
	err := cmd.Wait()
	if code := exitCode(err); code != 7 {
		t.Errorf("the supervisor exited with %v, want the workers' 7", err)
	}
	if d := time.Since(sent); d < 1000*time.Millisecond || d > 4*time.Second {
		t.Errorf("the supervisor exited %s after SIGTERM, want the workers' 0.6 s and the 0.5 s linger", d)
	}
}

// TestReplicaSupervisorRefusesUntilAWorkerServes: while the workers
// start (import the app), the port refuses connections, so a proxy tries
// another replica; it must not complete handshakes that wait for a
// worker (a supervisor that listened itself made release requests wait
// 8-11 s in the benchmark).
func TestReplicaSupervisorRefusesUntilAWorkerServes(t *testing.T) {
	cmd, addr := startSupervisor(t, "0", "0", fakeWorker)
	cmd.Env = append(os.Environ(), "IMPORT_SECONDS=1.5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the supervisor bound the port
	if answers(t, addr) {
		t.Fatal("the port answered before any worker started")
	}
	deadline := time.Now().Add(10 * time.Second)
	for !answers(t, addr) {
		if time.Now().After(deadline) {
			t.Fatal("the workers never served the port")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestReplicaSupervisorDrainsBeforeSIGTERM: with a drain, the workers
// serve on for it before they get SIGTERM (Traefik's routing catches up).
func TestReplicaSupervisorDrainsBeforeSIGTERM(t *testing.T) {
	cmd, lines, addr := supervised(t, "1", "0", fakeWorker)
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if !answers(t, addr) {
		t.Fatal("the port refused during the drain")
	}
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "term ") {
		t.Fatalf("the workers never got SIGTERM: %q", lines.Text())
	}
	if d := time.Since(sent); d < 900*time.Millisecond || d > 3*time.Second {
		t.Errorf("the workers got SIGTERM %s after the supervisor, want the 1 s drain", d)
	}
}

// TestReplicaSupervisorEndsWithACrash: a worker that exits without
// SIGTERM stops the others and ends the supervisor at once with its code
// (no drain, no linger), so Docker restarts the whole replica instead of
// leaving it a worker short.
func TestReplicaSupervisorEndsWithACrash(t *testing.T) {
	// The first worker to make the mark crashes once the test says go,
	// after all three started.
	dir := t.TempDir()
	mark, goAhead := filepath.Join(dir, "crashed"), filepath.Join(dir, "go")
	crashing := strings.Replace(fakeWorker, "while True:", `try:
    os.close(os.open(`+strconv.Quote(mark)+`, os.O_CREAT | os.O_EXCL))
    while not os.path.exists(`+strconv.Quote(goAhead)+`):
        time.sleep(0.05)
    sys.exit(9)
except FileExistsError:
    pass
while True:`, 1)
	cmd, lines, _ := supervised(t, "3", "5", crashing)
	start := time.Now()
	if err := os.WriteFile(goAhead, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	termed := 0
	for lines.Scan() {
		if strings.HasPrefix(lines.Text(), "term ") {
			termed++
		}
	}
	err := cmd.Wait()
	if code := exitCode(err); code != 9 {
		t.Errorf("the supervisor exited with %v, want the crashed worker's 9", err)
	}
	if termed != 2 {
		t.Errorf("%d of the other 2 workers got SIGTERM when one crashed", termed)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the supervisor stayed %s after a worker crashed, want the others' 0.6 s and no drain or linger", d)
	}
}

// TestReplicaSupervisorServesWhenAPreloadFails: a library of the preload
// list that is installed but fails to import (here a fastapi package that
// raises) is only not preloaded; workers that do not need it serve.
func TestReplicaSupervisorServesWhenAPreloadFails(t *testing.T) {
	broken := filepath.Join(t.TempDir(), "fastapi")
	if err := os.MkdirAll(broken, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(broken, "__init__.py"), []byte("raise ImportError('broken on purpose')\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, addr := startSupervisor(t, "0", "0", fakeWorker)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+filepath.Dir(broken))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !answers(t, addr) {
		if time.Now().After(deadline) || cmd.ProcessState != nil {
			t.Fatalf("the workers never served the port:\n%s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(stderr.String(), "not preloading fastapi") {
		t.Errorf("stderr does not say what was not preloaded:\n%s", stderr.String())
	}
}
