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
	On   map[string]any `yaml:"on"`
	Jobs map[string]struct {
		If          string `yaml:"if"`
		Environment string `yaml:"environment"`
		Strategy    struct {
			Matrix struct {
				Stack []string `yaml:"stack"`
			} `yaml:"matrix"`
		} `yaml:"strategy"`
		Steps []struct {
			Uses string            `yaml:"uses"`
			Run  string            `yaml:"run"`
			With map[string]string `yaml:"with"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

// environments are the GitHub environments a job names, one per stack of
// its matrix when the name is made from it.
func environments(env string, stacks []string) []string {
	if !strings.Contains(env, "${{ matrix.stack }}") {
		return []string{env}
	}
	var out []string
	for _, s := range stacks {
		out = append(out, strings.ReplaceAll(env, "${{ matrix.stack }}", s))
	}
	return out
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
				if driverUp(s.Run) != "" {
					deploys = true
				}
			}
			for _, env := range environments(j.Environment, j.Strategy.Matrix.Stack) {
				switch {
				case deploys && env != "development" && env != "production":
					t.Errorf("%s job %s deploys from environment %q, want development or production", name, job, env)
				case !deploys && (env == "development" || env == "production"):
					t.Errorf("%s job %s does not deploy but names the deploy environment %q", name, job, env)
				case !deploys && hasPulumiCommand(j.Steps) && !strings.HasPrefix(env, "preview-") && !strings.HasPrefix(env, "drift-"):
					t.Errorf("%s job %s runs Pulumi with environment %q, want a read-only preview-<stack> or drift-<stack>", name, job, env)
				}
			}
		}
	}
}

func hasPulumiCommand(steps []struct {
	Uses string            `yaml:"uses"`
	Run  string            `yaml:"run"`
	With map[string]string `yaml:"with"`
}) bool {
	for _, s := range steps {
		if strings.HasPrefix(s.Uses, "pulumi/actions@") && s.With["command"] != "" {
			return true
		}
	}
	return false
}

// TestOnlyReviewedCodeDecryptsProd: a job that holds prod's passphrase or
// token can decrypt prod's secrets, and runs the program of the ref it
// was started on. A pull request's branch is unreviewed code: its prod
// preview must wait for a reviewer (the preview-prod environment, whose
// required reviewers docs/ci.md prescribes). Any other workflow naming a
// prod environment runs on main only: triggered by a push to main, or
// guarded by an if on refs/heads/main (workflow_dispatch can name any
// branch) in an environment that only main may use.
func TestOnlyReviewedCodeDecryptsProd(t *testing.T) {
	docs, err := os.ReadFile("../docs/ci.md")
	if err != nil {
		t.Fatal(err)
	}
	protection := func(env string) string {
		for _, line := range strings.Split(string(docs), "\n") {
			if cells := strings.Split(line, "|"); len(cells) > 3 && strings.Contains(cells[1], "`"+env+"`") {
				return cells[2]
			}
		}
		return ""
	}
	prodJobs := 0
	for name, w := range workflows(t) {
		_, onPR := w.On["pull_request"]
		_, onTarget := w.On["pull_request_target"]
		for job, j := range w.Jobs {
			for _, env := range environments(j.Environment, j.Strategy.Matrix.Stack) {
				if env != "production" && !strings.HasSuffix(env, "-prod") {
					continue
				}
				prodJobs++
				if onTarget {
					t.Errorf("%s job %s: pull_request_target runs with the base repository's secrets; prod's never go near a pull request's code", name, job)
				}
				if onPR {
					if env != "preview-prod" {
						t.Errorf("%s job %s: a pull request's job names %q; prod's preview goes through preview-prod (required reviewers)", name, job, env)
					}
					if !strings.Contains(protection(env), "required reviewers") {
						t.Errorf("docs/ci.md: %s must say it has required reviewers (its row says %q): a pull request's code would decrypt prod unreviewed", env, protection(env))
					}
					continue
				}
				if !onlyMain(w.On) && !strings.Contains(j.If, "github.ref == 'refs/heads/main'") {
					t.Errorf("%s job %s names %q but can run on any branch: guard it with if: github.ref == 'refs/heads/main'", name, job, env)
				}
				if !strings.Contains(protection(env), "main only") {
					t.Errorf("docs/ci.md: %s must say only main may use it (its row says %q)", env, protection(env))
				}
			}
		}
	}
	if prodJobs == 0 {
		t.Fatal("no workflow job names a prod environment: the test reads nothing")
	}
}

// onlyMain: the workflow's one trigger is a push to main.
func onlyMain(on map[string]any) bool {
	push, ok := on["push"].(map[string]any)
	if len(on) != 1 || !ok {
		return false
	}
	branches, _ := push["branches"].([]any)
	return len(branches) == 1 && branches[0] == "main"
}

// driverUp is the stack a step's `go run ./cmd/fastapi-infra --yes up
// STACK` updates, or "".
func driverUp(run string) string {
	const cmd = "go run ./cmd/fastapi-infra --yes up "
	if !strings.HasPrefix(strings.TrimSpace(run), cmd) {
		return ""
	}
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(run), cmd))
}

// TestCIDeploysThroughTheDriver: CI updates each stack with the driver,
// whose guards (a PostgreSQL major upgrade read from the state, the rerun
// of a migration the last up left failed) plain pulumi up does not have;
// no workflow runs pulumi up itself.
func TestCIDeploysThroughTheDriver(t *testing.T) {
	updated := map[string]bool{}
	for name, w := range workflows(t) {
		for job, j := range w.Jobs {
			for _, s := range j.Steps {
				if strings.HasPrefix(s.Uses, "pulumi/actions@") && s.With["command"] == "up" {
					t.Errorf("%s job %s runs plain pulumi up; use go run ./cmd/fastapi-infra --yes up <stack>", name, job)
				}
				if stack := driverUp(s.Run); stack != "" {
					updated[stack] = true
					if j.Environment != map[string]string{"dev": "development", "prod": "production"}[stack] {
						t.Errorf("%s job %s updates %s from environment %q", name, job, stack, j.Environment)
					}
				}
			}
		}
	}
	if !updated["dev"] || !updated["prod"] {
		t.Errorf("the driver updates %v in CI, want dev and prod", updated)
	}
}
