//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fastapi-infra/fastapi-infra/deploy"
	"github.com/fastapi-infra/fastapi-infra/lab"
	"github.com/fastapi-infra/fastapi-infra/toolchain"
)

// driverBinary is ./infra's driver, built once per test run.
func driverBinary(t *testing.T) string {
	t.Helper()
	driverBuild.once.Do(func() {
		driverBuild.path = filepath.Join(env.lab.State, "bin", "fastapi-infra")
		build := exec.Command("go", "build", "-o", driverBuild.path, "./cmd/fastapi-infra")
		build.Dir = env.repo
		if out, err := build.CombinedOutput(); err != nil {
			driverBuild.err = fmt.Errorf("building the driver: %v\n%s", err, out)
		}
	})
	if driverBuild.err != nil {
		t.Fatal(driverBuild.err)
	}
	return driverBuild.path
}

// driverBuild is the one build of the driver per run: tests that run in
// parallel would otherwise relink the binary while another runs it.
var driverBuild struct {
	once sync.Once
	path string
	err  error
}

// driver runs the driver on s's project and backend, as a user's ./infra
// would, and returns its stdout and stderr.
func (s *stack) driver(t *testing.T, stdin string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(driverBinary(t), append([]string{"--dir", filepath.Join(s.dir, "project"), "--backend", "file://" + filepath.Join(s.dir, "backend")}, args...)...)
	cmd.Env = append(os.Environ(), "PULUMI_CONFIG_PASSPHRASE="+s.passphrase, "PULUMI_HOME="+env.pulumiHome, "PULUMI_SKIP_UPDATE_CHECK=true")
	cmd.Stdin = strings.NewReader(stdin)
	return cmd
}

