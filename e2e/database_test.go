//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/fastapi-infra/fastapi-infra/components/monitoring"
)

// TestInClusterDatabaseSurvivesDestroy deploys a development stack with
// PostgreSQL in the cluster on the real node (a local volume of the lab's
// default StorageClass), runs the restore drill on real pods (rows
// written, the backup CronJob's Job, the table dropped, restored from the
// dump by the same script, the rows read back), and checks that `pulumi
// destroy` removes the app but leaves the database's claims, their volumes
// and the namespace in place.
func TestInClusterDatabaseSurvivesDestroy(t *testing.T) {
	t.Parallel() // measures no load: runs beside another such test, after the load tests
	// Monitoring on, without the Operator: the database's pod runs the
	// exporter, annotated for an annotation-based Prometheus.
	s := newRealStack(t, map[string]string{"app.replicas": "1", "kubernetes.pdb": "false", "monitoring.enabled": "true"})
	ns := s.namespace
	t.Cleanup(func() {
		if !t.Failed() {
			kubectlRun(t, "delete", "namespace", ns, "--wait=false")
		}
	})
	if _, out, err := s.up(t); err != nil {
		t.Fatalf("up failed:\n%s\n%v", out, err)
	}
	pvc := get(t, ns, "pvc", "fastapi-db-data")
	expect(t, "claim phase", pvc.str("status.phase"), "Bound")
	sts := get(t, ns, "statefulset", "fastapi-db")
	expect(t, "database ready", sts.str("status.readyReplicas"), "1")
	uid, volume := pvc.str("metadata.uid"), pvc.str("spec.volumeName")
	backups := restoreDrill(t, s, ns)
	exporterSeesTheDatabase(t, ns)

	// A new dbPassword reaches the running database: the pod rolls (a new
	// Secret), its sidecar applies the password before it turns ready,
	// and up's migration and app connect with it.
	old, err := s.GetConfig(context.Background(), "fastapi-infra:dbPassword")
	if err != nil {
		t.Fatal(err)
	}
	rotated := "rotated-" + randomSuffix(t) + randomSuffix(t)
	if err := s.SetConfig(context.Background(), "fastapi-infra:dbPassword", auto.ConfigValue{Value: rotated, Secret: true}); err != nil {
		t.Fatal(err)
	}
	if _, out, err := s.up(t); err != nil {
		t.Fatalf("up after the password change failed:\n%s\n%v", out, err)
	}
	tcp := func(password string) error {
		return exec.Command("kubectl", "--kubeconfig", env.lab.Kubeconfig, "-n", ns, "exec", "fastapi-db-0", "-c", "postgres", "--",
			"env", "PGPASSWORD="+password, "psql", "-h", "127.0.0.1", "-U", "app", "-d", "app", "-tAc", "SELECT 1").Run()
	}
	if err := tcp(rotated); err != nil {
		t.Errorf("the new password does not open a connection: %v", err)
	}
	if err := tcp(old.Value); err == nil {
		t.Error("the old password still opens a connection")
	}
	// The app's pods connect as the least-privileged role, whose derived
	// password rotated with dbPassword (the pods are ready, and readiness
	// queries the database); the migration made the table as the owner.
	psql := func(sql string) string {
		return strings.TrimSpace(kubectlRun(t, "-n", ns, "exec", "fastapi-db-0", "-c", "postgres", "--", "psql", "-U", "app", "-d", "app", "-tAc", sql))
	}
	roles := psql(`SELECT string_agg(DISTINCT usename, ',') FROM pg_stat_activity WHERE datname = 'app' AND backend_type = 'client backend' AND pid <> pg_backend_pid()`)
	privileged := psql(`SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls FROM pg_roles WHERE rolname = 'app_rw'`)
	owner := psql(`SELECT tableowner FROM pg_tables WHERE tablename = 'items'`)
	t.Logf("connected to app: %s; app_rw privileged: %s; items owned by %s", roles, privileged, owner)
	if roles != "app_rw" || privileged != "f" || owner != "app" {
		t.Errorf("want the app's connections as app_rw only (got %q), app_rw without privileges (got %q), items owned by app (got %q)", roles, privileged, owner)
	}

	// A PostgreSQL major upgrade through db.image is refused by the
	// driver before anything changes (the running image is PostgreSQL 15).
	image, err := s.GetConfigWithOptions(context.Background(), "fastapi-infra:db.image", &auto.ConfigOptions{Path: true})
	if err != nil {
		t.Fatal(err)
	}
	s.setPath(t, "db.image", "postgres:16.4")
	_, stderr, err := runDriver(t, s.driver(t, "", "--yes", "up", s.name))
	if err == nil || !strings.Contains(stderr, "fastapi-infra:db.image: postgres:16.4 is PostgreSQL 16, but the stack's database runs "+image.Value+", PostgreSQL 15") {
		t.Errorf("up with a PostgreSQL 16 image over 15's data: %v\n%s", err, stderr)
	}
	if sts := get(t, ns, "statefulset", "fastapi-db"); sts.str("spec.template.spec.containers[0].image") != image.Value {
		t.Errorf("the refused up changed the database to %s", sts.str("spec.template.spec.containers[0].image"))
	}
	s.setPath(t, "db.image", image.Value)

	if _, err := s.Destroy(context.Background()); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	after := get(t, ns, "pvc", "fastapi-db-data")
	expect(t, "the same claim after destroy", after.str("metadata.uid"), uid)
	expect(t, "its volume", after.str("spec.volumeName"), volume)
	expect(t, "the backups claim after destroy", get(t, ns, "pvc", "fastapi-db-backups").str("metadata.uid"), backups)
	var workloads list
	kubectl(t, &workloads, "-n", ns, "get", "deployments,statefulsets,jobs,services")
	if len(workloads.Items) != 0 {
		t.Errorf("destroy left %d workloads or services behind", len(workloads.Items))
	}
}

