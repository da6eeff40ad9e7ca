//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fastapi-infra/fastapi-infra/internal/loadgen"
)

// TestKubernetesOnRealPods proves the Kubernetes component on the lab's
// real node: real probes, real signals, the real securityContext, and every
// request through a real ingress controller with the stack's certificate.
// The steps share one stack, in order, as one service's life would.
func TestKubernetesOnRealPods(t *testing.T) {
	s := newRealStack(t, nil)

	t.Run("up from empty serves HTTPS through the ingress", func(t *testing.T) {
		start := time.Now()
		if _, out, err := s.up(t); err != nil {
			t.Fatalf("up failed:\n%s\n%v", out, err)
		}
		upDone := time.Since(start)
		served := s.waitServing(t, "/items", time.Minute)
		t.Logf("up from empty: %s to every await, HTTPS 200 on /items %s later", upDone.Round(100*time.Millisecond), served.Round(100*time.Millisecond))
		s.allReady(t, "api", 2)
		s.allReady(t, "database", 1)
		// The certificate is the stack's: the client trusts only its CA.
		resp, err := s.client.Get(s.url("/health/ready"))
		if err != nil {
			t.Fatalf("HTTPS with the stack's certificate: %v", err)
		}
		resp.Body.Close()
		if leaf := resp.TLS.PeerCertificates[0]; leaf.Subject.CommonName != realDomain || leaf.Issuer.CommonName != s.ca.Cert.Subject.CommonName {
			t.Errorf("served certificate %q issued by %q", leaf.Subject.CommonName, leaf.Issuer.CommonName)
		}
		// The app writes and reads PostgreSQL through the whole path.
		req, _ := http.NewRequest("POST", s.url("/items"), strings.NewReader(`{"name":"first","description":"through the ingress"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err = s.client.Do(req)
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST /items: %v %v", err, resp)
		}
		resp.Body.Close()
		if code, body := s.get(t, "/items"); code != 200 || !strings.Contains(body, "through the ingress") {
			t.Errorf("GET /items: %d %s", code, body)
		}
		// The ingress controller terminates TLS; the app believes its
		// X-Forwarded-* (kubernetes.trustedProxies names it) and sees
		// https and the client, not an address the client made up.
		var seen struct{ Scheme, Host, Client string }
		req, _ = http.NewRequest("GET", s.url("/_meta/request"), nil)
		req.Header.Set("X-Forwarded-For", "203.0.113.9")
		resp, err = s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if json.Unmarshal(body, &seen) != nil || seen.Scheme != "https" || seen.Host != realDomain || seen.Client != "127.0.0.1" {
			t.Errorf("the app sees %+v (%s), want https for %s from 127.0.0.1", seen, body, realDomain)
		}
		// Metrics are Prometheus's, scraped from the pods: through the
		// ingress, whatever the controller, /metrics finds nothing (the app
		// refuses what carries the X-Forwarded-For the controller adds).
		if code, body := s.get(t, "/metrics"); code != 404 || strings.Contains(body, "http_requests_total") {
			t.Errorf("GET /metrics through the ingress: %d %.200s, want 404", code, body)
		}
		// HTTP redirects to HTTPS at the controller.
		plain := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		r, _ := http.NewRequest("GET", "http://"+env.lab.IngressHTTP+"/items", nil)
		r.Host = realDomain
		if resp, err := plain.Do(r); err != nil || resp.StatusCode/100 != 3 || !strings.HasPrefix(resp.Header.Get("Location"), "https://") {
			t.Errorf("HTTP is not redirected to HTTPS: %v %v", resp, err)
		}
	})
	if t.Failed() {
		return
	}

	t.Run("the pods run the restricted securityContext", func(t *testing.T) {
		pod := s.allReady(t, "api", 2)[0]
		// What the kernel says of the app's process (PID 1 of its container).
		out := kubectlRun(t, "-n", s.namespace, "exec", pod.str("metadata.name"), "-c", "api", "--",
			"python3", "-c", `import os
status = dict(l.split(":\t", 1) for l in open("/proc/1/status").read().splitlines() if ":\t" in l)
try:
    open("/srv/written", "w")
    root = "writable"
except OSError as e:
    root = "read-only" if e.errno == 30 else "error %d" % e.errno
print("uid", os.getuid(), "gid", os.getgid(), "root", root, "CapEff", status["CapEff"].strip(),
      "NoNewPrivs", status["NoNewPrivs"].strip(), "Seccomp", status["Seccomp"].strip())`)
		want := "uid 10001 gid 10001 root read-only CapEff 0000000000000000 NoNewPrivs 1 Seccomp 2"
		if strings.TrimSpace(out) != want {
			t.Errorf("the app's process runs with\n  %s\nwant\n  %s", strings.TrimSpace(out), want)
		}
		var ns obj
		kubectl(t, &ns, "get", "namespace", s.namespace)
		labels, _ := ns.dig("metadata.labels").(map[string]any)
		expect(t, "namespace enforces", labels["pod-security.kubernetes.io/enforce"], "restricted")
	})

	t.Run("exec runs a one-off command of the release and removes it", func(t *testing.T) {
		// The release's environment (the Secret's DATABASE_URL), the app's
		// user and the database through the migration's NetworkPolicy; the
		// output comes back, then the exit code; no Job is left.
		start := time.Now()
		stdout, stderr, err := runDriver(t, s.driver(t, "", "exec", s.name, "--", "python3", "-c", `import os, sys, psycopg2
c = psycopg2.connect(os.environ["DATABASE_URL"])
cur = c.cursor(); cur.execute("SELECT string_agg(name, ',' ORDER BY id) FROM items")
print("rows", cur.fetchone()[0], "uid", os.getuid())
sys.exit(3)`))
		t.Logf("exec in %s: %q", time.Since(start).Round(100*time.Millisecond), stdout)
		if code := exitStatus(err); code != 3 || !strings.Contains(stdout, "rows first uid 10001") {
			t.Errorf("exec: exit %d (%v), output %q; want the row written through the ingress as uid 10001, and exit 3\n%s", code, err, stdout, stderr)
		}
		// exec -i: a pipe's input reaches the pod's command through the
		// API server's attach, and its end is the command's end of file.
		piped := s.driver(t, "hello\nworld\n", "exec", "-i", s.name, "--", "python3", "-c", `import sys; data = sys.stdin.read(); print("read", len(data), data.split()); raise SystemExit(3)`)
		out, err := piped.CombinedOutput()
		if code := exitStatus(err); code != 3 || !strings.Contains(string(out), "read 12 ['hello', 'world']") {
			t.Errorf("exec -i: exit %d (%v), output %q; want the 12 bytes it was given and exit 3", code, err, out)
		}
		// exec -it: a terminal on both sides (script(1) gives the driver
		// one).
		shell := fmt.Sprintf("%s --dir %s --backend file://%s exec -it %s -- python3 -c 'import sys; print(\"tty\", sys.stdin.isatty(), sys.stdout.isatty(), input(\"name? \"))'",
			driverBinary(t), filepath.Join(s.dir, "project"), filepath.Join(s.dir, "backend"), s.name)
		tty := s.driver(t, "ada\n", "version")
		tty.Path, tty.Args = "/usr/bin/script", []string{"script", "-qec", shell, "/dev/null"}
		// TERM=dumb: a dependency's init (bubbletea's, through the
		// Pulumi SDK) asks the terminal for its background colour and
		// reads the answer from stdin for up to 5 s; script(1)'s terminal
		// never answers, so it took the typed line instead.
		tty.Env = append(tty.Env, "TERM=dumb")
		out, err = tty.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "tty True True ada") {
			t.Errorf("exec -it under a terminal: %v, output %q; want the command on a terminal reading the typed line", err, out)
		}
		var jobs list
		kubectl(t, &jobs, "-n", s.namespace, "get", "jobs", "-l", "app.kubernetes.io/component=exec")
		if len(jobs.Items) != 0 {
			t.Errorf("%d exec Jobs left after exec", len(jobs.Items))
		}
	})

	t.Run("logs merges the pods' lines, and names the services it has", func(t *testing.T) {
		stdout, stderr, err := runDriver(t, s.driver(t, "", "logs", s.name, "--service", "app", "--since", "10m", "--grep", "GET /items"))
		if err != nil || !strings.Contains(stdout, " | ") || !strings.Contains(stdout, "GET /items") {
			t.Errorf("logs --service app --grep 'GET /items': %v\n%.500s\n%s", err, stdout, stderr)
		}
		for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
			if !strings.Contains(l, "GET /items") || !strings.Contains(l, " fastapi-") {
				t.Errorf("a line of another service or without the grep text: %q", l)
				break
			}
		}
		if _, stderr, err := runDriver(t, s.driver(t, "", "logs", s.name, "--service", "proxy")); err == nil || !strings.Contains(stderr, `no service "proxy" among the pods; their services: app, `) || !strings.Contains(stderr, "db") {
			t.Errorf("logs --service proxy on Kubernetes: %v, want the services listed:\n%s", err, stderr)
		}
	})

	t.Run("a rolling update under load fails no request", func(t *testing.T) {
		before := podNames(s.allReady(t, "api", 2))
		s.setPath(t, "app.env.RELEASE", "2")
		res, capacity := s.underLoad(t, "/items", func() {
			if _, out, err := s.up(t); err != nil {
				t.Fatalf("update failed:\n%s\n%v", out, err)
			}
		})
		t.Logf("rolling update (env change) under load: %s; %s", res, capacity)
		if res.Failed != 0 {
			t.Errorf("%d of %d requests failed during the rollout: %v", res.Failed, res.Sent, res.Errors)
		}
		capacity.atLeast(t, 2)
		s.waitReplaced(t, before, time.Minute)
		s.allReady(t, "api", 2)
	})

	t.Run("a rollback under load fails no request", func(t *testing.T) {
		// ./infra rollback on Kubernetes: the release before (no RELEASE),
		// from the stack's history, as a normal rolling update.
		before := podNames(s.allReady(t, "api", 2))
		var stderr string
		var err error
		res, capacity := s.underLoad(t, "/items", func() {
			_, stderr, err = runDriver(t, s.driver(t, "", "--yes", "rollback", s.name))
		})
		t.Logf("rollback under load: %s; %s", res, capacity)
		if err != nil || !strings.Contains(stderr, "goes back to the release of update #1 ") {
			t.Fatalf("rollback: %v\n%s", err, stderr)
		}
		if res.Failed != 0 {
			t.Errorf("%d of %d requests failed during the rollback: %v", res.Failed, res.Sent, res.Errors)
		}
		capacity.atLeast(t, 2)
		s.waitReplaced(t, before, time.Minute)
		var dep obj
		kubectl(t, &dep, "-n", s.namespace, "get", "deployment", "fastapi")
		var cm obj
		kubectl(t, &cm, "-n", s.namespace, "get", "configmap", dep.str("spec.template.spec.containers[0].envFrom[0].configMapRef.name"))
		if _, ok := cm.dig("data").(map[string]any)["RELEASE"]; ok {
			t.Errorf("the pods still get RELEASE after the rollback to update #1: %v", cm.dig("data"))
		}
	})

	t.Run("a release that adds a migration fails no request", func(t *testing.T) {
		image := s.migrationImage(t)
		s.setPath(t, "app.image", image)
		res, capacity := s.underLoad(t, "/items", func() {
			if _, out, err := s.up(t); err != nil {
				t.Fatalf("release with a migration failed:\n%s\n%v", out, err)
			}
		})
		t.Logf("release adding migration 0002 under load: %s; %s", res, capacity)
		if res.Failed != 0 {
			t.Errorf("%d of %d requests failed during a release that adds a migration: %v", res.Failed, res.Sent, res.Errors)
		}
		// The migration moves the schema ahead of the old pods before the
		// new ones run: the old ones must keep passing their readiness
		// probe, or the service runs on fewer pods (none, when the new
		// pods are slow or fail) until the rollout ends.
		capacity.atLeast(t, 2)
		var dep obj
		kubectl(t, &dep, "-n", s.namespace, "get", "deployment", "fastapi")
		expect(t, "image after the release", dep.str("spec.template.spec.containers[0].image"), image)
	})

	t.Run("a failing migration fails up, and the old pods serve on", func(t *testing.T) {
		s.setList(t, "migration.command", "python3", "-c", "import sys; print('e2e: this migration fails on purpose', file=sys.stderr); sys.exit(3)")
		var out string
		var err error
		res, capacity := s.underLoad(t, "/items", func() { _, out, err = s.up(t) })
		t.Logf("failing migration under load: %s; %s", res, capacity)
		capacity.atLeast(t, 2)
		if err == nil {
			t.Fatal("up succeeded with a failing migration")
		}
		msg := out + err.Error()
		for _, want := range []string{"fastapi-migrate-", "exited with code 3", "e2e: this migration fails on purpose", "BackoffLimitExceeded"} {
			if !strings.Contains(msg, want) {
				t.Errorf("the failed up does not say %q:\n%s", want, lastLines(msg, 40))
			}
		}
		if res.Failed != 0 {
			t.Errorf("%d of %d requests failed while a migration failed: %v", res.Failed, res.Sent, res.Errors)
		}
		s.allReady(t, "api", 2)
		// Back to the working release: the completed Job is the same one.
		s.setList(t, "migration.command", "alembic", "upgrade", "head")
		if _, out, err := s.up(t); err != nil {
			t.Fatalf("up after the failed migration:\n%s\n%v", out, err)
		}
	})

	t.Run("a killed pod is replaced while the ingress retries", func(t *testing.T) {
		pod := s.allReady(t, "api", 2)[0]
		name := pod.str("metadata.name")
		run := s.load("/items")
		time.Sleep(2 * time.Second)
		killed := time.Now()
		dead, err := env.lab.KillContainer(context.Background(), pod.str("status.containerStatuses[0].containerID"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		back := s.waitRestarted(t, name, time.Minute)
		time.Sleep(2 * time.Second)
		res := run.Stop()
		t.Logf("SIGKILL of %s's process under load: Ready again after %s; %s", name, back.Sub(killed).Round(100*time.Millisecond), res)
		// The retry covers a refused connection; a request the process was
		// serving when it died has no answer to retry into. So a failure
		// is allowed only to a request sent before the process was gone
		// (a bound of 2 failures, whatever was in flight, failed with 3 on
		// a slower machine where p99 was 419 ms). The offsets say how close
		// to the death each failure was sent.
		var before, after []string
		for _, o := range res.Outcomes {
			if o.Err == "" {
				continue
			}
			at := o.Start.Sub(dead).Round(time.Millisecond).String()
			if o.Start.Before(dead) {
				before = append(before, at)
			} else {
				after = append(after, "+"+at)
			}
		}
		t.Logf("the process was gone %s after the kill; failures sent before that: %v", dead.Sub(killed).Round(time.Millisecond), before)
		if len(after) > 0 {
			t.Errorf("%d requests sent after the process was gone failed (the retry should cover them), sent at %v: %v", len(after), after, res.Errors)
		}
	})

	t.Run("a request in flight finishes when its pod is replaced", func(t *testing.T) {
		const slow = 8
		type answer struct {
			code int
			body string
			err  error
			at   time.Time
		}
		done := make(chan answer, 1)
		go func() {
			resp, err := s.client.Get(s.url(fmt.Sprintf("/_meta/slow?seconds=%d", slow)))
			a := answer{err: err, at: time.Now()}
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				a.code, a.body = resp.StatusCode, string(body)
			}
			done <- a
		}()
		time.Sleep(time.Second)
		deleted := time.Now()
		// Every app pod goes: whichever serves the slow request is told to
		// stop (preStop, then SIGTERM) while the request is in flight.
		kubectlRun(t, "-n", s.namespace, "delete", "pods", "-l", "app.kubernetes.io/component=api", "--wait=false")
		a := <-done
		if a.err != nil || a.code != 200 || !strings.Contains(a.body, fmt.Sprintf(`"slept":%d`, slow)) {
			t.Fatalf("the request in flight got %d %q %v", a.code, a.body, a.err)
		}
		var served struct{ Server string }
		_ = json.Unmarshal([]byte(a.body), &served)
		t.Logf("a %d s request in flight when its pod %s was deleted answered 200 %s after the delete", slow, served.Server, a.at.Sub(deleted).Round(100*time.Millisecond))
		s.waitServing(t, "/items", time.Minute)
	})
}

// underLoad runs action while GET path goes at 50 requests a second
// through the ingress, and for a few seconds after, while old pods stop;
// meanwhile it samples the Service's ready endpoints, the pods the ingress
// may send to.
func (s *realStack) underLoad(t *testing.T, path string, action func()) (loadgen.Result, capacity) {
	t.Helper()
	run := s.load(path)
	watch := s.watchCapacity(t)
	time.Sleep(2 * time.Second)
	action()
	time.Sleep(8 * time.Second) // preStop (5 s) and the old pods' stop
	return run.Stop(), watch()
}

// capacity is what watchCapacity saw: the fewest ready endpoints, and the
// pods that went unready without being told to stop.
type capacity struct {
	samples, least int
	unready        map[string]bool
}

func (c capacity) String() string {
	return fmt.Sprintf("ready endpoints never below %d over %d samples", c.least, c.samples)
}

func (c capacity) atLeast(t *testing.T, want int) {
	t.Helper()
	if c.samples < 10 {
		t.Errorf("only %d samples of the Service's endpoints", c.samples)
	}
	if c.least < want {
		t.Errorf("the Service fell to %d ready endpoints (want at least %d, the replicas); pods that went unready while serving: %v", c.least, want, c.unready)
	}
}

// watchCapacity polls the app Service's EndpointSlices twice a second until
// the returned function is called.
func (s *realStack) watchCapacity(t *testing.T) func() capacity {
	done := make(chan struct{})
	result := make(chan capacity, 1)
	go func() {
		c := capacity{least: 1 << 30, unready: map[string]bool{}}
		wasReady := map[string]bool{}
		for {
			select {
			case <-done:
				result <- c
				return
			case <-time.After(500 * time.Millisecond):
			}
			out, err := exec.Command("kubectl", "--kubeconfig", env.lab.Kubeconfig, "-n", s.namespace, "get", "endpointslices",
				"-l", "kubernetes.io/service-name=fastapi", "-o", "json").Output()
			var l struct {
				Items []struct {
					Endpoints []struct {
						Conditions struct{ Ready, Terminating *bool }
						TargetRef  struct{ Name string }
					}
				}
			}
			if err != nil || json.Unmarshal(out, &l) != nil {
				continue
			}
			ready := 0
			for _, slice := range l.Items {
				for _, e := range slice.Endpoints {
					switch name := e.TargetRef.Name; {
					case e.Conditions.Ready != nil && *e.Conditions.Ready:
						ready++
						wasReady[name] = true
					case wasReady[name] && (e.Conditions.Terminating == nil || !*e.Conditions.Terminating):
						c.unready[name] = true
					}
				}
			}
			c.samples++
			c.least = min(c.least, ready)
		}
	}()
	return func() capacity { close(done); return <-result }
}

// waitRestarted waits until the pod's container restarted and is Ready.
func (s *realStack) waitRestarted(t *testing.T, pod string, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		var p obj
		kubectl(t, &p, "-n", s.namespace, "get", "pod", pod)
		if p.str("status.containerStatuses[0].restartCount") != "0" && p.str("status.containerStatuses[0].ready") == "true" {
			return time.Now()
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("pod %s did not restart and become Ready within %s", pod, within)
	return time.Time{}
}

// migrationImage is the app image plus migration 0002 (a new nullable
// column: an expand step the previous release can ignore), loaded into
// the real node.
func (s *realStack) migrationImage(t *testing.T) string {
	t.Helper()
	base := s.images.App
	image := "fastapi-infra-app:e2e-0002-" + strings.TrimPrefix(base[strings.LastIndex(base, ":"):], ":")
	build := exec.Command("docker", "build", "-q", "-t", image, "--build-arg", "APP="+base, filepath.Join(env.repo, "e2e", "testdata", "migration-0002"))
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", image, err, out)
	}
	start := time.Now()
	if err := env.lab.LoadImages(context.Background(), image); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s loaded into the real node in %s", image, time.Since(start).Round(100*time.Millisecond))
	return image
}

// waitReplaced waits until none of the old pods runs without being told
// to stop. Pulumi's await ends once the new ReplicaSet is available;
// scaling the old one down is the Deployment controller's next step, so on
// a busy node an old pod may still be there when up returns.
func (s *realStack) waitReplaced(t *testing.T, old map[string]bool, within time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		var left []string
		for _, p := range s.pods(t, "api") {
			if name := p.str("metadata.name"); old[name] && p.dig("metadata.deletionTimestamp") == nil {
				left = append(left, name)
			}
		}
		if len(left) == 0 {
			t.Logf("every old pod told to stop (waited %s for the controller)", time.Since(start).Round(100*time.Millisecond))
			return
		}
		if time.Since(start) > within {
			t.Errorf("pods %v survived a rollout (still not told to stop %s after the load ended)", left, within)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func podNames(pods []obj) map[string]bool {
	names := map[string]bool{}
	for _, p := range pods {
		names[p.str("metadata.name")] = true
	}
	return names
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