// logCalls puts a program first on cmd's PATH for each of tools (name:
// the program it stands for) that notes "name args" in one log and runs
// the real one. The returned func reads the log's lines.
func logCalls(t *testing.T, cmd *exec.Cmd, tools map[string]string) func() []string {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	for name, real := range tools {
		shim := "#!/bin/sh\necho \"" + name + " $*\" >> '" + log + "'\nexec '" + real + "' \"$@\"\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(shim), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd.Env = append(cmd.Env, "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return func() []string {
		raw, err := os.ReadFile(log)
		if err != nil {
			t.Fatalf("none of %v was started through %s: %v", tools, dir, err)
		}
		return strings.Split(strings.TrimSpace(string(raw)), "\n")
	}
}

func runDriver(t *testing.T, cmd *exec.Cmd) (stdout, stderr string, err error) {
	t.Helper()
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// answer is what a person types once a prompt is on the screen.
type answer struct{ prompt, typed string }

// onTerminal runs cmd's command line under script(1), which gives it a
// terminal, and types each answer only once its prompt has appeared, as a
// person at a keyboard does. Typing ahead would not do: the driver (through
// Bubble Tea's init, linked in by the Pulumi SDK) asks the terminal for its
// colours at start and reads the reply from stdin, swallowing input typed
// before (seen: the first test's "no" vanished and the driver waited on).
func onTerminal(t *testing.T, cmd *exec.Cmd, answers ...answer) ([]byte, error) {
	t.Helper()
	quoted := make([]string, len(cmd.Args))
	for i, a := range cmd.Args {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	term := exec.Command("script", "-qec", strings.Join(quoted, " "), "/dev/null")
	term.Env = cmd.Env
	stdin, err := term.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var screen bytes.Buffer
	term.Stdout = writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return screen.Write(p)
	})
	term.Stderr = term.Stdout
	if err := term.Start(); err != nil {
		t.Fatal(err)
	}
	seen := func() string {
		mu.Lock()
		defer mu.Unlock()
		return screen.String()
	}
	// A driver that ends without asking (a failed preview) fails the test
	// at once, not after the 5 minutes a slow preview may take.
	exited := make(chan error, 1)
	go func() { exited <- term.Wait() }()
	from := 0
	for _, a := range answers {
		deadline := time.Now().Add(5 * time.Minute)
		for {
			if i := strings.Index(seen()[from:], a.prompt); i >= 0 {
				from += i + len(a.prompt)
				break
			}
			select {
			case err := <-exited:
				if !strings.Contains(seen()[from:], a.prompt) {
					t.Fatalf("the driver ended (%v) without asking %q:\n%s", err, a.prompt, seen())
				}
				exited <- err
				continue
			default:
			}
			if time.Now().After(deadline) {
				_ = term.Process.Kill()
				<-exited
				t.Fatalf("no %q on the terminal within 5 minutes:\n%s", a.prompt, seen())
			}
			time.Sleep(100 * time.Millisecond)
		}
		if _, err := io.WriteString(stdin, a.typed); err != nil {
			t.Fatal(err)
		}
	}
	stdin.Close()
	err = <-exited
	return []byte(seen()), err
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestDriverAsksBeforeChanging: up and destroy show the preview and ask, as
// pulumi does; without a terminal they want --yes; a production stack's
// destroy also wants its name. Nothing changes on a no.
func TestDriverAsksBeforeChanging(t *testing.T) {
	t.Parallel() // measures no load: runs beside another such test, after the load tests
	s := newProdStack(t, nil)
	ctx := context.Background()
	history := func() int {
		h, err := s.History(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(h)
	}

	_, stderr, err := runDriver(t, s.driver(t, "", "up", s.name))
	if err == nil || !strings.Contains(stderr, "up changes stack "+s.name+" and there is no terminal to ask on; run it with --yes") {
		t.Fatalf("up without a terminal or --yes: %v\n%s", err, stderr)
	}
	const ask, name = "(yes/no)", "Type its name to destroy it:"
	out, err := onTerminal(t, s.driver(t, "", "up", s.name), answer{ask, "no\n"})
	if err == nil || !strings.Contains(string(out), "Do you want to up stack "+s.name+" as previewed above? (yes/no)") ||
		!strings.Contains(string(out), "nothing was changed: the answer was not yes") || !strings.Contains(string(out), "Previewing update ("+s.name+")") {
		t.Fatalf("up answered no: %v\n%s", err, out)
	}
	if n := history(); n != 0 {
		t.Fatalf("%d updates after a no", n)
	}
	if _, stderr, err := runDriver(t, s.driver(t, "", "--yes", "up", s.name)); err != nil {
		t.Fatalf("up --yes: %v\n%s", err, stderr)
	}
	// The same up again changes nothing, and its time is mostly CLI
	// processes (0.2-1 s each on 2 cores): the driver starts one for each
	// thing it must ask the CLI, and no more.
	cmd := s.driver(t, "", "--yes", "up", s.name)
	tools, err := toolchain.Builder{Progress: os.Stderr}.Ensure(context.Background(), "pulumi")
	if err != nil {
		t.Fatal(err)
	}
	// The driver takes a `pulumi` on PATH of the pinned version first.
	calls := logCalls(t, cmd, map[string]string{"pulumi": tools["pulumi"]})
	stdout, stderr, err := runDriver(t, cmd)
	if err != nil || !strings.Contains(stdout, "unchanged") {
		t.Fatalf("the second up --yes: %v\n%s\n%s", err, stdout, stderr)
	}
	ran := calls()
	count := func(prefix string) (n int) {
		for _, c := range ran {
			args := strings.TrimPrefix(strings.TrimPrefix(c, "pulumi "), "--non-interactive ")
			if strings.HasPrefix(args, prefix) {
				n++
			}
		}
		return n
	}
	// What is left: version (NewPulumiCommand), stack select, config and
	// stack export at once (deploy.SelectAndRead), up, and
	// the Automation API's own reads after it (outputs twice, history).
	if count("plugin ") != 0 || count("stack export") != 1 || count("stack output") > 2 || count("up ") != 1 || len(ran) > 8 {
		t.Errorf("a no-op up started %d CLI processes, want at most 8 (no plugin listing: the plugin folder is read; one state export; outputs read once):\n%s",
			len(ran), strings.Join(ran, "\n"))
	}
	// Destroying production: yes, then the wrong name.
	out, err = onTerminal(t, s.driver(t, "", "destroy", s.name), answer{ask, "yes\n"}, answer{name, "prod\n"})
	if err == nil || !strings.Contains(string(out), s.name+" is a production stack. Type its name to destroy it:") ||
		!strings.Contains(string(out), `nothing was changed: "prod" is not the stack's name`) {
		t.Fatalf("destroy with the wrong name: %v\n%s", err, out)
	}
	// --yes answers the preview's question, not the name's.
	if _, stderr, err := runDriver(t, s.driver(t, "", "--yes", "destroy", s.name)); err == nil ||
		!strings.Contains(stderr, `nothing was changed: "" is not the stack's name`) {
		t.Fatalf("destroy --yes of a production stack without its name: %v\n%s", err, stderr)
	}
	if n := history(); n != 2 {
		t.Fatalf("%d updates after a refused destroy, want the two ups", n)
	}
	// The audit log: one line per update, who ran it, the release, no
	// secret.
	stdout, stderr, err = runDriver(t, s.driver(t, "", "history", s.name))
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if err != nil || len(lines) != 2 || !strings.HasPrefix(lines[0], "#2 ") || !strings.Contains(lines[0], "  update  succeeded  ") ||
		!strings.Contains(lines[0], "@") || !strings.Contains(lines[0], "app.image=lab.local/fastapi-app:1.0.0") || !strings.Contains(lines[1], "create ") {
		t.Errorf("history: %v\n%s\n%s", err, stdout, stderr)
	}
	for _, secret := range s.secrets {
		if strings.Contains(stdout, secret) {
			t.Errorf("history shows a secret's value:\n%s", stdout)
		}
	}
	out, err = onTerminal(t, s.driver(t, "", "destroy", s.name), answer{ask, "yes\n"}, answer{name, s.name + "\n"})
	if err != nil {
		t.Fatalf("destroy with the stack's name: %v\n%s", err, out)
	}
}

// TestDriverPrintsProgressOnceAndOneCleanError: a failed update's progress
// is streamed once, then one short error: the failing resource's own
// message, not the engine's log again.
func TestDriverPrintsProgressOnceAndOneCleanError(t *testing.T) {
	t.Parallel() // measures no load: runs beside another such test, after the load tests
	s := newProdStack(t, map[string]string{"app.image": lab.FailingMigrationImage})
	stdout, stderr, err := runDriver(t, s.driver(t, "", "--yes", "up", s.name))
	if err == nil {
		t.Fatal("up succeeded with a failing migration")
	}
	all := stdout + stderr
	for _, once := range []string{"Updating (" + s.name + ")", "Diagnostics:", "Resources:"} {
		if n := strings.Count(all, once); n != 1 {
			t.Errorf("%q appears %d times in the driver's output, want once", once, n)
		}
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	i := len(lines) - 1
	for i > 0 && !strings.HasPrefix(lines[i], "fastapi-infra: up "+s.name+" failed:") {
		i--
	}
	summary := strings.Join(lines[i:], "\n")
	if !strings.HasPrefix(summary, "fastapi-infra: up "+s.name+" failed:\nkubernetes:batch/v1:Job (fastapi-migration): ") ||
		!strings.Contains(summary, "[BackoffLimitExceeded] Job has reached the specified backoff limit") || len(lines)-i > 12 {
		t.Errorf("the error the driver ends with:\n%s", summary)
	}
}

// TestDriverCtrlCLeavesNothingPending: an interrupt lets the engine finish
// the steps in flight and release the stack; the next up just works.
func TestDriverCtrlCLeavesNothingPending(t *testing.T) {
	t.Parallel() // measures no load: runs beside another such test, after the load tests
	s := newProdStack(t, nil)
	cmd := s.driver(t, "", "--yes", "up", s.name)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once the engine is creating resources (the Deployment's
	// await takes several seconds on kwok).
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(out.String(), "creating") {
		if time.Now().After(deadline) {
			t.Fatalf("the update did not start:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	_ = cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	t.Logf("interrupted up ended with %v", err)
	if !strings.Contains(out.String(), "stopping: the engine finishes the steps in flight and releases the stack") {
		t.Errorf("the driver did not say it was stopping:\n%s", out.String())
	}
	state, err := s.Export(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var deployment struct {
		PendingOperations []json.RawMessage `json:"pending_operations"`
	}
	if err := json.Unmarshal(state.Deployment, &deployment); err != nil {
		t.Fatal(err)
	}
	if len(deployment.PendingOperations) != 0 {
		t.Errorf("the interrupted update left %d pending operations: %s", len(deployment.PendingOperations), deployment.PendingOperations)
	}
	if _, log, err := s.up(t); err != nil {
		t.Fatalf("the up after an interrupted one failed:\n%s\n%v", log, err)
	}
}

// TestInfraRunsNoBuildWhenNothingChanged: ./infra's own work before the
// driver, on a run where nothing changed, is one `docker images` (the dev
// stack's image check) and no go command. It had been a `go build` of the
// driver (1-1.7 s of CPU for its up-to-date check), and images/build.sh's
// 17 docker commands and `go run ./cmd/toolchain`, 3-5 s before the engine
// started on a no-op `./infra up dev`.
func TestInfraRunsNoBuildWhenNothingChanged(t *testing.T) {
	project, backend, home := t.TempDir(), t.TempDir(), t.TempDir()
	copyFile(t, filepath.Join(env.repo, "Pulumi.yaml"), filepath.Join(project, "Pulumi.yaml"))
	copyFile(t, filepath.Join(env.repo, "Pulumi.dev.yaml"), filepath.Join(project, "Pulumi.dev.yaml"))
	real := map[string]string{}
	for _, tool := range []string{"go", "docker"} {
		path, err := exec.LookPath(tool)
		if err != nil {
			t.Fatal(err)
		}
		real[tool] = path
	}
	infra := func() []string {
		t.Helper()
		// preview: the image check runs as for up, and nothing is changed.
		// An empty Pulumi home has no docker plugin: the driver stops there
		// on this machine (or previews against a temporary backend).
		cmd := exec.Command(filepath.Join(env.repo, "infra"), "--dir", project, "--backend", "file://"+backend, "preview", "dev")
		cmd.Env = append(os.Environ(), "PULUMI_HOME="+home, "PULUMI_CONFIG_PASSPHRASE=infra-test", "PULUMI_SKIP_UPDATE_CHECK=true")
		calls := logCalls(t, cmd, real)
		out, err := cmd.CombinedOutput()
		if err != nil && !strings.Contains(string(out), "needs the Pulumi docker provider plugin") {
			t.Fatalf("./infra preview dev: %v\n%s", err, out)
		}
		return calls()
	}
	infra() // builds what is missing
	ran := infra()
	for _, line := range ran {
		if line != "docker images --no-trunc --format {{.Repository}}:{{.Tag}} {{.ID}}" {
			t.Errorf("./infra ran more than one `docker images` when nothing had changed:\n%s", strings.Join(ran, "\n"))
			break
		}
	}
}

// TestGeneratedSecretsNeverOnACommandLine: the driver generates the dev
// stack's dbPassword and rolloutKey; `pulumi config set` got them as
// arguments, which any user of the machine reads in ps while the CLI runs.
// They go on its stdin now: no command line the driver starts holds them.
func TestGeneratedSecretsNeverOnACommandLine(t *testing.T) {
	project, backend := t.TempDir(), t.TempDir()
	copyFile(t, filepath.Join(env.repo, "Pulumi.yaml"), filepath.Join(project, "Pulumi.yaml"))
	copyFile(t, filepath.Join(env.repo, "Pulumi.dev.yaml"), filepath.Join(project, "Pulumi.dev.yaml"))
	tools, err := toolchain.Builder{Progress: os.Stderr}.Ensure(context.Background(), "pulumi")
	if err != nil {
		t.Fatal(err)
	}
	const passphrase = "generated-secrets-test"
	cmd := exec.Command(driverBinary(t), "--dir", project, "--backend", "file://"+backend, "preview", "dev")
	cmd.Env = append(os.Environ(), "PULUMI_CONFIG_PASSPHRASE="+passphrase, "PULUMI_HOME="+env.pulumiHome, "PULUMI_SKIP_UPDATE_CHECK=true")
	calls := logCalls(t, cmd, map[string]string{"pulumi": tools["pulumi"]})
	if _, stderr, err := runDriver(t, cmd); err != nil && !strings.Contains(stderr, "generated a random") {
		t.Fatalf("./infra preview dev: %v\n%s", err, stderr)
	}
	ran := calls()
	read := exec.Command(tools["pulumi"], "config", "--show-secrets", "--json", "--stack", "dev", "--non-interactive")
	read.Dir = project
	read.Env = append(os.Environ(), "PULUMI_CONFIG_PASSPHRASE="+passphrase, "PULUMI_BACKEND_URL=file://"+backend, "PULUMI_HOME="+env.pulumiHome)
	out, err := read.Output()
	if err != nil {
		t.Fatalf("pulumi config: %v", err)
	}
	var cfg map[string]struct{ Value string }
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"fastapi-infra:dbPassword", "fastapi-infra:rolloutKey"} {
		v := cfg[key].Value
		if len(v) < 32 {
			t.Fatalf("%s was not generated: %q", key, v)
		}
		for _, line := range ran {
			if strings.Contains(line, v) {
				t.Errorf("the generated %s is on a command line: pulumi %s", key, strings.SplitN(line, " ", 4)[:3])
			}
		}
	}
}

// syncBuffer is a buffer two goroutines may use: a process writes, the
// test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestTwoUpsAtOnce: a second ./infra up of a stack whose update is
// running is refused at once, naming who holds the lock since when and
// how to clear a stale one, and so is a backup; the first goes on to the
// end. An up beside a restore's lock is refused by the engine.
func TestTwoUpsAtOnce(t *testing.T) {
	t.Parallel() // measures no load: runs beside another such test, after the load tests
	s := newProdStack(t, nil)
	first := s.driver(t, "", "--yes", "up", s.name)
	var out syncBuffer
	first.Stdout, first.Stderr = &out, &out
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(out.String(), "Updating (") {
		if time.Now().After(deadline) {
			_ = first.Process.Kill()
			t.Fatalf("the first up did not start updating within 90 s:\n%s", out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// A second up, and a backup (which takes the same lock), both while
	// the first runs.
	var wg sync.WaitGroup
	for _, verb := range [][]string{{"--yes", "up", s.name}, {"backup", s.name}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			_, stderr, err := runDriver(t, s.driver(t, "", verb...))
			took := time.Since(start)
			op := verb[len(verb)-2]
			if err == nil || !strings.Contains(stderr, op+" "+s.name+": the stack is locked: held by ") || !strings.Contains(stderr, "pulumi cancel --stack "+s.name) {
				t.Errorf("%s while the first up runs: %v, want the lock's holder and how to clear it:\n%s", op, err, stderr)
			}
			t.Logf("%s beside the first up was refused in %s", op, took.Round(100*time.Millisecond))
		}()
	}
	wg.Wait()
	if err := first.Wait(); err != nil {
		t.Errorf("the first up: %v\n%s", err, out.String())
	}

	// The other way round: an up beside a restore (its lock taken as
	// the restore takes it) is refused by the engine itself, naming the
	// restore's process.
	unlock, err := deploy.LockFileBackend(filepath.Join(s.dir, "backend"), "fastapi-infra", s.name, "restore")
	if err != nil {
		t.Fatal(err)
	}
	_, stderr, err := runDriver(t, s.driver(t, "", "--yes", "up", s.name))
	unlock()
	if holder := fmt.Sprintf("(pid %d)", os.Getpid()); err == nil || !strings.Contains(stderr, "up "+s.name+": the stack is locked: held by ") || !strings.Contains(stderr, holder) {
		t.Errorf("an up while a restore holds the lock: %v, want refused naming the restore's %s:\n%s", err, holder, stderr)
	}
}