// restoreDrill writes rows, takes a backup with the driver (./infra
// backup: a Job from the backup CronJob's template), loses the table,
// restores the dump with the driver (./infra restore --from: the app
// scaled to 0, backup.sh's restore in a Job of the same template, the
// migration again, the app back), and reads the rows back, in the
// database and through the app. It returns the backups claim's uid.
func restoreDrill(t *testing.T, s *realStack, ns string) string {
	t.Helper()
	psql := func(sql string) string {
		return strings.TrimSpace(kubectlRun(t, "-n", ns, "exec", "fastapi-db-0", "-c", "postgres", "--", "psql", "-U", "app", "-d", "app", "-tAc", sql))
	}
	psql("INSERT INTO items (name, description, created_at) VALUES ('drill-1', 'kept', now()), ('drill-2', 'kept too', now())")
	rows := "SELECT string_agg(name || ':' || description, ',' ORDER BY id) FROM items WHERE name LIKE 'drill-%'"
	before := psql(rows)
	if before != "drill-1:kept,drill-2:kept too" {
		t.Fatalf("rows written: %q", before)
	}
	report, stderr, err := runDriver(t, s.driver(t, "", "backup", s.name))
	dump := regexp.MustCompile(`app-[0-9TZ]+\.dump`).FindString(report)
	if err != nil || dump == "" {
		t.Fatalf("./infra backup: %v\n%s\n%s", err, report, stderr)
	}
	t.Logf("in-cluster backup: %s", strings.TrimSpace(report))
	if list, _, err := runDriver(t, s.driver(t, "", "restore", s.name)); err != nil || !strings.Contains(list, dump) {
		t.Fatalf("./infra restore (the list) lacks %s: %v\n%s", dump, err, list)
	}
	// ./infra maintenance on Kubernetes: the page with its message (HTML
	// for a browser), then the app again.
	if _, stderr, err := runDriver(t, s.driver(t, "", "maintenance", "on", s.name, "--message", "Back at <10:00>")); err != nil {
		t.Fatalf("./infra maintenance on: %v\n%s", err, stderr)
	}
	if code, body := s.get(t, "/items"); code != 503 || !strings.Contains(body, "Back at &lt;10:00&gt;") {
		t.Errorf("in maintenance: %d %s, want 503 and the page", code, body)
	}
	if _, stderr, err := runDriver(t, s.driver(t, "", "maintenance", "off", s.name)); err != nil {
		t.Fatalf("./infra maintenance off: %v\n%s", err, stderr)
	}
	if code, body := s.get(t, "/health/live"); code != 200 {
		t.Errorf("after maintenance off: %d %s", code, body)
	}

	psql("DROP TABLE items")
	// Meanwhile every answer through the ingress is the app's or the
	// maintenance page (a pod of the page and an Ingress that Traefik
	// prefers), never the controller's own 503 for a Service without
	// endpoints.
	answers := watchAnswers(s, "/health/live")
	start := time.Now()
	_, stderr, err = runDriver(t, s.driver(t, "", "restore", s.name, "--from", dump, "--yes"))
	seen := answers()
	if err != nil {
		t.Fatalf("./infra restore --from %s: %v\n%s", dump, err, stderr)
	}
	t.Logf("./infra restore --from %s in %s:\n%s", dump, time.Since(start).Round(100*time.Millisecond), strings.TrimSpace(stderr))
	t.Logf("answers through the ingress during the restore: %v", seen)
	if !strings.Contains(stderr, "restore: maintenance page on") || !strings.Contains(stderr, "restore: maintenance page off") {
		t.Errorf("the restore did not put the maintenance page up and down:\n%s", stderr)
	}
	for answer, n := range seen {
		if answer != "200" && answer != "503 maintenance" {
			t.Errorf("%d answers during the restore were %q: neither the app's 200 nor the maintenance page", n, answer)
		}
	}
	if seen["503 maintenance"] == 0 {
		t.Error("no answer during the restore was the maintenance page")
	}
	if got := kubectlRun(t, "-n", ns, "get", "deployments,services,ingresses", "-l", "app.kubernetes.io/component=maintenance", "-o", "name"); strings.TrimSpace(got) != "" {
		t.Errorf("the maintenance page's objects are left after the restore: %s", got)
	}
	if after := psql(rows); after != before {
		t.Errorf("after the restore the rows are %q, want %q", after, before)
	}
	if code, body := s.get(t, "/items"); code != 200 || !strings.Contains(body, "drill-2") {
		t.Errorf("the app after the restore: %d %s", code, body)
	}
	return get(t, ns, "pvc", "fastapi-db-backups").str("metadata.uid")
}

