//go:build e2e

package kubernetes_test

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fastapi-infra/fastapi-infra/components/kubernetes"
)

// TestExitCodeReporterRunsTheCommand runs the reporter with this machine's
// python3 as the migration Job does: the command's output and exit code
// pass through, and a failure ends with a line that names the exit code.
func TestExitCodeReporterRunsTheCommand(t *testing.T) {
	run := func(args ...string) (int, string) {
		cmd := exec.Command("python3", append([]string{"-c", kubernetes.ExitCodeReporter}, args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, out.String()
	}
	if code, out := run("sh", "-c", "echo migrated"); code != 0 || out != "migrated\n" {
		t.Errorf("a passing command: exit %d, output %q", code, out)
	}
	code, out := run("sh", "-c", "echo boom >&2; exit 3")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 3 || len(lines) != 2 || lines[0] != "boom" || lines[1] != "fastapi-infra: the migration sh -c echo boom >&2; exit 3 exited with code 3" {
		t.Errorf("a failing command: exit %d, output %q", code, out)
	}
	if code, _ := run("sh", "-c", "kill -TERM $$"); code != 128+15 {
		t.Errorf("a command killed by SIGTERM: exit %d, want %d", code, 128+15)
	}
	// It waits for the database to accept a connection first, and gives
	// up with the reason after DB_WAIT_SECONDS.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now
	t.Setenv("DB_WAIT_SECONDS", "2")
	t.Setenv("DATABASE_URL", fmt.Sprintf("postgresql://app:pw@127.0.0.1:%d/app", port))
	start := time.Now()
	code, out = run("sh", "-c", "echo migrated")
	if code != 3 || !strings.Contains(out, fmt.Sprintf("the database 127.0.0.1:%d did not accept a connection within 2 s", port)) || strings.Contains(out, "migrated") {
		t.Errorf("no database: exit %d, output %q", code, out)
	}
	if waited := time.Since(start); waited < 2*time.Second {
		t.Errorf("gave up after %s, before DB_WAIT_SECONDS", waited)
	}
	go func() {
		time.Sleep(1500 * time.Millisecond)
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			t.Cleanup(func() { l.Close() })
		}
	}()
	t.Setenv("DB_WAIT_SECONDS", "20")
	if code, out := run("sh", "-c", "echo migrated"); code != 0 || out != "migrated\n" {
		t.Errorf("a database that comes up: exit %d, output %q", code, out)
	}
}
