//go:build e2e

package singleserver

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fastapi-infra/fastapi-infra/components/monitoring"
	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// There is no pulumi-docker provider binary on the build machine, so this
// test runs what the SingleServer component generates on the real Docker
// engine, the way the provider would: the same networks (internal private
// network, fixed proxy address), the same commands, healthchecks and secret
// files (uploaded into created containers before they start), the generated
// nginx.conf and entrypoint. Images come from images/build.sh (Debian
// packages, no registry).

type dockerLab struct {
	t      *testing.T
	prefix string
	plan   addressPlan
	images map[string]string
	// created, for cleanup in reverse order
	containers, networks, volumes []string
}

func dockerCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// newDockerLab builds (or finds) the images of images/build.sh's targets:
// dev (app, postgres, nginx, prometheus), acme (traefik, pebble).
func newDockerLab(t *testing.T, targets ...string) *dockerLab {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Fatal("docker is not installed: the single server cannot be checked on a real engine")
	}
	images := map[string]string{}
	for _, target := range targets {
		build := exec.Command(filepath.Join("..", "..", "images", "build.sh"), target)
		build.Stderr = os.Stderr
		out, err := build.Output()
		if err != nil {
			t.Fatalf("images/build.sh %s: %v", target, err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				images[k] = v
			}
		}
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	suffix := hex.EncodeToString(b)
	// A /24 in 172.31/16 picked at random, so runs do not collide.
	plan, err := PlanAddresses(fmt.Sprintf("172.31.%d.0/24", int(b[0])%200+20))
	if err != nil {
		t.Fatal(err)
	}
	l := &dockerLab{t: t, prefix: "fit-" + suffix, plan: plan, images: images}
	t.Cleanup(l.cleanup)
	return l
}

func (l *dockerLab) cleanup() {
	if l.t.Failed() {
		for _, c := range l.containers {
			out, _ := exec.Command("docker", "logs", c).CombinedOutput()
			var keep []string
			for _, line := range strings.Split(string(out), "\n") {
				// The interesting lines: not the successful requests.
				if line != "" && !strings.Contains(line, `"status":`) && !strings.Contains(line, " 200\"") &&
					!strings.Contains(line, "Context impl") && !strings.Contains(line, "transactional DDL") && !strings.Contains(line, "/health/ready 200") {
					keep = append(keep, line)
				}
			}
			if len(keep) > 30 {
				keep = keep[len(keep)-30:]
			}
			l.t.Logf("logs of %s (without successful requests):\n%s", c, strings.Join(keep, "\n"))
		}
	}
	for i := len(l.containers) - 1; i >= 0; i-- {
		_ = exec.Command("docker", "rm", "-f", l.containers[i]).Run()
	}
	for _, n := range l.networks {
		_ = exec.Command("docker", "network", "rm", n).Run()
	}
	for _, v := range l.volumes {
		_ = exec.Command("docker", "volume", "rm", "-f", v).Run()
	}
}

// create makes a container, uploads files into it (as pulumi-docker's
// uploads do, before the first start) and starts it unless oneShot, which
// runs it attached and returns its exit code.
func (l *dockerLab) create(name string, files map[string]string, args ...string) string {
	l.t.Helper()
	full := l.prefix + "-" + name
	dockerCLI(l.t, append([]string{"create", "--name", full, "--log-driver", "json-file", "--log-opt", "max-size=10m", "--log-opt", "max-file=3"}, args...)...)
	l.containers = append(l.containers, full)
	if len(files) == 0 {
		return full
	}
	// As the provider uploads: one tar whose entries carry the full path,
	// extracted at / (missing folders are made on the way).
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for path, content := range files {
		mode := int64(0o444)
		if strings.HasSuffix(path, ".sh") {
			mode = 0o555
		}
		hdr := &tar.Header{Name: strings.TrimPrefix(path, "/"), Mode: mode, Size: int64(len(content)), ModTime: time.Now()}
		if err := tw.WriteHeader(hdr); err != nil {
			l.t.Fatal(err)
		}
		_, _ = tw.Write([]byte(content))
	}
	_ = tw.Close()
	cp := exec.Command("docker", "cp", "-", full+":/")
	cp.Stdin = &buf
	if out, err := cp.CombinedOutput(); err != nil {
		l.t.Fatalf("uploading into %s: %v\n%s", full, err, out)
	}
	return full
}

