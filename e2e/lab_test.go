//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/fastapi-infra/fastapi-infra/deploy"
)

// lab is what TestMain set up once for every test.
var lab struct {
	repo, kubeconfig, pulumiHome string
	versions                     deploy.Versions
}

func TestMain(m *testing.M) {
	code, err := setUp(m)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: the lab could not be set up, so nothing was tested:\n%v\n", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setUp(m *testing.M) (int, error) {
	repo, err := filepath.Abs("..")
	if err != nil {
		return 0, err
	}
	lab.repo = repo
	if lab.versions, err = deploy.ReadVersions(repo); err != nil {
		return 0, err
	}
	cmd := exec.Command(filepath.Join(repo, "lab", "cluster.sh"), "start")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("lab/cluster.sh start: %w", err)
	}
	lab.kubeconfig = strings.TrimPrefix(strings.TrimSpace(string(out)), "KUBECONFIG=")
	// One Pulumi home for the run, with the lab's kubernetes plugin.
	if lab.pulumiHome, err = os.MkdirTemp("", "e2e-pulumi-home-"); err != nil {
		return 0, err
	}
	defer os.RemoveAll(lab.pulumiHome)
	return m.Run(), nil
}

// stack is one e2e stack: the project's Pulumi.yaml and Pulumi.prod.yaml
// copied into a temporary folder under a random stack name, a temporary
// file backend, and overrides that point it at the lab cluster.
type stack struct {
	auto.Stack
	name, namespace string
}

func newProdStack(t *testing.T, overrides map[string]string) *stack {
	t.Helper()
	ctx := context.Background()
	suffix := randomSuffix(t)
	name := "e2e-" + suffix
	work, backend := t.TempDir(), t.TempDir()
	copyFile(t, filepath.Join(lab.repo, "Pulumi.yaml"), filepath.Join(work, "Pulumi.yaml"))
	copyFile(t, filepath.Join(lab.repo, "Pulumi.prod.yaml"), filepath.Join(work, "Pulumi."+name+".yaml"))
	s, err := deploy.Open(ctx, deploy.Options{
		ProjectDir: work,
		RepoDir:    lab.repo,
		Stack:      name,
		Backend:    "file://" + backend,
		PulumiHome: lab.pulumiHome,
		Env:        map[string]string{"PULUMI_CONFIG_PASSPHRASE": "passphrase-" + randomSuffix(t)},
	})
	if err != nil {
		t.Fatalf("opening stack %s: %v", name, err)
	}
	st := &stack{Stack: s, name: name, namespace: "e2e-" + suffix}
	set := map[string]string{
		"kubernetes.kubeconfig": lab.kubeconfig,
		"kubernetes.namespace":  st.namespace,
		// kwok does not pull images: any reference runs.
		"app.image": "lab.local/fastapi-app:1.0.0",
	}
	for k, v := range overrides {
		set[k] = v
	}
	for k, v := range set {
		st.setPath(t, k, v)
	}
	if err := s.SetConfig(ctx, "fastapi-infra:dbPassword", auto.ConfigValue{Value: "pw-" + randomSuffix(t) + randomSuffix(t), Secret: true}); err != nil {
		t.Fatal(err)
	}
	if err := deploy.Preflight(ctx, s, stackConfig(t, s), os.Stderr); err != nil {
		t.Fatal(err)
	}
	if err := deploy.EnsurePlugin(ctx, s, stackConfig(t, s), lab.repo); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("stack %s kept for a look: backend %s, namespace %s", name, backend, st.namespace)
			return
		}
		if _, err := s.Destroy(ctx); err != nil {
			t.Errorf("cleanup destroy: %v", err)
		}
		_ = s.Workspace().RemoveStack(ctx, name)
	})
	return st
}

func (s *stack) setPath(t *testing.T, key, value string) {
	t.Helper()
	err := s.SetConfigWithOptions(context.Background(), "fastapi-infra:"+key, auto.ConfigValue{Value: value}, &auto.ConfigOptions{Path: true})
	if err != nil {
		t.Fatalf("setting %s: %v", key, err)
	}
}

// up runs `pulumi up` and returns the engine's output too, for messages.
func (s *stack) up(t *testing.T) (auto.UpResult, string, error) {
	t.Helper()
	var out bytes.Buffer
	start := time.Now()
	// Every await here ends in seconds; a hung one fails the test instead of
	// running into go test's timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := s.Up(ctx, optupProgress(&out)...)
	t.Logf("up %s: %s", s.name, time.Since(start).Round(time.Millisecond))
	return res, out.String(), err
}

// kubectl runs kubectl against the lab and decodes its JSON output.
func kubectl(t *testing.T, into any, args ...string) {
	t.Helper()
	cmd := exec.Command("kubectl", append([]string{"--kubeconfig", lab.kubeconfig, "-o", "json"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	if err := json.Unmarshal(out, into); err != nil {
		t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
}

func randomSuffix(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	raw, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}
