//go:build e2e

// Package freshmachine runs the README's main command the way a new user
// does: in a throwaway container of plain Debian, on a copy of the
// repository, with none of what the project sets up for itself.
package freshmachine

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fastapi-infra/fastapi-infra/toolchain"
)

// TestDevOnAFreshMachine: the README's main command in a Debian bookworm
// container that has a C compiler, git and CA certificates, the Go
// toolchain and the Docker engine's socket, and nothing else: no bin/, no
// ~/.cache/fastapi-infra, no ~/.pulumi, no ~/.fastapi-infra, no pulumi or
// debootstrap on PATH.
//
// First as a machine without the docker provider plugin (which Pulumi's
// plugin server would give a user, and this network cannot reach):
// `./infra preview dev` builds the driver, the pinned Pulumi CLI and
// VictoriaLogs, the images step finds the dev images, and the run ends at
// the plugin: one progress line per step, no go command noise, one clean
// error, and the stack file and backend as they were. Then with the
// plugin's release file named ($FASTAPI_INFRA_DOCKER_PLUGIN), as a user
// whose machine has it: `./infra up dev` deploys on this machine's Docker
// 20.10 (the engine Debian 12 ships, API 1.41), a second preview
// proposes nothing, the stack answers HTTPS, and destroy removes it.
//
// Shared with the host, to keep this minutes instead of tens of them: the
// Go module cache and Go's build cache (compiler output keyed by its
// inputs, so a fresh machine would compile the same), the host's CA
// bundle (this network's Go module proxy is reached through its TLS
// proxy), and the Docker engine with its images (building them is
// images/build.sh's own test, every run).
func TestDevOnAFreshMachine(t *testing.T) {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	plugin, ok, err := toolchain.PluginFile(toolchain.DockerPluginEnv)
	if err != nil || !ok {
		t.Fatalf("$%s must name the docker provider plugin's release file for the second half of this test (./run-tests sets it from ../shared/plugins): %v", toolchain.DockerPluginEnv, err)
	}
	image := freshImage(t, repo)
	src := copyWorkingTree(t, repo)
	stackFile := filepath.Join(src, "Pulumi.dev.yaml")
	before, err := os.ReadFile(stackFile)
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir() // the container's ~/.fastapi-infra, to look at afterwards
	cache := t.TempDir() // the container's ~/.cache/fastapi-infra, kept between the two runs
	goEnv := func(name string) string {
		out, err := exec.Command("go", "env", name).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Fatal("the docker CLI is not on PATH")
	}
	goroot, modcache, gocache := goEnv("GOROOT"), goEnv("GOMODCACHE"), goEnv("GOCACHE")
	// fresh runs script in a new container of the fresh image.
	fresh := func(what, script string, extra ...string) (string, int) {
		t.Helper()
		args := append([]string{"run", "--rm", "-w", "/src",
			"-v", src + ":/src",
			"-v", state + ":/root/.fastapi-infra",
			"-v", cache + ":/root/.cache/fastapi-infra",
			"-v", goroot + ":/usr/local/go:ro",
			"-v", modcache + ":/root/go/pkg/mod",
			"-v", gocache + ":/root/.cache/go-build",
			"-v", "/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro",
			"-v", "/var/run/docker.sock:/var/run/docker.sock",
			"-v", docker + ":/usr/local/bin/docker:ro",
			"-e", "PATH=/usr/local/go/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
			"-e", "GOPROXY=" + goEnv("GOPROXY")}, extra...)
		args = append(args, image, "sh", "-c", script)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "docker", args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		err := cmd.Run()
		t.Logf("%s on a fresh machine: %s, %v\n%s", what, time.Since(start).Round(time.Second), err, out.String())
		code := 0
		if exit, ok := err.(*exec.ExitError); ok {
			code = exit.ExitCode()
		} else if err != nil {
			code = -1
		}
		return out.String(), code
	}
	out, code := fresh("./infra preview dev (no docker plugin)",
		"for tool in pulumi debootstrap; do ! command -v $tool >/dev/null || { echo \"fresh: $tool is on PATH\"; exit 99; }; done; [ -z \"$(ls -A /root/.cache/fastapi-infra)\" ] || exit 98; exec ./infra preview dev")
	if code != 1 {
		t.Fatalf("want exit code 1 (the docker plugin is missing), got %d", code)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	// Each step once, in order, saying what, why, how long and where.
	want := []string{
		"infra: building the driver (first run: downloads the Go modules, about a minute; into bin/)",
		"toolchain: building victoria-logs " + toolchain.VictoriaLogsVersion + ", the single server's log store (",
		"toolchain: built victoria-logs " + toolchain.VictoriaLogsVersion + " in ",
		"toolchain: building pulumi " + toolchain.PulumiVersion + ", the Pulumi CLI every stack runs with (about 7 CPU-minutes, once; into /root/.cache/fastapi-infra/pulumi-" + toolchain.PulumiVersion + "/bin)",
		"toolchain: built pulumi " + toolchain.PulumiVersion + " in ",
		"fastapi-infra: the single-server architecture needs the Pulumi docker provider plugin v" + toolchain.PulumiDockerVersion + ", which is not installed in /root/.pulumi/plugins and cannot be downloaded here.",
		"Nothing was changed. Install it from the release tarball or a binary built elsewhere, then run this again:",
		"    " + toolchain.DockerPluginInstall(),
		"or name that file in $" + toolchain.DockerPluginEnv + " and run this again.",
	}
	if len(lines) != len(want) {
		t.Errorf("want %d lines, got %d", len(want), len(lines))
	}
	for i := range min(len(lines), len(want)) {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("line %d:\n got %s\nwant %s...", i+1, lines[i], want[i])
		}
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "go: ") {
			t.Errorf("the go command's own output reached the terminal: %s", l)
		}
	}
	// Refused before the stack existed: its file has no encryption salt
	// and no generated secret, the backend no stack.
	after, err := os.ReadFile(stackFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("the refused run changed Pulumi.dev.yaml:\n%s", after)
	}
	var stacks []string
	filepath.Walk(filepath.Join(state, "state"), func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && strings.Contains(path, ".pulumi/stacks/") {
			stacks = append(stacks, path)
		}
		return nil
	})
	if len(stacks) != 0 {
		t.Errorf("the refused run created a stack in the backend: %v", stacks)
	}
	if t.Failed() {
		return
	}

	// The same machine, given the plugin's release file.
	withPlugin := []string{"-v", plugin + ":/plugins/docker.tar.gz:ro", "-e", toolchain.DockerPluginEnv + "=/plugins/docker.tar.gz"}
	t.Cleanup(func() {
		fresh("./infra destroy dev", "exec ./infra --yes destroy dev", withPlugin...)
		for _, v := range []string{"fastapi-db-data", "fastapi-backups"} {
			_ = exec.Command("docker", "volume", "rm", v).Run()
		}
	})
	// Then the day-2 reads: the audit log, and the database's lines from
	// the engine.
	out, code = fresh("./infra up dev, then ./infra preview, history and logs dev",
		"./infra --yes up dev && ./infra --expect-no-changes preview dev && ./infra history dev && exec ./infra --service db --grep 'ready to accept connections' logs dev", withPlugin...)
	if code != 0 {
		t.Fatalf("./infra up dev, then a preview expecting no changes, history and logs, on a fresh machine with the plugin: exit %d", code)
	}
	for _, want := range []string{"installing the docker provider plugin v" + toolchain.PulumiDockerVersion, "generated a random fastapi-infra:dbPassword", " created",
		"#1  ", "  update  succeeded  ", " db | ", "database system is ready to accept connections"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q", want)
		}
	}
	curl := exec.Command("curl", "-sk", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}", "https://localhost:8443/health/ready")
	if got, err := curl.Output(); err != nil || string(got) != "200" {
		t.Errorf("https://localhost:8443/health/ready after ./infra up dev: %s, %v", got, err)
	}
}

// freshImage is images/build.sh fresh: a new user's Debian.
func freshImage(t *testing.T, repo string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(repo, "images", "build.sh"), "fresh")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("images/build.sh fresh: %v", err)
	}
	image, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "FRESH=")
	if !ok {
		t.Fatalf("images/build.sh fresh printed %q", out)
	}
	return image
}

// copyWorkingTree copies the files git knows of (committed or not, never
// ignored ones such as bin/) into a new folder: what a clone of this
// change holds.
func copyWorkingTree(t *testing.T, repo string) string {
	t.Helper()
	out, err := exec.Command("git", "-C", repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	dst := t.TempDir()
	for _, name := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		from := filepath.Join(repo, name)
		info, err := os.Stat(from)
		if os.IsNotExist(err) {
			continue // deleted in the working tree
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		to := filepath.Join(dst, name)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, data, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}
