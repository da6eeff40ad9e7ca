package toolchain

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunTestsNamesThePinnedDockerPlugin: ./run-tests names the docker
// provider plugin's release file by its version; a new pin here must be
// the file it looks for, or the real-engine tests would fail for want of
// a plugin that is there.
func TestRunTestsNamesThePinnedDockerPlugin(t *testing.T) {
	raw, err := os.ReadFile("../run-tests")
	if err != nil {
		t.Fatal(err)
	}
	if want := "pulumi-resource-docker-v" + PulumiDockerVersion + "-linux-amd64.tar.gz"; !strings.Contains(string(raw), want) {
		t.Errorf("run-tests does not name %s", want)
	}
}

func TestPluginFile(t *testing.T) {
	t.Setenv(DockerPluginEnv, "")
	if _, ok, err := PluginFile(DockerPluginEnv); ok || err != nil {
		t.Errorf("unset: %v, %v", ok, err)
	}
	missing := filepath.Join(t.TempDir(), "nothing.tar.gz")
	t.Setenv(DockerPluginEnv, missing)
	if _, ok, err := PluginFile(DockerPluginEnv); !ok || err == nil || !strings.Contains(err.Error(), "$"+DockerPluginEnv+" names "+missing) {
		t.Errorf("a file that is not there: %v, %v", ok, err)
	}
}
