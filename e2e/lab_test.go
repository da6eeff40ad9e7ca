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
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"

	"github.com/fastapi-infra/fastapi-infra/deploy"
	"github.com/fastapi-infra/fastapi-infra/lab"
	"github.com/fastapi-infra/fastapi-infra/lab/dockerstack"
)

// env is what TestMain set up once for every test.
var env struct {
	repo, pulumiHome string
	lab              *lab.Lab
}

func TestMain(m *testing.M) {
	code, err := setUp(m)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: the lab could not be set up, so nothing was tested:\n%v\n", err)
		os.Exit(1)
	}
	os.Exit(code)
}

// setUp starts the lab (control plane, kwok's fake nodes and the real
// node), runs the tests, and stops the lab unless a test failed: then it
// keeps running, with the failed stacks, for a look.
func setUp(m *testing.M) (int, error) {
	repo, err := filepath.Abs("..")
	if err != nil {
		return 0, err
	}
	env.repo = repo
	env.lab, err = lab.New(lab.Config{Repo: repo, Kwok: true, RealNode: true, Progress: os.Stderr})
	if err != nil {
		return 0, err
	}
	if err := env.lab.Start(context.Background()); err != nil {
		return 0, err
	}
	// One Pulumi home for the run, with the toolchain's kubernetes plugin.
	if env.pulumiHome, err = os.MkdirTemp("", "e2e-pulumi-home-"); err != nil {
		return 0, err
	}
	defer os.RemoveAll(env.pulumiHome)
	code := m.Run()
	if code != 0 || os.Getenv("FASTAPI_INFRA_LAB_KEEP") != "" {
		fmt.Fprintf(os.Stderr, "e2e: the lab keeps running for a look: KUBECONFIG=%s, logs in %s; stop it with: go run ./cmd/lab stop\n",
			env.lab.Kubeconfig, filepath.Join(env.lab.State, "logs"))
		return code, nil
	}
	return code, env.lab.Stop(context.Background())
}

// stack is one e2e stack: the project's Pulumi.yaml and a stack file in a
// folder of the lab's state under a random stack name, with its own file
// backend, pointed at the lab cluster.
type stack struct {
	auto.Stack
	name, namespace string
	dir             string // the stack's folder: project, backend, engine logs
	passphrase      string
	ups             int
	renders         bool // kubernetes.renderYamlTo: no cluster
	// secrets are the secret values the stack was given, for the tests
	// that look for them where they must not be.
	secrets []string
}

