// Package images holds images/build.sh's tests; the script itself is bash.
package images

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildStartsOnAnEngineWithNoImage: a new user's Docker engine lists
// no image at all, and the script must go on to build the first one. Its
// image list is a bash associative array, which an empty key ("bad array
// subscript") would have stopped under set -u before anything was built.
// Stand-ins: a docker that lists nothing, a debootstrap that fails.
func TestBuildStartsOnAnEngineWithNoImage(t *testing.T) {
	stubs, cache := t.TempDir(), t.TempDir()
	for name, body := range map[string]string{
		"docker":      `[ "$1" = images ] && exit 0; echo "unexpected: docker $*" >&2; exit 1`,
		"debootstrap": `echo "debootstrap stand-in" >&2; exit 1`,
	} {
		if err := os.WriteFile(filepath.Join(stubs, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("bash", "build.sh", "fresh")
	cmd.Env = append(os.Environ(), "PATH="+stubs+string(os.PathListSeparator)+os.Getenv("PATH"), "FASTAPI_INFRA_CACHE="+cache)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("build.sh fresh succeeded with a failing debootstrap:\n%s", out)
	}
	if !strings.Contains(string(out), "images: debootstrap bookworm with") || strings.Contains(string(out), "unexpected: docker") {
		t.Fatalf("build.sh fresh did not get to building the first image on an engine with none:\n%s", out)
	}
}