func (l *dockerLab) waitHealthy(name string, within time.Duration) {
	l.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if dockerCLI(l.t, "inspect", "-f", "{{.State.Health.Status}}", name) == "healthy" {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	l.t.Fatalf("%s is not healthy after %s", name, within)
}

// healthArgs turns the component's healthcheck into docker create flags.
func healthArgs(test []string) []string {
	return []string{"--health-cmd", shellJoin(test[1:]), "--health-interval", "1s", "--health-timeout", "3s", "--health-retries", "3"}
}

func shellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(quoted, " ")
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// backend starts what either proxy sits in front of, as the component
// makes it: the internal private network (fixed address plan) and the edge
// network, PostgreSQL with its password as a file, the one-shot migration
// (which must exit 0), and returns the function that starts one app
// replica (with labels, for Traefik) and does not wait for its health.
func (l *dockerLab) backend(spec service.Spec, labels map[string]string) func(name string) string {
	t, p := l.t, l.prefix
	const password = "real-docker-test-pw"
	dbURL := fmt.Sprintf("postgresql://app:%s@%s-db:5432/app?sslmode=disable", password, p)

	// Networks as buildNetworks makes them.
	dockerCLI(t, "network", "create", "--internal", "--subnet", l.plan.Subnet, "--ip-range", l.plan.DynamicRange, p+"-private")
	dockerCLI(t, "network", "create", p+"-edge")
	l.networks = append(l.networks, p+"-private", p+"-edge")
	dockerCLI(t, "volume", "create", p+"-db-data")
	dockerCLI(t, "volume", "create", p+"-tls")
	l.volumes = append(l.volumes, p+"-db-data", p+"-tls")

	// PostgreSQL with its password as a file.
	db := l.create("db", map[string]string{"/run/secrets/POSTGRES_PASSWORD": password},
		append(healthArgs([]string{"CMD", "pg_isready", "-U", "app", "-d", "app"}),
			"--network", p+"-private", "--network-alias", p+"-db", "-v", p+"-db-data:/var/lib/postgresql/data",
			"-e", "POSTGRES_DB=app", "-e", "POSTGRES_USER=app", "-e", "POSTGRES_PASSWORD_FILE=/run/secrets/POSTGRES_PASSWORD",
			l.images["POSTGRES"])...)
	dockerCLI(t, "start", db)
	l.waitHealthy(db, 60*time.Second)

	// The one-shot migration must exit 0.
	migrate := l.create("migrate", map[string]string{"/run/secrets/DATABASE_URL": dbURL},
		"--network", p+"-private", "--user", appUser, "-e", "DATABASE_URL_FILE=/run/secrets/DATABASE_URL",
		l.images["APP"], "alembic", "upgrade", "head")
	if out, err := exec.Command("docker", "start", "-a", migrate).CombinedOutput(); err != nil {
		t.Fatalf("migration failed: %v\n%s", err, out)
	}
	if code := dockerCLI(t, "inspect", "-f", "{{.State.ExitCode}}", migrate); code != "0" {
		t.Fatalf("migration exited %s", code)
	}

	// Replicas with the component's command and healthcheck.
	liveURL := fmt.Sprintf("http://127.0.0.1:%d%s", spec.Port, spec.Health.LivePath)
	appHealth := []string{"CMD", "python3", "-c", "import sys,urllib.request; sys.exit(0 if urllib.request.urlopen('" + liveURL + "', timeout=2).status == 200 else 1)"}
	var labelArgs []string
	for k, v := range labels {
		labelArgs = append(labelArgs, "--label", k+"="+v)
	}
	return func(name string) string {
		c := l.create(name, map[string]string{"/run/secrets/DATABASE_URL": dbURL},
			append(append(append(healthArgs(appHealth), labelArgs...),
				"--network", p+"-private", "--network-alias", p+"-app", "--user", appUser,
				"--restart", "unless-stopped", "--memory", "512m", "--cpus", "0.5", "--cap-drop", "ALL",
				"--security-opt", "no-new-privileges:true", "--stop-timeout", strconv.Itoa(spec.ShutdownGraceSeconds),
				"-e", "DATABASE_URL_FILE=/run/secrets/DATABASE_URL",
				"-e", "PROMETHEUS_MULTIPROC_DIR="+multiprocDir, "--tmpfs", multiprocDir+":rw,noexec,nosuid,size=16m,mode=1777",
				l.images["APP"]), spec.ServerCommand(l.plan.ProxyIP)...)...)
		dockerCLI(t, "start", c)
		return c
	}
}

func TestSingleServerOnRealDocker(t *testing.T) {
	l := newDockerLab(t, "dev")
	p := l.prefix
	spec := service.Spec{
		Name: p, Module: "app.main:app", Port: 8000, Workers: 2, ProxyHeaders: true, ShutdownGraceSeconds: 10,
		Domain: "localhost", TLS: service.TLS{Mode: service.TLSSelfSigned},
		Health:   service.Health{LivePath: "/health/live", ReadyPath: "/health/ready"},
		Database: service.Database{User: "app", Name: "app", Port: 5432, SSLMode: "disable"},
	}
	start := time.Now()
	startApp := l.backend(spec, nil)
	app1, app2 := startApp("app-1"), startApp("app-2")
	l.waitHealthy(app1, 60*time.Second)
	l.waitHealthy(app2, 60*time.Second)

	// The proxy: edge network with published ports, then the private
	// network at its fixed address; config and entrypoint uploaded.
	httpPort, httpsPort := freePort(t), freePort(t)
	conf, err := RenderNginx(NginxConfigFor(spec, p+"-app", httpsPort, "10m"))
	if err != nil {
		t.Fatal(err)
	}
	proxy := l.create("proxy", map[string]string{proxyDir + "nginx.conf": conf, proxyDir + "entrypoint.sh": proxyEntrypoint},
		"--network", p+"-edge", "-p", fmt.Sprintf("127.0.0.1:%d:80", httpPort), "-p", fmt.Sprintf("127.0.0.1:%d:443", httpsPort),
		"-v", p+"-tls:"+tlsDir, "-e", "TLS_MODE=self-signed", "-e", "DOMAIN=localhost", "-e", "UPSTREAM_HOST="+p+"-app",
		"--entrypoint", "/bin/sh", l.images["NGINX"], proxyDir+"entrypoint.sh")
	dockerCLI(t, "network", "connect", "--ip", l.plan.ProxyIP, p+"-private", proxy)
	dockerCLI(t, "start", proxy)

	base := fmt.Sprintf("https://127.0.0.1:%d", httpsPort)
	client := &http.Client{
		Timeout:       10 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if r, err := client.Get(base + "/health/ready"); err == nil && r.StatusCode == 200 {
			r.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the proxy does not answer over HTTPS within 30 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("cold start to healthy and HTTPS 200: %s", time.Since(start).Round(100*time.Millisecond))

	t.Run("the image runs as non-root", func(t *testing.T) {
		if user := dockerCLI(t, "image", "inspect", "-f", "{{.Config.User}}", l.images["APP"]); user != appUser {
			t.Errorf("the image's user is %q, want %s", user, appUser)
		}
		if uid := dockerCLI(t, "exec", app2, "id", "-u"); uid != "10001" {
			t.Errorf("the app runs as uid %s", uid)
		}
	})

	t.Run("http redirects to https", func(t *testing.T) {
		r, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/items?x=1", httpPort))
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if want := fmt.Sprintf("https://127.0.0.1:%d/items?x=1", httpsPort); r.StatusCode != 301 || r.Header.Get("Location") != want {
			t.Errorf("got %d Location %q, want 301 %q", r.StatusCode, r.Header.Get("Location"), want)
		}
	})

	t.Run("health endpoints and HSTS over https", func(t *testing.T) {
		for _, path := range []string{"/health/live", "/health/ready"} {
			r, err := client.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			if r.StatusCode != 200 {
				t.Errorf("%s: %d", path, r.StatusCode)
			}
			if !strings.HasPrefix(r.Header.Get("Strict-Transport-Security"), "max-age=") {
				t.Errorf("%s: no HSTS header", path)
			}
		}
	})

	t.Run("the app sees https and the client address", func(t *testing.T) {
		req, _ := http.NewRequest("GET", base+"/_meta/request", nil)
		req.Header.Set("X-Forwarded-For", "203.0.113.66") // a client's lie
		r, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		var info struct{ Scheme, Client string }
		if err := json.NewDecoder(r.Body).Decode(&info); err != nil {
			t.Fatal(err)
		}
		gateway := dockerCLI(t, "network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", p+"-edge")
		if info.Scheme != "https" {
			t.Errorf("the app sees scheme %q", info.Scheme)
		}
		// nginx's $remote_addr is the Docker gateway the host's connection
		// comes through; not the proxy's own address, not the forged one.
		if info.Client != gateway {
			t.Errorf("the app sees client %q, want the address nginx saw (%s)", info.Client, gateway)
		}
	})

	t.Run("metrics add up both workers of a replica", func(t *testing.T) {
		for range 10 {
			if r, err := client.Get(base + "/health/live"); err == nil {
				r.Body.Close()
			}
		}
		// Scraped inside the private network, as Prometheus does.
		out := dockerCLI(t, "exec", app2, "python3", "-c",
			"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/metrics').read().decode())")
		if !strings.Contains(out, `http_requests_total{method="GET",route="/health/live",status="200"}`) || !strings.Contains(out, "app_start_time_seconds") {
			t.Errorf("/metrics of a two-worker replica:\n%s", out)
		}
	})

	t.Run("prometheus finds every replica and loads the alerts", func(t *testing.T) {
		rules, err := monitoring.RuleFile(monitoring.Alerts(p, p, monitoring.Thresholds{DownMinutes: 3, ErrorRatio: 0.05, P95Seconds: 0.5, RestartsPerHour: 3}))
		if err != nil {
			t.Fatal(err)
		}
		conf, err := RenderPrometheus(PrometheusConfig{Job: p, Upstream: p + "-app", Port: spec.Port, RuleFile: prometheusDir + "rules.yml"})
		if err != nil {
			t.Fatal(err)
		}
		promPort := freePort(t)
		prom := l.create("prometheus", map[string]string{prometheusDir + "prometheus.yml": conf, prometheusDir + "rules.yml": rules},
			"--network", p+"-edge", "-p", fmt.Sprintf("127.0.0.1:%d:9090", promPort), l.images["PROMETHEUS"],
			"--config.file="+prometheusDir+"prometheus.yml", "--storage.tsdb.path=/prometheus", "--web.listen-address=:9090")
		dockerCLI(t, "network", "connect", p+"-private", prom)
		dockerCLI(t, "start", prom)
		api := fmt.Sprintf("http://127.0.0.1:%d/api/v1/", promPort)
		query := api + "query?query=" + url.QueryEscape(fmt.Sprintf(`sum(up{job=%q})`, p))
		deadline := time.Now().Add(90 * time.Second)
		for {
			var res struct {
				Data struct {
					Result []struct {
						Value []any `json:"value"`
					} `json:"result"`
				} `json:"data"`
			}
			if r, err := http.Get(query); err == nil {
				_ = json.NewDecoder(r.Body).Decode(&res)
				r.Body.Close()
			}
			if len(res.Data.Result) == 1 && fmt.Sprint(res.Data.Result[0].Value[1]) == "2" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Prometheus does not see both replicas up within 90 s (last answer %+v)", res)
			}
			time.Sleep(2 * time.Second)
		}
		r, err := http.Get(api + "rules")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		var rulesRes struct {
			Data struct {
				Groups []struct {
					Rules []struct {
						Name   string `json:"name"`
						Health string `json:"health"`
					} `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		if err := json.NewDecoder(r.Body).Decode(&rulesRes); err != nil {
			t.Fatal(err)
		}
		if len(rulesRes.Data.Groups) != 1 || len(rulesRes.Data.Groups[0].Rules) != 6 {
			t.Fatalf("Prometheus loaded %+v, want one group of 6 alerts", rulesRes.Data.Groups)
		}
		for _, rule := range rulesRes.Data.Groups[0].Rules {
			if rule.Health == "err" {
				t.Errorf("alert %s does not evaluate", rule.Name)
			}
		}
	})

	t.Run("TLS 1.1 is refused, 1.2 and 1.3 accepted", func(t *testing.T) {
		addr := fmt.Sprintf("127.0.0.1:%d", httpsPort)
		if c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
			c.Close()
			t.Error("a TLS 1.1 handshake succeeded")
		}
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: v, MaxVersion: v})
			if err != nil {
				t.Errorf("TLS %x refused: %v", v, err)
				continue
			}
			c.Close()
		}
	})

	t.Run("a replica stopping or replaced under load fails no request", func(t *testing.T) {
		stopped, total, failed, firstErr := l.turnoverUnderLoad(t, client, base+"/health/ready", startApp, app1, app2, 2*time.Second)
		// uvicorn exits by itself well within the grace period, not by SIGKILL (137).
		if code := dockerCLI(t, "inspect", "-f", "{{.State.ExitCode}}", app1); code != "0" || stopped >= time.Duration(spec.ShutdownGraceSeconds)*time.Second {
			t.Errorf("SIGTERM: exit code %s after %s (grace %ds)", code, stopped.Round(time.Millisecond), spec.ShutdownGraceSeconds)
		}
		if failed > 0 {
			t.Errorf("%d of %d requests failed; first: %s", failed, total, firstErr)
		}
	})
}

// turnoverUnderLoad replaces the replicas the way a release does, under a
// steady request loop to url: old replica app1 stops (graceful: SIGTERM,
// in-flight requests finish), a new replica app-3 joins and turns healthy,
// and settle later the last old one, app2, stops. It fails the test if
// fewer than 50 requests were sent, and returns how long app1 took to stop
// and what the requests met; the caller judges the failures.
func (l *dockerLab) turnoverUnderLoad(t *testing.T, client *http.Client, url string, startApp func(string) string, app1, app2 string, settle time.Duration) (stopped time.Duration, total, failed int64, firstErr string) {
	t.Helper()
	load := startLoad(client, url, 4)
	time.Sleep(time.Second)
	stopStart := time.Now()
	dockerCLI(t, "stop", app1)
	stopped = time.Since(stopStart)
	t.Logf("a replica stopped on SIGTERM in %s", stopped.Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	app3 := startApp("app-3")
	l.waitHealthy(app3, 60*time.Second)
	time.Sleep(settle) // for the proxy to take the new replica in
	dockerCLI(t, "stop", app2)
	time.Sleep(2 * time.Second)
	total, failed, firstErr = load.stop()
	t.Logf("%d requests while stopping one replica and replacing the other: %d failed, slowest %s",
		total, failed, time.Duration(load.slowest.Load()).Round(time.Millisecond))
	if total < 50 {
		t.Errorf("only %d requests were sent", total)
	}
	return stopped, total, failed, firstErr
}

type loadRun struct {
	cancel        context.CancelFunc
	wg            sync.WaitGroup
	total, failed atomic.Int64
	slowest       atomic.Int64 // nanoseconds
	mu            sync.Mutex
	firstErr      string
}

// startLoad sends requests from n workers until stopped: bounded by the
// test's duration and to loopback only.
func startLoad(client *http.Client, url string, n int) *loadRun {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	l := &loadRun{cancel: cancel}
	for range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
				start := time.Now()
				r, err := client.Do(req)
				if ctx.Err() != nil {
					return
				}
				if d := int64(time.Since(start)); d > l.slowest.Load() {
					l.slowest.Store(d)
				}
				l.total.Add(1)
				msg := ""
				switch {
				case err != nil:
					msg = err.Error()
				case r.StatusCode != 200:
					msg = r.Status
				}
				if r != nil {
					r.Body.Close()
				}
				if msg != "" {
					l.failed.Add(1)
					l.mu.Lock()
					if l.firstErr == "" {
						l.firstErr = msg
					}
					l.mu.Unlock()
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	return l
}

func (l *loadRun) stop() (total, failed int64, firstErr string) {
	l.cancel()
	l.wg.Wait()
	return l.total.Load(), l.failed.Load(), l.firstErr
}
