//go:build e2e

package singleserver

import (
	"github.com/fastapi-infra/fastapi-infra/internal/dockerapi"

	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fastapi-infra/fastapi-infra/components/monitoring"
	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// notification is the part of Alertmanager's webhook payload a receiver
// reads.
type notification struct {
	Receiver string `json:"receiver"`
	Status   string `json:"status"`
	Alerts   []struct {
		Status string            `json:"status"`
		Labels map[string]string `json:"labels"`
	} `json:"alerts"`
}

// inbox is a webhook receiver on the host.
type inbox struct {
	mu   sync.Mutex
	got  []notification
	from time.Time
}

func (in *inbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var n notification
	if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	in.mu.Lock()
	in.got = append(in.got, n)
	in.mu.Unlock()
}

// clear forgets what arrived so far.
func (in *inbox) clear() {
	in.mu.Lock()
	in.got = nil
	in.mu.Unlock()
}

// summary lists what arrived: status and alert names.
func (in *inbox) summary() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	var s []string
	for _, n := range in.got {
		for _, a := range n.Alerts {
			s = append(s, a.Status+" "+a.Labels["alertname"])
		}
	}
	return fmt.Sprint(s)
}

// find returns the first alert of a notification with status whose alert
// is named alert.
func (in *inbox) find(status, alert string) (notification, map[string]string, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, n := range in.got {
		for _, a := range n.Alerts {
			if a.Status == status && a.Labels["alertname"] == alert {
				return n, a.Labels, true
			}
		}
	}
	return notification{}, nil, false
}

// dockerBridgeGateway is the host's address on Docker's default bridge,
// where the webhook receiver listens (dockerapi.BridgeAddress).
func dockerBridgeGateway(t *testing.T) string {
	addr, err := dockerapi.BridgeAddress()
	if err != nil {
		t.Fatalf("where the webhook receiver would listen: %v", err)
	}
	return addr
}

