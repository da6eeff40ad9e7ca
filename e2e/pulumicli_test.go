//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"

	"github.com/fastapi-infra/fastapi-infra/deploy"
	"github.com/fastapi-infra/fastapi-infra/internal/dockerapi"
	"github.com/fastapi-infra/fastapi-infra/lab"
	"github.com/fastapi-infra/fastapi-infra/lab/dockerstack"
	"github.com/fastapi-infra/fastapi-infra/stacks"
)

// TestPlainPulumiUpIsTheDriversStack runs the dev stack as users and
// deploy.yml run it, plain `pulumi up` with the Go language host building
// main.go, on the real docker provider and this machine's engine; then a
// second `pulumi preview` must be empty, and so must the driver's own
// preview of the same stack (the program in-process, as ./infra runs it):
// both ways make the same stack. The stack is the shipped Pulumi.dev.yaml
// with names, ports, subnet and images of its own, in the repository
// folder (the language host builds the module there) under a stack name
// of its own, whose file is removed at the end.
func TestPlainPulumiUpIsTheDriversStack(t *testing.T) {
	t.Parallel() // measures no load: runs beside another such test, after the load tests
	ctx := context.Background()
	hostDir, err := dockerstack.GoLanguageHost()
	if err != nil {
		t.Fatal(err)
	}
	pl, err := dockerstack.New(ctx, t.TempDir(), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	images, err := lab.Images(ctx, env.repo, "dev")
	if err != nil {
		t.Fatal(err)
	}
	name := "e2e-cli-" + randomSuffix(t)
	prefix := "e2ecli" + randomSuffix(t)[:4]
	backend, passphrase := t.TempDir(), "cli-"+randomSuffix(t)
	stackFile := filepath.Join(env.repo, "Pulumi."+name+".yaml")
	copyFile(t, filepath.Join(env.repo, "Pulumi.dev.yaml"), stackFile)
	httpsPort := freePort(t)
	docker := dockerapi.NewClient("")
	t.Cleanup(func() {
		_ = os.Remove(stackFile)
		for _, v := range []string{"db-data", "backups"} {
			_ = docker.RemoveVolume(ctx, prefix+"-"+v)
		}
	})
	// The CLI as a user runs it: its own Pulumi home (with the docker
	// plugin), the language host on PATH, a file backend; stdin, when not
	// nil, is what it reads (a secret's value).
	pulumiWith := func(stdin io.Reader, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, pl.CLI(), append(args, "--stack", name, "--non-interactive")...)
		cmd.Dir, cmd.Stdin = env.repo, stdin
		cmd.Env = append(os.Environ(), "PATH="+hostDir+":"+os.Getenv("PATH"), "PULUMI_HOME="+pl.Home(),
			"PULUMI_BACKEND_URL=file://"+backend, "PULUMI_CONFIG_PASSPHRASE="+passphrase, "PULUMI_SKIP_UPDATE_CHECK=true")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	pulumi := func(args ...string) (string, error) { return pulumiWith(nil, args...) }
	if out, err := pulumi("stack", "init"); err != nil {
		t.Fatalf("pulumi stack init: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("stack %s kept for a look: PULUMI_BACKEND_URL=file://%s PULUMI_CONFIG_PASSPHRASE=%s", name, backend, passphrase)
			return
		}
		if out, err := pulumi("destroy", "--yes", "--skip-preview"); err != nil {
			t.Errorf("pulumi destroy: %v\n%s", err, out)
		}
		_, _ = pulumi("stack", "rm", "--yes")
	})
	set := map[string]string{
		"docker.namePrefix": prefix, "docker.subnet": fmt.Sprintf("172.29.%d.0/24", freePort(t)%200+20),
		"proxy.httpPort": fmt.Sprint(freePort(t)), "proxy.httpsPort": fmt.Sprint(httpsPort),
		"app.image": images["APP"], "db.image": images["POSTGRES"], "proxy.image": images["NGINX"],
	}
	for k, v := range set {
		if out, err := pulumi("config", "set", "--path", "fastapi-infra:"+k, v); err != nil {
			t.Fatalf("pulumi config set %s: %v\n%s", k, err, out)
		}
	}
	for k, v := range map[string]string{"dbPassword": "cli-pw-" + randomSuffix(t), "rolloutKey": randomSuffix(t) + randomSuffix(t) + randomSuffix(t) + randomSuffix(t) + randomSuffix(t)} {
		if out, err := pulumiWith(strings.NewReader(v), "config", "set", "--secret", "fastapi-infra:"+k); err != nil {
			t.Fatalf("pulumi config set --secret %s: %v\n%s", k, err, out)
		}
	}

	start := time.Now()
	out, err := pulumi("up", "--yes", "--skip-preview")
	t.Logf("pulumi up (language host, main.go) in %s", time.Since(start).Round(100*time.Millisecond))
	if err != nil {
		t.Fatalf("pulumi up: %v\n%s", err, out)
	}
	if !strings.Contains(out, "created") {
		t.Errorf("pulumi up created nothing:\n%s", out)
	}
	if out, err := pulumi("preview", "--expect-no-changes", "--diff"); err != nil {
		t.Errorf("a second pulumi preview proposes changes: %v\n%s", err, out)
	}
	// A PostgreSQL major upgrade through db.image is refused by the program
	// itself, without the driver (CI's deploy runs plain pulumi up), and
	// nothing changes.
	major, ok := stacks.PostgresMajor(images["POSTGRES"])
	if !ok {
		t.Fatalf("the local database image %s has no major version in its tag", images["POSTGRES"])
	}
	next := strings.Replace(images["POSTGRES"], fmt.Sprintf(":%d", major), fmt.Sprintf(":%d", major+1), 1)
	if out, err := pulumi("config", "set", "--path", "fastapi-infra:db.image", next); err != nil {
		t.Fatalf("pulumi config set db.image: %v\n%s", err, out)
	}
	out, err = pulumi("up", "--yes", "--skip-preview")
	if err == nil || !strings.Contains(out, fmt.Sprintf("is PostgreSQL %d, but the stack's database runs %s, PostgreSQL %d", major+1, images["POSTGRES"], major)) {
		t.Errorf("pulumi up of PostgreSQL %d over %d: %v, want the major-version refusal:\n%s", major+1, major, err, out)
	}
	if out, err := pulumi("config", "set", "--path", "fastapi-infra:db.image", images["POSTGRES"]); err != nil {
		t.Fatalf("pulumi config set db.image: %v\n%s", err, out)
	}
	// The driver's view of the same stack: the program in this process.
	s, err := deploy.Open(ctx, deploy.Options{ProjectDir: env.repo, Stack: name, Backend: "file://" + backend, PulumiHome: pl.Home(),
		Env: map[string]string{"PULUMI_CONFIG_PASSPHRASE": passphrase}})
	if err != nil {
		t.Fatal(err)
	}
	var preview bytes.Buffer
	if _, err := s.Preview(ctx, optpreview.ExpectNoChanges(), optpreview.Diff(), optpreview.ProgressStreams(&preview)); err != nil {
		t.Errorf("the driver's preview of the stack plain pulumi up made proposes changes: %v\n%s", err, preview.String())
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", httpsPort))
		}}}
	resp, err := client.Get("https://localhost/health/ready")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("HTTPS /health/ready through the stack plain pulumi up made: %d", resp.StatusCode)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := lab.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}
