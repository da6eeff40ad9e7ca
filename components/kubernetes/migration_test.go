package kubernetes_test

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

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
}
