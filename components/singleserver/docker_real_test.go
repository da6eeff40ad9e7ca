//go:build e2e

package singleserver

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fastapi-infra/fastapi-infra/components/monitoring"
	"github.com/fastapi-infra/fastapi-infra/internal/loadgen"
)

func TestSingleServerOnRealDocker(t *testing.T) {
	r := newRealServer(t, "dev")
	args := r.args()
	args.Monitoring = &Monitoring{Image: r.images["PROMETHEUS"], Retention: "1d", LocalPort: freePort(t),
		Rules: monitoring.Alerts(r.prefix, r.prefix, monitoring.Thresholds{DownMinutes: 3, ErrorRatio: 0.05, P95Seconds: 0.5, RestartsPerHour: 3})}
	start := time.Now()
	r.up(args)
	client, base := localClient(args)
	get := func(path string) (int, http.Header, error) {
		resp, err := client.Get(base + path)
		if err != nil {
			return 0, nil, err
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header, nil
	}
	waitFor(t, "HTTPS 200 through the proxy", 30*time.Second, func() error {
		code, _, err := get("/health/ready")
		if err == nil && code != 200 {
			err = fmt.Errorf("status %d", code)
		}
		return err
	})
	t.Logf("cold start of the component's containers to healthy and HTTPS 200: %s", time.Since(start).Round(100*time.Millisecond))
	app := r.apps()[0]

	t.Run("the app runs as non-root", func(t *testing.T) {
		if uid := r.exec(app, "id", "-u"); uid != "10001" {
			t.Errorf("the app runs as uid %s", uid)
		}
	})

	// What the app's connection attempts meet while the database's
	// container is stopped: its name is unknown, and on the internal
	// network Docker's DNS has nowhere to ask. glibc's defaults waited
	// 10 s for that answer; internalDNSOptions, 1 s.
	t.Run("a name that does not resolve fails within 2 s", func(t *testing.T) {
		took := r.exec(app, "python3", "-c", `import socket, time
start = time.monotonic()
try:
    socket.getaddrinfo("stopped-database.invalid", 5432)
    print("resolved")
except socket.gaierror:
    print(round(time.monotonic() - start, 2))`)
		if secs, err := strconv.ParseFloat(took, 64); err != nil || secs > 2 {
			t.Errorf("a lookup of a name nobody has: %s s, want a failure within 2 s", took)
		}
	})

	t.Run("the app's role owns nothing and may only read and write rows", func(t *testing.T) {
		// The replica's own DATABASE_URL, from its secret file; the table
		// is the migration's (run as the owner).
		out := r.exec(app, "python3", "-c", `import psycopg2
c = psycopg2.connect(open("/run/secrets/DATABASE_URL").read()); c.autocommit = True; cur = c.cursor()
cur.execute("SELECT current_user, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user"); print(*cur.fetchone())
cur.execute("SELECT string_agg(g.rolname, ',') FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = current_user)"); print("member of", cur.fetchone()[0])
cur.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'items'"); print("items owned by", cur.fetchone()[0])
cur.execute("INSERT INTO items (name, description, created_at) VALUES ('least-privilege', '', now()) RETURNING id"); print("insert ok")
for q in ["CREATE TABLE evil (x int)", "COPY (SELECT 1) TO PROGRAM 'id'", "DROP TABLE items", "CREATE ROLE evil", "ALTER TABLE items ADD COLUMN evil int", "SELECT pg_read_file('/etc/passwd')"]:
    try:
        cur.execute(q); print("ALLOWED:", q)
    except psycopg2.Error as e:
        print("denied:", e.pgcode)`)
		t.Logf("as the app:\n%s", out)
		// Its login of this rotation, a member of app_rw and of nothing else.
		for _, want := range []string{"app_rw_", " False False False", "member of app_rw\n", "items owned by app", "insert ok"} {
			if !strings.Contains(out, want) {
				t.Errorf("want %q in:\n%s", want, out)
			}
		}
		if strings.Contains(out, "ALLOWED") || strings.Count(out, "denied: 42501") != 6 {
			t.Errorf("the app's role may do more than read and write rows (42501 is insufficient_privilege):\n%s", out)
		}
	})

	// The passwords reach the containers as files only: not in the
	// stack's state (encrypted there), the engine's view of any container
	// (env, command, labels, names) or any container's log.
	t.Run("no secret in plain text in the state, docker inspect or the logs", func(t *testing.T) {
		// The backend's files as they lie on disk: the checkpoint, its
		// backups and the update history.
		files, err := r.stack.StateFiles()
		if err != nil || len(files) == 0 {
			t.Fatalf("the stack's backend files: %d, %v", len(files), err)
		}
		places := map[string]string{}
		for path, raw := range files {
			places["the state file "+path] = string(raw)
		}
		names, err := r.docker.List(r.ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		for name := range names {
			if !strings.HasPrefix(name, r.prefix+"-") {
				continue
			}
			inspect, err := exec.Command("docker", "inspect", name).Output()
			if err != nil {
				t.Fatal(err)
			}
			logs, _ := r.docker.Logs(r.ctx, name)
			places["docker inspect "+name] = string(inspect)
			places["the log of "+name] = logs
		}
		for _, secret := range []string{realPassword, realAppPassword} {
			for where, text := range places {
				if strings.Contains(text, secret) {
					t.Errorf("a password is in plain text in %s", where)
				}
			}
		}
		t.Logf("looked in %d places", len(places))
	})

	t.Run("http redirects to https", func(t *testing.T) {
		resp, err := client.Get(fmt.Sprintf("http://localhost:%d/items?x=1", args.HTTPPort))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := fmt.Sprintf("https://localhost:%d/items?x=1", args.HTTPSPort); resp.StatusCode != 301 || resp.Header.Get("Location") != want {
			t.Errorf("got %d Location %q, want 301 %q", resp.StatusCode, resp.Header.Get("Location"), want)
		}
	})

	t.Run("other host names get nothing, /metrics is not public", func(t *testing.T) {
		addr := fmt.Sprintf("127.0.0.1:%d", args.HTTPSPort)
		if c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "other.example.com"}); err == nil {
			c.Close()
			t.Error("a TLS handshake for another host name succeeded")
		}
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/", args.HTTPPort), nil)
		req.Host = "other.example.com"
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			t.Errorf("plain HTTP for another host name answered %s", resp.Status)
		}
		if code, _, err := get("/metrics"); err != nil || code != 404 {
			t.Errorf("/metrics through the proxy: %d %v, want 404", code, err)
		}
	})

	t.Run("health endpoints and HSTS over https", func(t *testing.T) {
		for _, path := range []string{"/health/live", "/health/ready"} {
			code, header, err := get(path)
			if err != nil {
				t.Fatal(err)
			}
			if code != 200 {
				t.Errorf("%s: %d", path, code)
			}
			if !strings.HasPrefix(header.Get("Strict-Transport-Security"), "max-age=") {
				t.Errorf("%s: no HSTS header", path)
			}
		}
	})

	t.Run("the app sees https and the client address", func(t *testing.T) {
		req, _ := http.NewRequest("GET", base+"/_meta/request", nil)
		req.Header.Set("X-Forwarded-For", "203.0.113.66") // a client's lie
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var info struct{ Scheme, Client string }
		if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
			t.Fatal(err)
		}
		if info.Scheme != "https" {
			t.Errorf("the app sees scheme %q", info.Scheme)
		}
		// nginx's $remote_addr is the Docker gateway the host's connection
		// comes through: not the proxy's own address, not the forged one.
		// (Docker picks the edge network's subnet from its pools: 172.x or,
		// once those are spent, 192.168.x.)
		out, err := exec.Command("docker", "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", r.prefix+"-edge").Output()
		if err != nil {
			t.Fatalf("docker network inspect %s-edge: %v", r.prefix, err)
		}
		if gateway := strings.TrimSpace(string(out)); info.Client != gateway {
			t.Errorf("the app sees client %q, want the address nginx saw (the edge network's gateway %s)", info.Client, gateway)
		}
	})

	t.Run("metrics add up both workers of a replica", func(t *testing.T) {
		for range 10 {
			_, _, _ = get("/health/live")
		}
		out := r.exec(app, "python3", "-c", "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/metrics').read().decode())")
		if !strings.Contains(out, `http_requests_total{method="GET",route="/health/live",status="200"}`) || !strings.Contains(out, "app_start_time_seconds") {
			t.Errorf("/metrics of a two-worker replica:\n%s", out)
		}
	})

	t.Run("prometheus finds every replica and loads the alerts", func(t *testing.T) {
		api := fmt.Sprintf("http://127.0.0.1:%d/api/v1/", args.Monitoring.LocalPort)
		waitFor(t, "Prometheus seeing both replicas up", 90*time.Second, func() error {
			if v, err := promQuery(api, fmt.Sprintf(`sum(up{job=%q})`, r.prefix)); err != nil || v != "2" {
				return fmt.Errorf("sum(up) = %q, %v", v, err)
			}
			return nil
		})
		var rules struct {
			Data struct {
				Groups []struct {
					Rules []struct{ Name, Health string } `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		if err := getJSON(api+"rules", &rules); err != nil {
			t.Fatal(err)
		}
		if len(rules.Data.Groups) != 1 || len(rules.Data.Groups[0].Rules) != 6 {
			t.Fatalf("Prometheus loaded %+v, want one group of 6 alerts", rules.Data.Groups)
		}
		for _, rule := range rules.Data.Groups[0].Rules {
			if rule.Health == "err" {
				t.Errorf("alert %s does not evaluate", rule.Name)
			}
		}
	})

	t.Run("TLS 1.1 is refused, 1.2 and 1.3 accepted", func(t *testing.T) {
		addr := fmt.Sprintf("127.0.0.1:%d", args.HTTPSPort)
		if c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
			c.Close()
			t.Error("a TLS 1.1 handshake succeeded")
		}
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", MinVersion: v, MaxVersion: v})
			if err != nil {
				t.Errorf("TLS %x refused: %v", v, err)
				continue
			}
			c.Close()
		}
	})

	// A new image and a new env: a new app.image replaces the image
	// resource, and delete-first that removed the running replicas before
	// the new ones existed (the release tests changed only env then).
	t.Run("a release of a new image under load fails no request", func(t *testing.T) {
		next := args
		next.Service.Env = map[string]string{"LOG_LEVEL": "info", "RELEASE": "2", "TEST_ROUTES": "1"}
		repo, _, _ := strings.Cut(args.Service.Image.Ref, ":")
		next.Service.Image.Ref = repo + ":release-2-" + r.prefix
		if out, err := exec.Command("docker", "tag", args.Service.Image.Ref, next.Service.Image.Ref).CombinedOutput(); err != nil {
			t.Fatalf("docker tag: %v\n%s", err, out)
		}
		t.Cleanup(func() { _ = exec.Command("docker", "rmi", next.Service.Image.Ref).Run() })
		old := r.apps()
		run := steadyLoad(client, base+"/items")
		time.Sleep(2 * time.Second)
		start := time.Now()
		retired := r.up(next)
		took := time.Since(start)
		time.Sleep(2 * time.Second)
		res := run.Stop()
		t.Logf("release (new replicas healthy, then the old ones stopped) in %s under 50 req/s: %s", took.Round(100*time.Millisecond), res)
		if res.Failed > 0 {
			t.Errorf("%d of %d requests failed: %v", res.Failed, res.Sent, res.Errors)
		}
		var replicas []stopped
		for _, ret := range retired {
			if slices.Contains(old, ret.Name) {
				replicas = append(replicas, ret)
			}
		}
		if len(replicas) != len(old) {
			t.Fatalf("the update removed %+v, want the old replicas %v", retired, old)
		}
		// uvicorn exits by itself well within the grace period, not by
		// SIGKILL (137).
		for _, ret := range replicas {
			if ret.ExitCode != 0 || ret.Stopped >= time.Duration(args.Service.ShutdownGraceSeconds)*time.Second {
				t.Errorf("replaced replica %s: exit code %d after %s (grace %ds)", ret.Name, ret.ExitCode, ret.Stopped.Round(time.Millisecond), args.Service.ShutdownGraceSeconds)
			}
		}
	})

	t.Run("a replica killed under load is healthy again within 10 s", func(t *testing.T) {
		victim := r.apps()[0]
		run := steadyLoad(client, base+"/items")
		time.Sleep(2 * time.Second)
		killed := time.Now()
		// SIGKILL of PID 1, as the kernel's OOM killer or a crash ends it;
		// the restart policy starts it again.
		if err := r.docker.Crash(r.ctx, victim); err != nil {
			t.Fatal(err)
		}
		back := waitFor(t, victim+" healthy again after a restart", 60*time.Second, func() error {
			st, err := r.docker.Inspect(r.ctx, victim)
			if err != nil {
				return err
			}
			if st.RestartCount == 0 || st.State.Health == nil || st.State.Health.Status != "healthy" {
				health := "-"
				if st.State.Health != nil {
					health = st.State.Health.Status
				}
				return fmt.Errorf("restarts %d, %s, health %s", st.RestartCount, st.State.Status, health)
			}
			return nil
		})
		// Where the time went: Docker's restart, then each probe it ran.
		if st, err := r.docker.Inspect(r.ctx, victim); err == nil {
			t.Logf("%s restarted %s after the SIGKILL; %s", victim, st.State.StartedAt.Sub(killed).Round(10*time.Millisecond), probeTimeline(st, killed))
		}
		time.Sleep(2 * time.Second)
		res := run.Stop()
		t.Logf("SIGKILL of %s's PID 1: healthy again after %s; %s", victim, back.Round(100*time.Millisecond), res)
		if back > 10*time.Second {
			t.Errorf("healthy again only after %s, want within 10 s", back.Round(100*time.Millisecond))
		}
		if res.Failed > 0 {
			t.Errorf("%d of %d requests failed around the crash: %v", res.Failed, res.Sent, res.Errors)
		}
		// Every worker of the restarted replica counts: 20 requests straight
		// to it (the kernel spreads them over its workers) raise its
		// /metrics count by at least 20. (The metric files live on a tmpfs
		// that must be writable again after the restart.)
		out := r.exec(victim, "python3", "-c", `import re, urllib.request
def count():
    body = urllib.request.urlopen("http://127.0.0.1:8000/metrics").read().decode()
    m = re.search(r'http_requests_total\{method="GET",route="/_meta/request",status="200"\} ([0-9.]+)', body)
    return float(m.group(1)) if m else 0.0
before = count()
for _ in range(20):
    urllib.request.urlopen("http://127.0.0.1:8000/_meta/request").read()
print(count() - before)`)
		if out != "20.0" {
			t.Errorf("20 requests to the restarted replica raised its /metrics count by %s: not every worker counts", out)
		}
	})
}

// steadyLoad sends GET url at 50 requests a second (loopback only, at most
// two minutes) until stopped.
func steadyLoad(client *http.Client, url string) *loadgen.Run {
	return loadgen.Start(client, func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, "GET", url, nil)
	}, loadgen.Options{Rate: 50, Max: 2 * time.Minute})
}

// localClient reaches the proxy's published ports on 127.0.0.1 for the
// stack's domain (localhost: nginx answers no other host name), without
// checking its self-signed certificate and without following redirects;
// base is the HTTPS URL.
func localClient(args Args) (client *http.Client, base string) {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12},
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				_, port, _ := net.SplitHostPort(addr)
				return dialer.DialContext(ctx, "tcp4", "127.0.0.1:"+port)
			}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, fmt.Sprintf("https://localhost:%d", args.HTTPSPort)
}
