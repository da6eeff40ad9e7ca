package toolchain

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// workflow is the part of a GitHub workflow these tests read.
type workflow struct {
	Jobs map[string]struct {
		Environment string `yaml:"environment"`
		Steps       []struct {
			Uses string            `yaml:"uses"`
			With map[string]string `yaml:"with"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

func workflows(t *testing.T) map[string]workflow {
	t.Helper()
	files, err := filepath.Glob("../.github/workflows/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no workflows: %v", err)
	}
	out := map[string]workflow{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var w workflow
		if err := yaml.Unmarshal(raw, &w); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = w
	}
	return out
}

// TestWorkflowsRunThePinnedCLI: every pulumi/actions step installs the
// CLI this project builds and tests, not whatever is newest that day.
func TestWorkflowsRunThePinnedCLI(t *testing.T) {
	want := strings.TrimPrefix(PulumiVersion, "v")
	steps := 0
	for name, w := range workflows(t) {
		for job, j := range w.Jobs {
			for _, s := range j.Steps {
				if !strings.HasPrefix(s.Uses, "pulumi/actions@") {
					continue
				}
				steps++
				if got := s.With["pulumi-version"]; got != want {
					t.Errorf("%s job %s: pulumi/actions with pulumi-version %q, want %q (toolchain.PulumiVersion)", name, job, got, want)
				}
			}
		}
	}
	if steps == 0 {
		t.Fatal("no pulumi/actions step found")
	}
}

// TestOnlyDeployJobsNameTheDeployEnvironments: the deploy credentials live
// in the development and production environments; a job any branch runs
// (previews, drift) must use the read-only preview environments.
func TestOnlyDeployJobsNameTheDeployEnvironments(t *testing.T) {
	for name, w := range workflows(t) {
		for job, j := range w.Jobs {
			deploys := false
			for _, s := range j.Steps {
				if strings.HasPrefix(s.Uses, "pulumi/actions@") && (s.With["command"] == "up" || s.With["command"] == "destroy") {
					deploys = true
				}
			}
			env := j.Environment
			switch {
			case deploys && env != "development" && env != "production":
				t.Errorf("%s job %s deploys from environment %q, want development or production", name, job, env)
			case !deploys && (env == "development" || env == "production"):
				t.Errorf("%s job %s does not deploy but names the deploy environment %q", name, job, env)
			case !deploys && hasPulumiCommand(j.Steps) && !strings.HasPrefix(env, "preview-"):
				t.Errorf("%s job %s runs Pulumi with environment %q, want a read-only preview-<stack>", name, job, env)
			}
		}
	}
}

func hasPulumiCommand(steps []struct {
	Uses string            `yaml:"uses"`
	With map[string]string `yaml:"with"`
}) bool {
	for _, s := range steps {
		if strings.HasPrefix(s.Uses, "pulumi/actions@") && s.With["command"] != "" {
			return true
		}
	}
	return false
}