// TestAlertDeliveryOnRealDocker stops every app replica and waits for the
// webhook receiver to get FastAPIServiceDown from Alertmanager, with the
// stack's labels, and then the resolved notification once the replicas
// are back: Prometheus scraping, rule evaluation, Prometheus → Alertmanager
// on the private network, routing, and delivery over the edge network, all
// as the component registers them. Intervals are shortened by config (2 s
// scrapes, no `for`, 1 s group wait).
func TestAlertDeliveryOnRealDocker(t *testing.T) {
	t.Parallel() // measures no load: runs beside another such test, after the load tests
	r := newRealServer(t, "dev")
	ln, err := net.Listen("tcp", dockerBridgeGateway(t)+":0")
	if err != nil {
		t.Fatal(err)
	}
	in := &inbox{}
	srv := &http.Server{Handler: in, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })

	args := r.args()
	args.Service.Database.Backup = service.Backup{Schedule: "0 3 * * *", Keep: 3}
	rules := monitoring.Alerts(r.prefix, r.prefix, monitoring.Thresholds{DownMinutes: 0, ErrorRatio: 0.05, P95Seconds: 0.5, RestartsPerHour: 3})
	rules.Rules = append(rules.Rules, monitoring.DatabaseAlerts(r.prefix, 24*time.Hour, 0)...)
	args.Monitoring = &Monitoring{Image: r.images["PROMETHEUS"], Retention: "1d", LocalPort: freePort(t), Interval: "2s",
		Rules: rules, PostgresExporterImage: r.images["POSTGRES_EXPORTER"],
		ExternalLabels: map[string]string{"stack": "alerting-e2e", "environment": "development"},
		Alertmanager: &Alertmanager{Image: r.images["ALERTMANAGER"], LocalPort: freePort(t),
			Receivers: monitoring.Receivers{WebhookURL: "http://" + ln.Addr().String() + "/alerts"},
			Routing:   monitoring.Routing{GroupWait: "1s", GroupInterval: "2s", RepeatInterval: "1h"}},
	}
	r.up(args)

	api := fmt.Sprintf("http://127.0.0.1:%d/api/v1/", args.Monitoring.LocalPort)
	waitFor(t, "Prometheus seeing both replicas up and an Alertmanager", 90*time.Second, func() error {
		if v, err := promQuery(api, fmt.Sprintf(`sum(up{job=%q})`, r.prefix)); err != nil || v != "2" {
			return fmt.Errorf("sum(up) = %q, %v", v, err)
		}
		var am struct {
			Data struct {
				Active []struct{ URL string } `json:"activeAlertmanagers"`
			} `json:"data"`
		}
		if err := getJSON(api+"alertmanagers", &am); err != nil || len(am.Data.Active) != 1 {
			return fmt.Errorf("alertmanagers %+v, %v", am, err)
		}
		return nil
	})
	// The database's exporter answers, with the backup job's record of
	// when the database was first watched (no backup has run yet).
	waitFor(t, "Prometheus seeing the database up and the backup age", 60*time.Second, func() error {
		if v, err := promQuery(api, fmt.Sprintf(`pg_up{job=%q}`, monitoring.PostgresJob(r.prefix))); err != nil || v != "1" {
			return fmt.Errorf("pg_up = %q, %v", v, err)
		}
		v, err := promQuery(api, fmt.Sprintf(`time() - %s{job=%q}`, monitoring.BackupMetric, monitoring.PostgresJob(r.prefix)))
		if err != nil {
			return err
		}
		if age, err := strconv.ParseFloat(v, 64); err != nil || age < 0 || age > 600 {
			return fmt.Errorf("backup age %q s, want the few seconds since the backup job started", v)
		}
		return nil
	})
	if v, err := promQuery(api, `count(ALERTS{alertstate="firing",alertname=~"Postgres.*"})`); err == nil {
		t.Errorf("database alerts fire on a healthy database: %s", v)
	}
	// Whatever fired while the replicas started (absent(up) before the
	// first scrape) has resolved by now; start from an empty inbox.
	time.Sleep(5 * time.Second)
	in.clear()

	apps := r.apps()
	stopped := time.Now()
	for _, app := range apps {
		if err := r.docker.Stop(r.ctx, app, 10); err != nil {
			t.Fatal(err)
		}
	}
	var fired map[string]string
	waitFor(t, "the webhook receiving FastAPIServiceDown", 60*time.Second, func() error {
		var ok bool
		if _, fired, ok = in.find("firing", "FastAPIServiceDown"); !ok {
			return fmt.Errorf("received %s", in.summary())
		}
		return nil
	})
	t.Logf("FastAPIServiceDown delivered %.1f s after the replicas stopped: %v", time.Since(stopped).Seconds(), fired)
	for k, want := range map[string]string{"service": r.prefix, "severity": "critical", "stack": "alerting-e2e", "environment": "development"} {
		if fired[k] != want {
			t.Errorf("the notification's label %s is %q, want %q (labels %v)", k, fired[k], want, fired)
		}
	}
	if n, _, _ := in.find("firing", "FastAPIServiceDown"); n.Receiver != monitoring.CriticalReceiver {
		t.Errorf("a critical alert went to receiver %q, want %q", n.Receiver, monitoring.CriticalReceiver)
	}

	started := time.Now()
	for _, app := range apps {
		if err := r.docker.Start(r.ctx, app); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the webhook receiving FastAPIServiceDown resolved", 90*time.Second, func() error {
		if _, _, ok := in.find("resolved", "FastAPIServiceDown"); !ok {
			return fmt.Errorf("received %s", in.summary())
		}
		return nil
	})
	t.Logf("resolved delivered %.1f s after the replicas started again", time.Since(started).Seconds())
}

// promQuery answers an instant query with one result's value.
func promQuery(api, query string) (string, error) {
	var res struct {
		Data struct {
			Result []struct {
				Value []any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := getJSON(api+"query?query="+url.QueryEscape(query), &res); err != nil {
		return "", err
	}
	if len(res.Data.Result) != 1 || len(res.Data.Result[0].Value) != 2 {
		return "", fmt.Errorf("answer %+v", res)
	}
	return fmt.Sprint(res.Data.Result[0].Value[1]), nil
}

func getJSON(u string, out any) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
