package operations

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// logsAPI answers as an API server with two app pods, the database's pod
// (PostgreSQL and its exporter) and a migration pod that has not started.
type logsAPI struct{ asked []string }

func (f *logsAPI) Do(_ context.Context, method, path, _ string, _, into any) error {
	p, query, _ := strings.Cut(path, "?")
	q, _ := url.ParseQuery(query)
	switch {
	case method == http.MethodGet && strings.HasSuffix(p, "/pods"):
		pod := func(name, role string, containers ...string) obj {
			var cs []any
			for _, c := range containers {
				cs = append(cs, obj{"name": c})
			}
			return obj{"metadata": obj{"name": name, "labels": obj{"app.kubernetes.io/component": role}}, "spec": obj{"containers": cs}}
		}
		return decodeInto(obj{"items": []any{pod("svc-a", "api", "api"), pod("svc-b", "api", "api"),
			pod("svc-db-0", "database", "postgres", "exporter"), pod("svc-migrate-x", "migration", "migrate")}}, into)
	case method == http.MethodGet && strings.HasSuffix(p, "/log"):
		f.asked = append(f.asked, p+" since "+q.Get("sinceTime"))
		if q.Get("timestamps") != "true" {
			return fmt.Errorf("no timestamps asked")
		}
		logs := map[string]string{
			"svc-a/api":         "2026-12-07T10:00:01.500000000Z GET /items 200\n2026-12-07T10:00:03.000000000Z GET /health 200\n",
			"svc-b/api":         "2026-12-07T10:00:00.100000000Z started\n2026-12-07T10:00:02.250000000Z GET /items 500\n",
			"svc-db-0/postgres": "2026-12-07T10:00:02.000000000Z checkpoint complete\n",
			"svc-db-0/exporter": "2026-12-07T10:00:04.000000000Z scrape\n",
		}
		pod := strings.Split(p, "/")[len(strings.Split(p, "/"))-2]
		if pod == "svc-migrate-x" {
			return fmt.Errorf(`GET %s: 400 Bad Request: container "migrate" in pod "svc-migrate-x" is waiting to start: ContainerCreating`, p)
		}
		*into.(*string) = logs[pod+"/"+q.Get("container")]
		return nil
	}
	return fmt.Errorf("unexpected %s %s", method, path)
}

// TestLogsMergeThePodsInTimeOrder: every container of every pod of the
// stack, named by pod (and container where a pod has more than one), in
// time order; --service takes the single server's names; since is sent
// in whole seconds and the earlier lines of that second are dropped; a
// pod still starting has no lines yet, and is no error.
func TestLogsMergeThePodsInTimeOrder(t *testing.T) {
	f := &logsAPI{}
	r := Running{API: f, Namespace: "ns", App: "svc"}
	lines, err := r.Logs(context.Background(), time.Time{}, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range lines {
		got = append(got, l.Time.Format("05.000")+" "+l.Source+" "+l.Text)
	}
	want := []string{"00.100 svc-b started", "01.500 svc-a GET /items 200", "02.000 svc-db-0/postgres checkpoint complete",
		"02.250 svc-b GET /items 500", "03.000 svc-a GET /health 200", "04.000 svc-db-0/exporter scrape"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	f.asked = nil
	since := time.Date(2026, 12, 7, 10, 0, 2, 100_000_000, time.UTC)
	lines, err = r.Logs(context.Background(), since, "app")
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || lines[0].Text != "GET /items 500" || lines[1].Text != "GET /health 200" {
		t.Errorf("the app's lines since 10:00:02.1: %+v", lines)
	}
	if len(f.asked) != 2 || !strings.HasSuffix(f.asked[0], "since 2026-12-07T10:00:02Z") {
		t.Errorf("asked %v, want the two app pods' logs since 10:00:02", f.asked)
	}

	_, err = r.Logs(context.Background(), time.Time{}, "proxy")
	if err == nil || !strings.Contains(err.Error(), `no service "proxy" among the pods; their services: app, db, migrate`) {
		t.Errorf("an unknown service: %v", err)
	}
}