// newStack makes a stack from a shipped stack file (shipped "prod"), or
// from Pulumi.yaml's defaults alone (shipped ""), with the path overrides
// config returns for the stack's namespace, and secrets. Its folder is
// removed when the test passes and kept (with the backend, so `pulumi` can
// still read the state) when it fails.
func newStack(t *testing.T, shipped string, config func(namespace string) map[string]string, secrets map[string]string) *stack {
	t.Helper()
	ctx := context.Background()
	suffix := randomSuffix(t)
	name := "e2e-" + suffix
	dir := filepath.Join(env.lab.State, "stacks", name)
	work, backend := filepath.Join(dir, "project"), filepath.Join(dir, "backend")
	for _, d := range []string{work, backend} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, filepath.Join(env.repo, "Pulumi.yaml"), filepath.Join(work, "Pulumi.yaml"))
	stackFile := filepath.Join(work, "Pulumi."+name+".yaml")
	if shipped != "" {
		copyFile(t, filepath.Join(env.repo, "Pulumi."+shipped+".yaml"), stackFile)
	} else if err := os.WriteFile(stackFile, []byte("config: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	passphrase := "passphrase-" + randomSuffix(t)
	s, err := deploy.Open(ctx, deploy.Options{
		ProjectDir: work,
		Stack:      name,
		Backend:    "file://" + backend,
		PulumiHome: env.pulumiHome,
		Env:        map[string]string{"PULUMI_CONFIG_PASSPHRASE": passphrase},
		Progress:   os.Stderr,
	})
	if err != nil {
		t.Fatalf("opening stack %s: %v", name, err)
	}
	st := &stack{Stack: s, name: name, namespace: "e2e-" + suffix, dir: dir, passphrase: passphrase}
	for k, v := range config(st.namespace) {
		st.renders = st.renders || k == "kubernetes.renderYamlTo"
		st.setPath(t, k, v)
	}
	if secrets == nil {
		secrets = map[string]string{}
	}
	if _, ok := secrets["dbPassword"]; !ok {
		secrets["dbPassword"] = "pw-" + randomSuffix(t) + randomSuffix(t)
	}
	for k, v := range secrets {
		if err := s.SetConfig(ctx, "fastapi-infra:"+k, auto.ConfigValue{Value: v, Secret: true}); err != nil {
			t.Fatal(err)
		}
		st.secrets = append(st.secrets, v)
	}
	cfg := stackConfig(t, s)
	if err := deploy.Preflight(ctx, s, cfg, os.Stderr); err != nil {
		t.Fatal(err)
	}
	if err := deploy.EnsurePlugin(ctx, s.Workspace(), deploy.Architecture(cfg), os.Stderr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("stack %s kept for a look: PULUMI_BACKEND_URL=file://%s PULUMI_CONFIG_PASSPHRASE=%s, project %s, namespace %s",
				name, backend, passphrase, work, st.namespace)
			return
		}
		// Everything a stack makes lives in its namespace (the stack
		// makes the namespace too): deleting it, without waiting for the
		// namespace controller, takes a second where a `pulumi destroy`
		// awaited each deletion (destroy's own tests call it). The
		// stack's state goes with its folder.
		cmd := exec.Command("kubectl", "--kubeconfig", env.lab.Kubeconfig, "delete", "namespace", st.namespace, "--wait=false", "--ignore-not-found")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("cleanup: deleting namespace %s: %v\n%s", st.namespace, err, out)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return st
}

// newProdStack is the prod stack file on kwok's fake nodes (its managed
// database does not exist, which only fake pods can ignore), with a webhook
// receiver for its alerts.
func newProdStack(t *testing.T, overrides map[string]string) *stack {
	t.Helper()
	return newStack(t, "prod", func(namespace string) map[string]string {
		set := env.lab.KwokStack(namespace)
		// kwok does not pull images: any reference runs.
		set["app.image"] = "lab.local/fastapi-app:1.0.0"
		for k, v := range overrides {
			set[k] = v
		}
		return set
	}, map[string]string{"alertWebhookUrl": "https://hooks.example.com/lab-e2e",
		// Pulumi.prod.yaml's app role on its managed database.
		"dbAppPassword": "app-pw-" + randomSuffix(t) + randomSuffix(t)})
}

func (s *stack) setPath(t *testing.T, key, value string) {
	t.Helper()
	err := s.SetConfigWithOptions(context.Background(), "fastapi-infra:"+key, auto.ConfigValue{Value: value}, &auto.ConfigOptions{Path: true})
	if err != nil {
		t.Fatalf("setting %s: %v", key, err)
	}
}

// setList sets a list key element by element (a path value is a string),
// after removing the old list.
func (s *stack) setList(t *testing.T, key string, values ...string) {
	t.Helper()
	_ = s.RemoveConfigWithOptions(context.Background(), "fastapi-infra:"+key, &auto.ConfigOptions{Path: true})
	for i, v := range values {
		s.setPath(t, fmt.Sprintf("%s[%d]", key, i), v)
	}
}

// up runs `pulumi up` and returns the engine's output too, for messages.
func (s *stack) up(t *testing.T) (auto.UpResult, string, error) {
	t.Helper()
	var out bytes.Buffer
	start := time.Now()
	// Every await here ends in seconds to a minute; a hung one fails the
	// test instead of running into go test's timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := s.Up(ctx, optupProgress(&out)...)
	t.Logf("up %s: %s", s.name, time.Since(start).Round(time.Millisecond))
	// Every up's engine output stays beside the stack, for a look when a
	// later step fails.
	s.ups++
	_ = os.WriteFile(filepath.Join(s.dir, fmt.Sprintf("up-%d.log", s.ups)), out.Bytes(), 0o644)
	if err == nil {
		s.checkNoChanges(t)
	}
	return res, out.String(), err
}

// checkNoChanges: after an up that succeeded, a preview proposes nothing
// and a refresh finds the cluster as the state says, as Pulumi's own
// integration tests check after every update. A perpetual diff would
// show here as a change on every up (dockerstack.NoChanges).
func (s *stack) checkNoChanges(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// A stack that renders manifests (kubernetes.renderYamlTo) has no
	// cluster to refresh from.
	c := dockerstack.NoChanges(ctx, s.Stack, !s.renders)
	if c.PreviewErr != nil {
		t.Errorf("the preview after up %d of %s proposes changes: %v\n%s", s.ups, s.name, c.PreviewErr, c.Preview)
	}
	if c.RefreshErr != nil {
		t.Errorf("the refresh after up %d of %s finds drift: %v\n%s", s.ups, s.name, c.RefreshErr, c.Refresh)
	}
}

// preview runs `pulumi preview` and returns the engine's output too.
func (s *stack) preview(t *testing.T) (string, string, error) {
	t.Helper()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := s.Preview(ctx, optpreview.ProgressStreams(&out))
	return res.StdOut, out.String(), err
}

// kubectl runs kubectl against the lab and decodes its JSON output.
func kubectl(t *testing.T, into any, args ...string) {
	t.Helper()
	cmd := exec.Command("kubectl", append([]string{"--kubeconfig", env.lab.Kubeconfig, "-o", "json"}, args...)...)
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

// kubectlRun returns what kubectl wrote to stdout; its stderr goes only
// into the failure message. Combined, client-go's warnings landed in the
// result: a restore drill read its rows back as "E1127 ... websocket.go:296]
// Unknown stream id 1, discarding message\ndrill-1:kept,...".
func kubectlRun(t *testing.T, args ...string) string {
	t.Helper()
	var stderr strings.Builder
	cmd := exec.Command("kubectl", append([]string{"--kubeconfig", env.lab.Kubeconfig}, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
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
