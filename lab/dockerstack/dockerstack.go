// Package dockerstack runs Pulumi programs on this machine's Docker engine
// with the real Pulumi engine and the real docker provider plugin: the
// single server's real-engine tests and its benchmark deploy through it,
// as ./infra up does, with no imitation of the provider.
package dockerstack

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/internal/pluginhome"
	"github.com/fastapi-infra/fastapi-infra/toolchain"
)

// Pulumi is the real Pulumi engine with the real docker provider, for
// programs that run on this machine's Docker engine: the pinned CLI, a
// Pulumi home with the docker provider plugin, and a file backend of its
// own. The single server's real-engine tests and its benchmark deploy
// through it, as `./infra up` does: no imitation of the provider.
type Pulumi struct {
	cli        auto.PulumiCommand
	cliPath    string
	home       string
	dir        string // backends and stack folders
	passphrase string
}

// New finds (or builds) the pinned CLI and makes sure the
// docker provider plugin is in the Pulumi home the real-engine runs share
// (<cache>/pulumi-home-docker): installed once from the file that
// $FASTAPI_INFRA_DOCKER_PLUGIN names. Without it (and not installed) it
// fails, saying how to get it: the real engine is never skipped. State
// goes under dir.
func New(ctx context.Context, dir string, progress io.Writer) (*Pulumi, error) {
	tools, err := toolchain.Builder{Progress: progress}.Ensure(ctx, "pulumi")
	if err != nil {
		return nil, err
	}
	want, err := semver.ParseTolerant(toolchain.PulumiVersion)
	if err != nil {
		return nil, err
	}
	cli, err := auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: filepath.Dir(filepath.Dir(tools["pulumi"])), Version: want})
	if err != nil {
		return nil, err
	}
	cache, err := toolchain.CacheDir()
	if err != nil {
		return nil, err
	}
	p := &Pulumi{cli: cli, cliPath: tools["pulumi"], home: filepath.Join(cache, "pulumi-home-docker"), dir: dir, passphrase: randomHex(16)}
	if err := p.installDockerPlugin(ctx); err != nil {
		return nil, err
	}
	return p, os.MkdirAll(dir, 0o755)
}

// installDockerPlugin installs the docker provider plugin into the shared
// Pulumi home unless it is there.
func (p *Pulumi) installDockerPlugin(ctx context.Context) error {
	if installed, err := pluginhome.Has(filepath.Join(p.home, "plugins"), "docker", toolchain.PulumiDockerVersion); err != nil || installed {
		return err
	}
	file, ok, err := toolchain.PluginFile(toolchain.DockerPluginEnv)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("the real-engine tests of the single server need the Pulumi docker provider plugin v%s, and it cannot be downloaded here: "+
			"name its release tarball in $%s (./run-tests does when ../shared/plugins has it), or install it into %s with: PULUMI_HOME=%s %s",
			toolchain.PulumiDockerVersion, toolchain.DockerPluginEnv, p.home, p.home, toolchain.DockerPluginInstall())
	}
	return pluginhome.InstallResource(ctx, p.cli, os.TempDir(), []string{"PULUMI_HOME=" + p.home, "PULUMI_SKIP_UPDATE_CHECK=true"},
		"docker", toolchain.PulumiDockerVersion, file)
}

// Stack is one stack of an inline program on the local engine.
type Stack struct {
	auto.Stack
	Dir string // the stack's folder: its backend and every update's output
	ups int
}

