package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Versions are the pinned versions of lab/versions.env.
type Versions map[string]string

// ReadVersions parses lab/versions.env (KEY=value lines, # comments).
func ReadVersions(projectDir string) (Versions, error) {
	raw, err := os.ReadFile(filepath.Join(projectDir, "lab", "versions.env"))
	if err != nil {
		return nil, err
	}
	v := Versions{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, val, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			v[k] = val
		}
	}
	return v, sc.Err()
}

// Toolchain returns NAME=PATH of lab/toolchain.sh for the tools asked for,
// building what the cache lacks (the build's progress goes to stderr).
func Toolchain(projectDir string, tools ...string) (map[string]string, error) {
	cmd := exec.Command(filepath.Join(projectDir, "lab", "toolchain.sh"), tools...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("lab/toolchain.sh %s: %w", strings.Join(tools, " "), err)
	}
	paths := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			paths[k] = v
		}
	}
	return paths, nil
}
