//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"

	"github.com/fastapi-infra/fastapi-infra/lab"
)

// TestDriftCheckUnderTheDocumentedRole runs the nightly drift workflow's
// command (drift.yml: pulumi preview --refresh --expect-no-changes) on a
// deployed prod stack with a kubeconfig bound to exactly the role
// docs/ci.md prescribes (.github/drift-role.yaml), where CI has it: the
// provider reads KUBECONFIG. The stack is deployed as the lab's admin;
// the check runs as the lab's drift user and must find no drift. Under
// the built-in view role, which the docs prescribed before, it fails: a
// refresh reads the stack's Secrets.
func TestDriftCheckUnderTheDocumentedRole(t *testing.T) {
	t.Parallel() // measures no load: runs beside another such test, after the load tests
	s := newStack(t, "prod", func(namespace string) map[string]string {
		set := env.lab.KwokStack(namespace)
		delete(set, "kubernetes.kubeconfig") // KUBECONFIG, as in CI
		set["app.image"] = "lab.local/fastapi-app:1.0.0"
		return set
	}, map[string]string{"alertWebhookUrl": "https://hooks.example.com/lab-e2e", "dbAppPassword": "app-pw-" + randomSuffix(t) + randomSuffix(t)})
	ctx := context.Background()
	as := func(kubeconfig string) { s.Workspace().SetEnvVar("KUBECONFIG", kubeconfig) }
	as(env.lab.Kubeconfig)
	t.Cleanup(func() { as(env.lab.Kubeconfig) }) // a look at a kept stack
	if _, out, err := s.up(t); err != nil {
		t.Fatalf("up: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	drift := func() (string, error) {
		as(env.lab.DriftKubeconfig())
		defer as(env.lab.Kubeconfig)
		var out bytes.Buffer
		_, err := s.Preview(ctx, optpreview.Refresh(), optpreview.ExpectNoChanges(), optpreview.ProgressStreams(&out), optpreview.ErrorProgressStreams(&out))
		return out.String(), err
	}

	// The built-in view role: no Secrets.
	kubectlRun(t, "create", "clusterrolebinding", "e2e-drift-view", "--clusterrole=view", "--user="+lab.DriftUser)
	out, err := drift()
	kubectlRun(t, "delete", "clusterrolebinding", "e2e-drift-view")
	if err == nil || !strings.Contains(out, `secrets "`) || !strings.Contains(out, "forbidden") {
		t.Errorf("the drift check under view: %v, want it refused the Secrets:\n%s", err, out)
	}

	role, err := os.ReadFile(filepath.Join(env.repo, ".github", "drift-role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	bound := strings.ReplaceAll(string(role), "name: drift@example.com", "name: "+lab.DriftUser)
	apply := exec.Command("kubectl", "--kubeconfig", env.lab.Kubeconfig, "apply", "-f", "-")
	apply.Stdin = strings.NewReader(bound)
	if out, err := apply.CombinedOutput(); err != nil {
		t.Fatalf("applying .github/drift-role.yaml: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		del := exec.Command("kubectl", "--kubeconfig", env.lab.Kubeconfig, "delete", "--ignore-not-found", "-f", "-")
		del.Stdin = strings.NewReader(bound)
		_ = del.Run()
	})

	if out, err := drift(); err != nil {
		t.Errorf("drift.yml's preview --refresh --expect-no-changes as %s under .github/drift-role.yaml: %v\n%s", lab.DriftUser, err, out)
	}
}