// Stack makes a new stack named name (with a random suffix) running
// program, with its own file backend under the Pulumi's folder.
func (p *Pulumi) Stack(ctx context.Context, name string, program pulumi.RunFunc) (*Stack, error) {
	name = name + "-" + randomHex(3)
	dir := filepath.Join(p.dir, name)
	backend := filepath.Join(dir, "backend")
	if err := os.MkdirAll(backend, 0o755); err != nil {
		return nil, err
	}
	s, err := auto.UpsertStackInlineSource(ctx, name, "fastapi-infra-lab", program,
		auto.Pulumi(p.cli), auto.PulumiHome(p.home), auto.WorkDir(dir),
		auto.EnvVars(map[string]string{
			"PULUMI_BACKEND_URL":       "file://" + backend,
			"PULUMI_CONFIG_PASSPHRASE": p.passphrase,
			"PULUMI_SKIP_UPDATE_CHECK": "true",
		}))
	if err != nil {
		return nil, fmt.Errorf("creating stack %s: %w", name, err)
	}
	return &Stack{Stack: s, Dir: dir}, nil
}

// SetProgram makes the next update run program (a new release, say).
func (s *Stack) SetProgram(program pulumi.RunFunc) {
	s.Workspace().SetProgram(program)
}

// Up runs `pulumi up`, then checks that it left nothing to do: a preview
// proposes no change and a refresh finds no drift, as Pulumi's own
// integration tests check after every update. The engine's output of each
// step is kept in the stack's folder; a failure's message carries its end.
func (s *Stack) Up(ctx context.Context, opts ...optup.Option) (auto.UpResult, error) {
	res, err := s.UpOnly(ctx, opts...)
	if err != nil {
		return res, err
	}
	return res, s.CheckNoChanges(ctx)
}

// UpOnly runs `pulumi up` without the checks after it (an update that is
// meant to fail).
func (s *Stack) UpOnly(ctx context.Context, opts ...optup.Option) (auto.UpResult, error) {
	s.ups++
	var out bytes.Buffer
	res, err := s.Stack.Up(ctx, append([]optup.Option{optup.ProgressStreams(&out), optup.ErrorProgressStreams(&out), optup.SuppressProgress()}, opts...)...)
	s.keep(fmt.Sprintf("up-%d.log", s.ups), out.Bytes())
	if err != nil {
		return res, fmt.Errorf("up %s: %w\n%s", s.Name(), err, tail(out.String(), 40))
	}
	return res, nil
}

// CheckNoChanges fails when a preview would change anything or a refresh
// finds the engine's resources differ from the state. Both only read (the
// refresh is a preview of one: what it finds is not saved), so they run at
// the same time: each is mostly the CLI's and the provider's start.
func (s *Stack) CheckNoChanges(ctx context.Context) error {
	c := NoChanges(ctx, s.Stack, true)
	s.keep(fmt.Sprintf("up-%d-preview.log", s.ups), []byte(c.Preview))
	s.keep(fmt.Sprintf("up-%d-refresh.log", s.ups), []byte(c.Refresh))
	if c.PreviewErr != nil {
		return fmt.Errorf("the preview after up %d of %s proposes changes (a perpetual diff): %v\n%s", s.ups, s.Name(), c.PreviewErr, changes(c.Preview))
	}
	if c.RefreshErr != nil {
		return fmt.Errorf("the refresh after up %d of %s finds drift: %v\n%s", s.ups, s.Name(), c.RefreshErr, changes(c.Refresh))
	}
	return nil
}

// Checked is what NoChanges found: each check's engine output and error.
type Checked struct {
	Preview, Refresh       string
	PreviewErr, RefreshErr error
}

// NoChanges runs, on any stack, a preview that expects no change and
// (with refresh) a refresh that expects none, at the same time: both only
// read (the refresh is a preview of one: what it finds is not saved), and
// each is mostly the CLI's and the provider's start. A saved refresh of
// the docker provider reorders containers' nested sets, which the next
// refresh reported as a change.
func NoChanges(ctx context.Context, s auto.Stack, refresh bool) Checked {
	var c Checked
	var preview, refreshed bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, c.PreviewErr = s.Preview(ctx, optpreview.ExpectNoChanges(), optpreview.Diff(), optpreview.ProgressStreams(&preview), optpreview.SuppressProgress())
	}()
	if refresh {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, c.RefreshErr = s.PreviewRefresh(ctx, optrefresh.ExpectNoChanges(), optrefresh.ProgressStreams(&refreshed), optrefresh.SuppressProgress())
		}()
	}
	wg.Wait()
	c.Preview, c.Refresh = preview.String(), refreshed.String()
	return c
}

