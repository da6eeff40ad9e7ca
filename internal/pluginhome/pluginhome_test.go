package pluginhome

import (
	"os"
	"path/filepath"
	"testing"
)

// TestHasPluginReadsThePluginFolder: the installed check reads the Pulumi
// home's plugin folder as the CLI does: the exact version, a resource
// plugin, not one still being installed (its .partial marker).
func TestHasPluginReadsThePluginFolder(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"resource-docker-v4.10.0", "resource-kubernetes-v4.25.0", "resource-kubernetes-v4.26.0", "language-docker-v4.11.0"} {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A download cut short leaves its folder and the marker.
	if err := os.WriteFile(filepath.Join(dir, "resource-kubernetes-v4.26.0.partial"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, version string
		want          bool
	}{
		{"docker", "4.10.0", true},
		{"docker", "v4.10.0", true},
		{"docker", "4.11.0", false}, // a language plugin of that version only
		{"docker", "4.9.0", false},
		{"kubernetes", "4.25.0", true},
		{"kubernetes", "4.26.0", false}, // partial
		{"random", "4.10.0", false},
	} {
		got, err := Has(dir, c.name, c.version)
		if err != nil || got != c.want {
			t.Errorf("Has(%s, %s) = %v, %v; want %v", c.name, c.version, got, err, c.want)
		}
	}
	if got, err := Has(filepath.Join(dir, "missing"), "docker", "4.10.0"); err != nil || got {
		t.Errorf("a Pulumi home without plugins: %v, %v", got, err)
	}
}
