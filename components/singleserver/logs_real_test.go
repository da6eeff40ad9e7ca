//go:build e2e

package singleserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fastapi-infra/fastapi-infra/internal/logstore"
)

// freeUDPPort is a UDP port of 127.0.0.1 nothing listens on now.
func freeUDPPort(t *testing.T) int {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// TestLogAggregationOnRealDocker runs the component's containers with
// logging.aggregate on the real engine: one request with a known
// X-Request-ID, then VictoriaLogs' query API on the host's loopback finds
// the proxy's access line and the app's JSON line for it, each under its
// container's name; `docker logs` still shows the proxy's line; after a
// release the store (as ./infra logs reads it) still has the replaced
// replicas' lines.
func TestLogAggregationOnRealDocker(t *testing.T) {
	t.Parallel() // measures no load: runs beside another such test, after the load tests
	r := newRealServer(t, "dev", "logs")
	args := r.args()
	args.Logs = &Logs{Image: r.images["VICTORIA_LOGS"], Retention: "1d", LocalPort: freePort(t), SyslogPort: freeUDPPort(t)}
	r.up(args)

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp4", fmt.Sprintf("127.0.0.1:%d", args.HTTPSPort))
		},
	}}
	id := "e2e-logs-" + r.prefix + "-" + fmt.Sprint(time.Now().UnixNano())
	var sent time.Time
	waitFor(t, "HTTPS 200 for the request with a known id", 30*time.Second, func() error {
		req, _ := http.NewRequest("GET", fmt.Sprintf("https://localhost:%d/items", args.HTTPSPort), nil)
		req.Header.Set("X-Request-ID", id)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		if got := resp.Header.Get("X-Request-ID"); got != id {
			t.Fatalf("the response's X-Request-ID is %q, want the caller's %q", got, id)
		}
		sent = time.Now()
		return nil
	})

	// LogsQL: the lines that hold the id, with the container's name.
	type line struct {
		Msg     string `json:"_msg"`
		AppName string `json:"app_name"`
	}
	query := func() ([]line, error) {
		q := url.Values{"query": {fmt.Sprintf("%q | fields _msg, app_name", id)}}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/select/logsql/query?%s", args.Logs.LocalPort, q.Encode()))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("query status %d", resp.StatusCode)
		}
		var out []line
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var l line
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				return nil, fmt.Errorf("%v: %s", err, sc.Text())
			}
			out = append(out, l)
		}
		return out, sc.Err()
	}
	var found []line
	waitFor(t, "the proxy's and the app's lines in VictoriaLogs", 30*time.Second, func() error {
		var err error
		if found, err = query(); err != nil {
			return err
		}
		var proxy, app bool
		for _, l := range found {
			proxy = proxy || l.AppName == r.prefix+"-proxy"
			app = app || strings.HasPrefix(l.AppName, r.prefix+"-app-") && strings.Contains(l.Msg, "request_id")
		}
		if !proxy || !app {
			return fmt.Errorf("proxy line %v, app line %v among %d: %+v", proxy, app, len(found), found)
		}
		return nil
	})
	t.Logf("%d lines for %s in VictoriaLogs %s after the response:", len(found), id, time.Since(sent).Round(10*time.Millisecond))
	for _, l := range found {
		t.Logf("  %s: %s", l.AppName, l.Msg)
	}
	// Docker's dual logging: docker logs still reads the proxy's line.
	logs, err := r.docker.Logs(r.ctx, r.prefix+"-proxy")
	if err != nil || !strings.Contains(logs, id) {
		t.Errorf("docker logs of the proxy lacks the request (%v):\n%s", err, logs)
	}

	// ./infra logs reads the store (logstore: a query container on the
	// host, through the engine's API): after a release it still has the
	// replaced replicas' lines, which the engine no longer has.
	replaced := r.apps()
	next := args
	next.Service.Env = map[string]string{"LOG_LEVEL": "info", "TEST_ROUTES": "1", "RELEASE": "2"}
	r.up(next)
	store := logstore.Store{Engine: r.docker, Prefix: r.prefix}
	if !store.Running(r.ctx) {
		t.Fatal("the log store does not run")
	}
	lines, err := store.Lines(r.ctx, sent.Add(-time.Minute), 10000)
	if err != nil {
		t.Fatal(err)
	}
	byContainer := map[string]int{}
	request := false
	for _, l := range lines {
		byContainer[l.Container]++
		request = request || strings.Contains(l.Text, id)
	}
	if !request {
		t.Errorf("the store's lines (%d) lack the request %s", len(lines), id)
	}
	for _, name := range replaced {
		if _, err := r.docker.Inspect(r.ctx, name); err == nil {
			t.Errorf("replica %s is still on the engine after the release", name)
		}
		if byContainer[name] == 0 {
			t.Errorf("the store has no line of the replaced replica %s; it has %v", name, byContainer)
		}
	}
	for i := 1; i < len(lines); i++ {
		if lines[i].Time.Before(lines[i-1].Time) {
			t.Fatalf("the store's lines are not in time order at %d: %v then %v", i, lines[i-1].Time, lines[i].Time)
		}
	}
	t.Logf("the store's lines since the request: %d, by container %v", len(lines), byContainer)
}