// Destroy runs `pulumi destroy` and removes the stack from its backend
// (what is retained on delete stays on the engine).
func (s *Stack) Destroy(ctx context.Context) error {
	var out bytes.Buffer
	_, err := s.Stack.Destroy(ctx, optdestroy.ProgressStreams(&out), optdestroy.SuppressProgress())
	s.keep("destroy.log", out.Bytes())
	if err != nil {
		return fmt.Errorf("destroy %s: %w\n%s", s.Name(), err, tail(out.String(), 40))
	}
	return s.Workspace().RemoveStack(ctx, s.Name())
}

func (s *Stack) keep(name string, out []byte) {
	_ = os.WriteFile(filepath.Join(s.Dir, name), out, 0o644)
}

// changes is the part of an engine's output that says what would change:
// the lines of resources that are not unchanged, and the summary.
func changes(out string) string {
	var keep []string
	for _, line := range strings.Split(out, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.Contains(line, "(same)") || strings.HasPrefix(trimmed, "[urn=") || strings.HasPrefix(trimmed, "[id=") || strings.HasPrefix(trimmed, "[provider=") {
			continue
		}
		keep = append(keep, line)
	}
	return tail(strings.Join(keep, "\n"), 60)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Home is the Pulumi home with the docker provider plugin, and CLI the
// pinned CLI's binary: for tests that run `pulumi` itself.
func (p *Pulumi) Home() string { return p.home }
func (p *Pulumi) CLI() string  { return p.cliPath }

// GoLanguageHost is a folder holding pulumi-language-go, with which plain
// `pulumi up` runs this project's main.go: unpacked once into the cache
// from the file $FASTAPI_INFRA_LANGUAGE_GO names (a tarball or the binary).
// Without it, it fails saying so; the Go module proxy does not serve it.
func GoLanguageHost() (string, error) {
	file, ok, err := toolchain.PluginFile(toolchain.GoLanguageHostEnv)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("plain `pulumi up` needs the Pulumi Go language host (pulumi-language-go), which the Go module proxy does not serve: name its tarball or binary in $%s (./run-tests does when ../shared/plugins has it)", toolchain.GoLanguageHostEnv)
	}
	cache, err := toolchain.CacheDir()
	if err != nil {
		return "", err
	}
	sum, err := fileSum(file)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "pulumi-language-go-"+sum[:12])
	bin := filepath.Join(dir, "pulumi-language-go")
	if _, err := os.Stat(bin); err == nil {
		return dir, nil
	}
	tmp, err := os.MkdirTemp(cache, "pulumi-language-go-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if strings.HasSuffix(file, ".tar.gz") || strings.HasSuffix(file, ".tgz") {
		if out, err := exec.Command("tar", "-xzf", file, "-C", tmp, "pulumi-language-go").CombinedOutput(); err != nil {
			return "", fmt.Errorf("unpacking %s: %v\n%s", file, err, out)
		}
	} else if err := copyExecutable(file, filepath.Join(tmp, "pulumi-language-go")); err != nil {
		return "", err
	}
	return dir, os.Rename(tmp, dir)
}

// fileSum is the hex sha256 of a file's content.
func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func copyExecutable(from, to string) error {
	raw, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, raw, 0o755)
}

// StateFiles are the files of the stack's backend as they lie on disk
// (the checkpoint and its backups, the history): what a secret must never
// be in plain text in. The Automation API's export decrypts secrets
// (`pulumi stack export --show-secrets`), so it cannot say.
func (s *Stack) StateFiles() (map[string][]byte, error) {
	files := map[string][]byte{}
	err := filepath.WalkDir(filepath.Join(s.Dir, "backend"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		files[path] = raw
		return err
	})
	return files, err
}
