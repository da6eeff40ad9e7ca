//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fastapi-infra/fastapi-infra/toolchain"
)

// TestProdRendersCleanManifests renders the prod stack to YAML through the
// real engine and provider (renderYamlToDirectory: no cluster involved) and
// runs the pinned kube-score on the result.
func TestProdRendersCleanManifests(t *testing.T) {
	out := t.TempDir()
	s := newProdStack(t, map[string]string{"kubernetes.renderYamlTo": out})
	if _, log, err := s.up(t); err != nil {
		t.Fatalf("rendering failed:\n%s\n%v", log, err)
	}
	var files []string
	_ = filepath.Walk(out, func(path string, info os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(path, ".yaml") {
			files = append(files, path)
		}
		return nil
	})
	if len(files) < 8 {
		t.Fatalf("rendered only %d manifests: %v", len(files), files)
	}
	tools, err := toolchain.Builder{Progress: os.Stderr}.Ensure(context.Background(), "kube-score")
	if err != nil {
		t.Fatal(err)
	}
	// Every check of kube-score's default set runs; none is disabled.
	cmd := exec.Command(tools["kube-score"], append([]string{"score", "--output-format", "ci"}, files...)...)
	report, err := cmd.CombinedOutput()
	levels := map[string][]string{}
	for _, line := range strings.Split(string(report), "\n") {
		if strings.HasPrefix(line, "[") {
			if level, _, ok := strings.Cut(line[1:], "]"); ok {
				levels[level] = append(levels[level], line)
			}
		}
	}
	if critical := levels["CRITICAL"]; len(critical) > 0 {
		t.Fatalf("kube-score reports %d CRITICAL findings on the prod manifests:\n%s", len(critical), strings.Join(critical, "\n"))
	}
	// Exit 1 means CRITICAL findings, handled above; anything else, or a
	// report with no passed check, means kube-score did not score at all.
	if err != nil || len(levels["OK"]) == 0 {
		t.Fatalf("kube-score did not score the manifests (%v):\n%s", err, report)
	}
	warnings := "none"
	if len(levels["WARNING"]) > 0 {
		warnings = "\n" + strings.Join(levels["WARNING"], "\n")
	}
	t.Logf("kube-score on %d manifests: %d checks OK, %d skipped, no CRITICAL finding; warnings: %s",
		len(files), len(levels["OK"]), len(levels["SKIPPED"]), warnings)
}