// exporterSeesTheDatabase reads the postgres_exporter sidecar's metrics
// from inside the database's pod (its loopback): PostgreSQL is up to it,
// and the backup the drill just took is the newest one it reports.
func exporterSeesTheDatabase(t *testing.T, ns string) {
	t.Helper()
	fetch := `exec 3<>/dev/tcp/127.0.0.1/` + fmt.Sprint(monitoring.PostgresExporterPort) + `; printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3; cat <&3`
	var metrics string
	for range 30 { // the exporter's first scrape of a new pod can lag
		metrics = kubectlRun(t, "-n", ns, "exec", "fastapi-db-0", "-c", "postgres", "--", "bash", "-c", fetch)
		if strings.Contains(metrics, "\npg_up 1") {
			break
		}
		time.Sleep(2 * time.Second)
	}
	backup := regexp.MustCompile(`(?m)^` + monitoring.BackupMetric + `(\{[^}]*\})? ([0-9.e+]+)$`).FindStringSubmatch(metrics)
	if !strings.Contains(metrics, "\npg_up 1") || backup == nil {
		t.Fatalf("the exporter does not report the database up with its newest backup:\n%s", grepLines(metrics, "pg_up", monitoring.BackupMetric))
	}
	when, _ := strconv.ParseFloat(backup[2], 64)
	if age := time.Since(time.Unix(int64(when), 0)); age < 0 || age > 10*time.Minute {
		t.Errorf("the newest backup the exporter reports is %s old; the drill took one just now", age)
	}
	t.Logf("exporter: pg_up 1, newest backup %s", time.Unix(int64(when), 0).UTC().Format(time.RFC3339))
}

// grepLines keeps the lines of text that hold one of the words.
func grepLines(text string, words ...string) string {
	var keep []string
	for _, line := range strings.Split(text, "\n") {
		for _, w := range words {
			if strings.Contains(line, w) {
				keep = append(keep, line)
				break
			}
		}
	}
	return strings.Join(keep, "\n")
}

// watchAnswers asks path through the ingress every 100 ms (Accept JSON)
// until the returned func is called, which returns how often each answer
// came: "200", "503 maintenance" (the page: Retry-After and its JSON), or
// another status or error.
func watchAnswers(s *realStack, path string) func() map[string]int {
	seen := map[string]int{}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			req, _ := http.NewRequest("GET", s.url(path), nil)
			req.Header.Set("Accept", "application/json")
			resp, err := s.client.Do(req)
			if err != nil {
				seen["error: "+err.Error()]++
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == 200:
				seen["200"]++
			case resp.StatusCode == 503 && resp.Header.Get("Retry-After") != "" && strings.Contains(string(body), `"status":"maintenance"`):
				seen["503 maintenance"]++
			default:
				seen[fmt.Sprintf("%d %.60s", resp.StatusCode, body)]++
			}
		}
	}()
	return func() map[string]int {
		close(stop)
		<-done
		return seen
	}
}
