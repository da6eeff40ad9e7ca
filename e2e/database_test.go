//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/fastapi-infra/fastapi-infra/components/monitoring"
	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// TestInClusterDatabaseSurvivesDestroy deploys a development stack with
// PostgreSQL in the cluster on the real node (a local volume of the lab's
// default StorageClass), runs the restore drill on real pods (rows
// written, the backup CronJob's Job, the table dropped, restored from the
// dump by the same script, the rows read back), and checks that `pulumi
// destroy` removes the app but leaves the database's claims, their volumes
// and the namespace in place.
func TestInClusterDatabaseSurvivesDestroy(t *testing.T) {
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
	backups := restoreDrill(t, ns)
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

// restoreDrill writes rows, runs the backup CronJob once (a Job from its
// template, as `kubectl create job --from` does), loses the table, restores
// the dump with backup.sh's restore action in a Job of the same template,
// and reads the rows back. It returns the backups claim's uid.
func restoreDrill(t *testing.T, ns string) string {
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
	run := func(job string, action ...string) string {
		var cron obj
		kubectl(t, &cron, "-n", ns, "get", "cronjob", "fastapi-db-backup")
		tmpl, _ := cron.dig("spec.jobTemplate").(map[string]any)
		if len(action) > 0 {
			containers := obj(tmpl).dig("spec.template.spec.containers").([]any)
			containers[0].(map[string]any)["command"] = service.BackupCommand(action...)
		}
		manifest, _ := json.Marshal(map[string]any{"apiVersion": "batch/v1", "kind": "Job",
			"metadata": map[string]any{"name": job, "namespace": ns}, "spec": tmpl["spec"]})
		create := exec.Command("kubectl", "--kubeconfig", env.lab.Kubeconfig, "create", "-f", "-")
		create.Stdin = strings.NewReader(string(manifest))
		if out, err := create.CombinedOutput(); err != nil {
			t.Fatalf("creating Job %s: %v\n%s", job, err, out)
		}
		if out, err := exec.Command("kubectl", "--kubeconfig", env.lab.Kubeconfig, "-n", ns, "wait", "--for=condition=complete", "--timeout=120s", "job/"+job).CombinedOutput(); err != nil {
			logs, _ := exec.Command("kubectl", "--kubeconfig", env.lab.Kubeconfig, "-n", ns, "logs", "job/"+job).CombinedOutput()
			t.Fatalf("Job %s did not complete: %v\n%s\n%s", job, err, out, logs)
		}
		return kubectlRun(t, "-n", ns, "logs", "job/"+job)
	}
	report := run("backup-now")
	dump := regexp.MustCompile(`app-[0-9TZ]+\.dump`).FindString(report)
	if dump == "" {
		t.Fatalf("the backup Job did not report a dump: %s", report)
	}
	t.Logf("in-cluster backup: %s", strings.TrimSpace(report))
	psql("DROP TABLE items")
	t.Logf("restore: %s", strings.TrimSpace(run("restore-now", "restore", dump)))
	if after := psql(rows); after != before {
		t.Errorf("after the restore the rows are %q, want %q", after, before)
	}
	// The drill's Jobs are the test's, not the stack's: destroy would not
	// take them.
	kubectlRun(t, "-n", ns, "delete", "job", "backup-now", "restore-now", "--wait=true")
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
