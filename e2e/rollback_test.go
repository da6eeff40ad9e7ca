//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fastapi-infra/fastapi-infra/internal/dockerapi"
	"github.com/fastapi-infra/fastapi-infra/internal/loadgen"
	"github.com/fastapi-infra/fastapi-infra/lab"
	"github.com/fastapi-infra/fastapi-infra/lab/dockerstack"
)

// TestRollbackOnRealDocker runs ./infra rollback on a single server, the
// driver binary on the real engine with the real docker provider: two
// releases (app.env RELEASE 1 then 2), a rollback under 50 req/s that
// loses no request and leaves the replicas and the stack file on release
// 1; an unknown --to that lists what it can go back to; and a release
// whose migration 0002 the older image does not know, which a rollback
// refuses through that image's failing migration, naming the revision,
// while the running release serves on and the stack file is put back.
func TestRollbackOnRealDocker(t *testing.T) {
	ctx := context.Background()
	pl, err := dockerstack.New(ctx, t.TempDir(), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	images, err := lab.Images(ctx, env.repo, "dev")
	if err != nil {
		t.Fatal(err)
	}
	name := "e2e-rb-" + randomSuffix(t)
	prefix := "e2erb" + randomSuffix(t)[:4]
	project, backend, passphrase := t.TempDir(), t.TempDir(), "rb-"+randomSuffix(t)
	httpsPort := freePort(t)
	copyFile(t, filepath.Join(env.repo, "Pulumi.yaml"), filepath.Join(project, "Pulumi.yaml"))
	stackFile := filepath.Join(project, "Pulumi."+name+".yaml")
	conf := fmt.Sprintf(`config:
  fastapi-infra:architecture: single-server
  fastapi-infra:environment: development
  fastapi-infra:domain: localhost
  fastapi-infra:docker:
    refreshImages: false
    namePrefix: %s
    subnet: 172.28.%d.0/24
  fastapi-infra:app:
    image: %s
    replicas: 2
    env:
      RELEASE: "1"
  fastapi-infra:db:
    image: %s
  fastapi-infra:tls:
    mode: self-signed
  fastapi-infra:proxy:
    image: %s
    httpPort: %d
    httpsPort: %d
`, prefix, freePort(t)%200+20, images["APP"], images["POSTGRES"], images["NGINX"], freePort(t), httpsPort)
	if err := os.WriteFile(stackFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	environ := append(os.Environ(), "PULUMI_CONFIG_PASSPHRASE="+passphrase, "PULUMI_HOME="+pl.Home(), "PULUMI_SKIP_UPDATE_CHECK=true",
		"PULUMI_BACKEND_URL=file://"+backend)
	run := func(bin string, args ...string) (string, string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = project, environ
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	driver := func(args ...string) (string, string, error) {
		return run(driverBinary(t), append([]string{"--dir", project}, args...)...)
	}
	config := func(key string) string {
		out, _, err := run(pl.CLI(), "config", "get", "--path", "fastapi-infra:"+key, "--stack", name)
		if err != nil {
			t.Fatalf("pulumi config get %s: %v", key, err)
		}
		return strings.TrimSpace(out)
	}
	setConfig := func(key, value string) {
		if out, errs, err := run(pl.CLI(), "config", "set", "--path", "fastapi-infra:"+key, value, "--stack", name); err != nil {
			t.Fatalf("pulumi config set %s: %v\n%s%s", key, err, out, errs)
		}
	}
	docker := dockerapi.NewClient("")
	t.Cleanup(func() {
		if _, errs, err := driver("destroy", name, "--yes"); err != nil {
			t.Errorf("destroy: %v\n%s", err, errs)
		}
		for _, v := range []string{"db-data", "backups"} {
			_ = docker.RemoveVolume(ctx, prefix+"-"+v)
		}
	})
	up := func(what string) {
		t.Helper()
		start := time.Now()
		if _, errs, err := driver("up", name, "--yes"); err != nil {
			t.Fatalf("up (%s): %v\n%s", what, err, errs)
		}
		t.Logf("up (%s): %s", what, time.Since(start).Round(100*time.Millisecond))
	}
	imageID := func(ref string) string {
		out, err := exec.Command("docker", "image", "inspect", "-f", "{{.Id}}", ref).Output()
		if err != nil {
			t.Fatalf("docker image inspect %s: %v", ref, err)
		}
		return strings.TrimSpace(string(out))
	}
	// What the replicas run: each one's image ID and RELEASE.
	replicas := func() []string {
		found, err := docker.List(ctx, "fastapi-infra.release")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for n, id := range found {
			if !strings.HasPrefix(n, prefix+"-app-") {
				continue
			}
			var doc struct {
				Image  string // the image's ID
				Config struct{ Env []string }
			}
			if err := docker.InspectInto(ctx, id, &doc); err != nil {
				t.Fatal(err)
			}
			release := ""
			for _, e := range doc.Config.Env {
				if v, ok := strings.CutPrefix(e, "RELEASE="); ok {
					release = v
				}
			}
			out = append(out, doc.Image+" RELEASE="+release)
		}
		slices.Sort(out)
		return out
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", httpsPort))
		}}}
	url := "https://localhost/health/ready"

	up("release 1")
	setConfig("app.env.RELEASE", "2")
	up("release 2")
	app := imageID(images["APP"])
	release := func(n string) []string { return []string{app + " RELEASE=" + n, app + " RELEASE=" + n} }
	if got := replicas(); !slices.Equal(got, release("2")) {
		t.Fatalf("replicas after release 2: %v", got)
	}

	load := loadgen.Start(client, func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, "GET", url, nil)
	}, loadgen.Options{Rate: 50, Max: 3 * time.Minute})
	time.Sleep(time.Second)
	start := time.Now()
	_, errs, err := driver("rollback", name, "--yes")
	took := time.Since(start)
	time.Sleep(time.Second)
	res := load.Stop()
	if err != nil {
		t.Fatalf("rollback: %v\n%s", err, errs)
	}
	t.Logf("rollback to release 1 in %s under 50 req/s: %s", took.Round(100*time.Millisecond), res)
	if res.Failed > 0 {
		t.Errorf("%d of %d requests failed during the rollback: %v", res.Failed, res.Sent, res.Errors)
	}
	if !strings.Contains(errs, "goes back to the release of update #1 ") {
		t.Errorf("the rollback did not say it goes back to update #1:\n%s", errs)
	}
	if got := replicas(); !slices.Equal(got, release("1")) {
		t.Errorf("replicas after the rollback: %v, want %v", got, release("1"))
	}
	if got := config("app.env.RELEASE"); got != "1" {
		t.Errorf("the stack file says app.env.RELEASE %q after the rollback, want 1", got)
	}
	if out, _, err := driver("preview", name, "--expect-no-changes"); err != nil {
		t.Errorf("a preview after the rollback proposes changes: %v\n%s", err, out)
	}

	_, errs, err = driver("rollback", name, "--to", "99", "--yes")
	if err == nil || !strings.Contains(errs, "update #99 is not a successful update") || !strings.Contains(errs, "#2  ") {
		t.Errorf("rollback --to 99: %v, want the refusal listing update #2:\n%s", err, errs)
	}

	// A release that adds migration 0002; the release before it cannot
	// run on that schema (alembic does not know the revision), so a
	// rollback to it fails in its migration and changes nothing.
	newer := "fastapi-infra-app:e2e-rb-" + randomSuffix(t)
	if out, err := exec.Command("docker", "build", "-q", "-t", newer, "--build-arg", "APP="+images["APP"], filepath.Join(env.repo, "e2e", "testdata", "migration-0002")).CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", newer, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", newer).Run() })
	setConfig("app.image", newer)
	up("release with migration 0002")
	out, errs, err := driver("rollback", name, "--yes")
	t.Logf("the refused rollback:\n%s\n%s", out, errs)
	if err == nil || !strings.Contains(errs, "0002") || !strings.Contains(errs, "the stack's config is back to app.image="+newer) {
		t.Errorf("a rollback past migration 0002: %v, want the older migration's failure naming 0002 and the config put back:\n%s", err, errs)
	}
	if got := config("app.image"); got != newer {
		t.Errorf("after the refused rollback the stack file says app.image %q, want %s", got, newer)
	}
	if got, id := replicas(), imageID(newer); len(got) != 2 || !strings.HasPrefix(got[0], id+" ") || !strings.HasPrefix(got[1], id+" ") {
		t.Errorf("after the refused rollback the replicas run %v, want %s (%s)", got, newer, id)
	}
	if resp, err := client.Get(url); err != nil || resp.StatusCode != 200 {
		t.Errorf("after the refused rollback: %v %v", resp, err)
	}

	// The day-2 verbs on a remote host: docker.host ssh://, an sshd on
	// 127.0.0.1 in front of this engine (they once refused anything but a
	// unix socket). Config only: no up goes through it.
	ssh := startSSHD(t)
	setConfig("docker.host", ssh.URL)
	environ = append(environ, "PATH="+ssh.PathDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, errs, err = driver("logs", name, "--service", "app", "--since", "30m")
	if err != nil || !strings.Contains(out, " app-") {
		t.Errorf("logs over ssh: %v\n%.300s%s", err, out, errs)
	}
	// logs -f: a request made while it follows shows up (the proxy's
	// access line), and Ctrl-C ends it.
	follow := exec.Command(driverBinary(t), "--dir", project, "logs", name, "-f", "--service", "proxy")
	follow.Dir, follow.Env = project, environ
	var followed syncBuffer
	follow.Stdout, follow.Stderr = &followed, &followed
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	waitOutput := func(what string) bool {
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if strings.Contains(followed.String(), what) {
				return true
			}
		}
		return false
	}
	// Its first read printed the proxy's lines so far; the request's line
	// comes from a later one.
	if waitOutput("proxy | ") {
		if resp, err := client.Get("https://localhost/health/live?follow-me"); err == nil {
			resp.Body.Close()
		}
		waitOutput("follow-me")
	}
	_ = follow.Process.Signal(os.Interrupt)
	if err := follow.Wait(); exitStatus(err) != 130 || !strings.Contains(followed.String(), "follow-me") {
		t.Errorf("logs -f over ssh: exit %d (%v), want the request's line and 130 on Ctrl-C:\n%s", exitStatus(err), err, followed.String())
	}
	out, errs, err = driver("exec", name, "--", "python3", "-c", `import os; print("release", os.environ["RELEASE"]); raise SystemExit(4)`)
	if code := exitStatus(err); code != 4 || !strings.Contains(out, "release 1") {
		t.Errorf("exec over ssh: exit %d (%v), output %q %s; want release 1 and exit 4", code, err, out, errs)
	}
	// exec -i over ssh: a pipe's input reaches the command, and its end is
	// the command's end of file (read() returns).
	piped := exec.Command(driverBinary(t), "--dir", project, "exec", "-i", name, "--", "python3", "-c", `import sys; data = sys.stdin.read(); print("read", len(data), data.split()); raise SystemExit(3)`)
	piped.Dir, piped.Env, piped.Stdin = project, environ, strings.NewReader("hello\nworld\n")
	pipedOut, err := piped.CombinedOutput()
	if code := exitStatus(err); code != 3 || !strings.Contains(string(pipedOut), "read 12 ['hello', 'world']") {
		t.Errorf("exec -i over ssh: exit %d (%v), output %q; want the 12 bytes it was given and exit 3", code, err, pipedOut)
	}
	// exec -it: a terminal on both sides (script(1) gives the driver one).
	shell := fmt.Sprintf("%s --dir %s exec -it %s -- python3 -c 'import sys; print(\"tty\", sys.stdin.isatty(), sys.stdout.isatty(), input(\"name? \"))'", driverBinary(t), project, name)
	tty := exec.Command("script", "-qec", shell, "/dev/null")
	// TERM=dumb: bubbletea's init (through the Pulumi SDK) asks the
	// terminal for its background colour and reads stdin for the answer
	// for up to 5 s; script(1)'s terminal never answers.
	tty.Dir, tty.Env, tty.Stdin = project, append(slices.Clone(environ), "TERM=dumb"), strings.NewReader("ada\n")
	ttyOut, err := tty.CombinedOutput()
	if err != nil || !strings.Contains(string(ttyOut), "tty True True ada") {
		t.Errorf("exec -it under a terminal: %v, output %q; want the command on a terminal reading the typed line", err, ttyOut)
	}
	if _, errs, err := driver("maintenance", "on", name, "--message", "over ssh"); err != nil {
		t.Errorf("maintenance on over ssh: %v\n%s", err, errs)
	}
	if resp, err := client.Get(url); err != nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("in maintenance: %v %v, want 503 with Retry-After", resp, err)
	}
	if _, errs, err := driver("maintenance", "off", name); err != nil {
		t.Errorf("maintenance off over ssh: %v\n%s", err, errs)
	}
	if resp, err := client.Get(url); err != nil || resp.StatusCode != 200 {
		t.Errorf("after maintenance off: %v %v", resp, err)
	}
	if out, errs, err := driver("backup", name); err != nil || !strings.Contains(out, "backup: wrote app-") {
		t.Errorf("backup over ssh: %v\n%s%s", err, out, errs)
	}
	if out, errs, err := driver("restore", name); err != nil || !strings.Contains(out, ".dump") {
		t.Errorf("the list of backups over ssh: %v\n%s%s", err, out, errs)
	}
	// A restore over ssh interrupted mid-way says what state the stack is
	// in and the command that finishes, never "nothing was changed"; that
	// command then brings the service back.
	list, _, _ := driver("restore", name)
	var dump string
	for _, l := range strings.Split(list, "\n") {
		if strings.HasSuffix(l, ".dump") && dump == "" {
			dump = strings.TrimSpace(l)
		}
	}
	interrupted := exec.Command(driverBinary(t), "--dir", project, "restore", name, "--from", dump, "--yes")
	interrupted.Dir, interrupted.Env = project, environ
	var said syncBuffer
	interrupted.Stdout, interrupted.Stderr = &said, &said
	if err := interrupted.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(said.String(), "restore: stopping"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the restore did not start stopping the replicas within 60 s:\n%s", said.String())
		}
	}
	_ = interrupted.Process.Signal(os.Interrupt)
	err = interrupted.Wait()
	finish := "./infra restore " + name + " --from " + dump + " --yes"
	if exitStatus(err) != 130 || !strings.Contains(said.String(), "restore: interrupted after") || !strings.Contains(said.String(), finish) || strings.Contains(said.String(), "nothing was changed") {
		t.Errorf("an interrupted restore: exit %d, want 130, the state and %q:\n%s", exitStatus(err), finish, said.String())
	}
	if _, errs, err := driver("restore", name, "--from", dump, "--yes"); err != nil {
		t.Errorf("the restore that finishes (over ssh): %v\n%s", err, errs)
	}
	if resp, err := client.Get(url); err != nil || resp.StatusCode != 200 {
		t.Errorf("after the finishing restore: %v %v", resp, err)
	}
	// A release and its rollback through the ssh host: the engine's own
	// update (the provider dials the same ssh://) and the driver's
	// history, back to the release before.
	rolledOver := func(over, to string) {
		t.Helper()
		setConfig("app.env.RELEASE", to+"-next")
		up("a release over " + over)
		_, errs, err := driver("rollback", name, "--yes")
		if err != nil {
			t.Fatalf("rollback over %s: %v\n%s", over, err, errs)
		}
		if got := replicas(); len(got) != 2 || !strings.HasSuffix(got[0], " RELEASE="+to) || !strings.HasSuffix(got[1], " RELEASE="+to) {
			t.Errorf("replicas after the rollback over %s: %v, want RELEASE=%s", over, got, to)
		}
		if got := config("app.env.RELEASE"); got != to {
			t.Errorf("the stack file says app.env.RELEASE %q after the rollback over %s, want %s", got, over, to)
		}
		if resp, err := client.Get(url); err != nil || resp.StatusCode != 200 {
			t.Errorf("after the rollback over %s: %v %v", over, resp, err)
		}
	}
	dbID := func() string {
		doc, err := docker.Inspect(ctx, prefix+"-db")
		if err != nil {
			t.Fatal(err)
		}
		return doc.ID
	}
	dbBefore := dbID()
	rolledOver("ssh", "1")
	if n := ssh.Sessions(); n < 5 {
		t.Errorf("%d ssh sessions for five verbs: they did not go through ssh", n)
	}
	t.Logf("logs, exec, maintenance, backup, the backups' list, a restore, a release and its rollback over ssh: %d ssh sessions", ssh.Sessions())
	// The same verbs on a TLS tcp:// host: the engine behind TLS with a
	// client certificate, as dockerd --tlsverify serves it.
	engine := startTLSEngine(t)
	setConfig("docker.host", engine.URL)
	setConfig("docker.certPath", engine.CertPath)
	if out, errs, err := driver("logs", name, "--service", "app", "--since", "30m"); err != nil || !strings.Contains(out, " app-") {
		t.Errorf("logs over TLS: %v\n%.300s%s", err, out, errs)
	}
	out, errs, err = driver("exec", name, "--", "python3", "-c", `import os; print("release", os.environ["RELEASE"]); raise SystemExit(5)`)
	if code := exitStatus(err); code != 5 || !strings.Contains(out, "release 1") {
		t.Errorf("exec over TLS: exit %d (%v), output %q %s; want release 1 and exit 5", code, err, out, errs)
	}
	if _, errs, err := driver("maintenance", "on", name, "--message", "over TLS"); err != nil {
		t.Errorf("maintenance on over TLS: %v\n%s", err, errs)
	}
	if resp, err := client.Get(url); err != nil || resp.StatusCode != 503 {
		t.Errorf("in maintenance (over TLS): %v %v, want 503", resp, err)
	}
	if _, errs, err := driver("maintenance", "off", name); err != nil {
		t.Errorf("maintenance off over TLS: %v\n%s", err, errs)
	}
	if out, errs, err := driver("backup", name); err != nil || !strings.Contains(out, "backup: wrote app-") {
		t.Errorf("backup over TLS: %v\n%s%s", err, out, errs)
	}
	if out, errs, err := driver("restore", name); err != nil || !strings.Contains(out, ".dump") {
		t.Errorf("the list of backups over TLS: %v\n%s%s", err, out, errs)
	}
	before := engine.Connections()
	if _, errs, err := driver("restore", name, "--from", dump, "--yes"); err != nil || !strings.Contains(errs, "restore: maintenance page off") {
		t.Errorf("a restore over TLS: %v\n%s", err, errs)
	}
	if resp, err := client.Get(url); err != nil || resp.StatusCode != 200 {
		t.Errorf("after the restore over TLS: %v %v", resp, err)
	}
	if engine.Connections() == before {
		t.Error("the restore over TLS did not go through the TLS host")
	}
	rolledOver("TLS", "1")
	// The provider's host changed twice (unix socket, ssh, TLS): not a
	// change of any container.
	if dbBefore != dbID() {
		t.Error("the database container was replaced when the stack's docker.host changed")
	}
	if n := engine.Connections(); n < 6 {
		t.Errorf("%d TLS connections for six verbs: they did not go through the TLS host", n)
	}
	t.Logf("logs, exec, maintenance, backup, the backups' list, a restore, a release and its rollback over TLS: %d connections", engine.Connections())
	for _, key := range []string{"docker.host", "docker.certPath"} {
		if out, errs, err := run(pl.CLI(), "config", "rm", "--path", "fastapi-infra:"+key, "--stack", name); err != nil {
			t.Fatalf("pulumi config rm %s: %v\n%s%s", key, err, out, errs)
		}
	}
	// The state's provider dials the host of the last update, which was
	// the TLS host: an up on the local socket again, before the test's
	// destroy (which configures the provider from the state) and the end
	// of the TLS listener.
	up("back on the local socket")

	// A production stack's restore asks for its name even with --yes, and
	// a wrong one stops it before it reaches the database.
	prod := name + "-prod"
	if err := os.WriteFile(filepath.Join(project, "Pulumi."+prod+".yaml"), []byte(strings.Replace(conf, "environment: development", "environment: production", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	ask := exec.Command(driverBinary(t), "--dir", project, "restore", prod, "--from", dump, "--yes")
	ask.Dir, ask.Env, ask.Stdin = project, environ, strings.NewReader("prod\n")
	said2, err := ask.CombinedOutput()
	if err == nil || !strings.Contains(string(said2), prod+" is a production stack. Type its name to restore") || !strings.Contains(string(said2), `nothing was changed: "prod" is not the stack's name`) {
		t.Errorf("a production restore with --yes and a wrong name: %v\n%s", err, said2)
	}
	_, _, _ = run(pl.CLI(), "stack", "rm", "--yes", "--force", "--stack", prod)
}

// exitStatus is a finished command's exit code (0 when it succeeded).
func exitStatus(err error) int {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
