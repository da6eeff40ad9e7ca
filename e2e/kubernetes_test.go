//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"

	"github.com/fastapi-infra/fastapi-infra/lab"
)

func optupProgress(w io.Writer) []optup.Option { return []optup.Option{optup.ProgressStreams(w)} }

// obj is a Kubernetes object as kubectl prints it.
type obj map[string]any

// dig walks a dotted path with [n] indexes: "spec.template.spec.containers[0].image".
func (o obj) dig(path string) any {
	var cur any = map[string]any(o)
	for _, part := range strings.Split(path, ".") {
		name, index := part, -1
		if i := strings.IndexByte(part, '['); i >= 0 {
			name = part[:i]
			index, _ = strconv.Atoi(strings.TrimSuffix(part[i+1:], "]"))
		}
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[name]
		if index >= 0 {
			list, ok := cur.([]any)
			if !ok || index >= len(list) {
				return nil
			}
			cur = list[index]
		}
	}
	return cur
}

func (o obj) str(path string) string { return fmt.Sprint(o.dig(path)) }

func (o obj) time(t *testing.T, path string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339, o.str(path))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return ts
}

func fullyAvailable(t *testing.T, dep obj) {
	t.Helper()
	if dep.dig("spec.replicas") == nil || dep.str("status.availableReplicas") != dep.str("spec.replicas") {
		t.Errorf("deployment not fully available: %s of %s", dep.str("status.availableReplicas"), dep.str("spec.replicas"))
	}
}

type list struct {
	Items []obj `json:"items"`
}

func get(t *testing.T, ns, kind, name string) obj {
	t.Helper()
	var o obj
	kubectl(t, &o, "-n", ns, "get", kind, name)
	return o
}

// waitFor polls cond every 250 ms until it holds, or fails the test.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %s", what, within)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func expect(t *testing.T, what string, got, want any) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) && !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// jobsOf lists the migration Jobs of the namespace.
func jobsOf(t *testing.T, ns string) []obj {
	var l list
	kubectl(t, &l, "-n", ns, "get", "jobs", "-l", "app.kubernetes.io/component=migration")
	return l.Items
}

func replicaSetsOf(t *testing.T, ns string) []obj {
	var l list
	kubectl(t, &l, "-n", ns, "get", "replicasets", "-l", "app.kubernetes.io/component=api")
	return l.Items
}

// TestProdStackOnARealCluster deploys the prod stack config (pointed at the
// lab) through the real engine and provider, reads the objects back from
// the API server, updates the image, fails a migration, and destroys.
func TestProdStackOnARealCluster(t *testing.T) {
	t.Parallel() // measures no load: runs beside another such test, after the load tests
	s := newProdStack(t, nil)
	ns := s.namespace
	ctx := context.Background()

	// 1. up: every await satisfied.
	res, out, err := s.up(t)
	if err != nil {
		t.Fatalf("up failed:\n%s\n%v", out, err)
	}
	expect(t, "output url", res.Outputs["url"].Value, "https://api.example.com")
	expect(t, "output namespace", res.Outputs["namespace"].Value, ns)
	expect(t, "output architecture", res.Outputs["architecture"].Value, "kubernetes")

	jobs := jobsOf(t, ns)
	if len(jobs) != 1 {
		t.Fatalf("want one migration Job, got %d", len(jobs))
	}
	job := jobs[0]
	expect(t, "job succeeded", job.str("status.succeeded"), "1")
	dep := get(t, ns, "deployment", "fastapi")
	rs := replicaSetsOf(t, ns)
	if len(rs) != 1 {
		t.Fatalf("want one ReplicaSet, got %d", len(rs))
	}
	// The Deployment's pods were created only after the Job completed.
	if done, created := job.time(t, "status.completionTime"), rs[0].time(t, "metadata.creationTimestamp"); created.Before(done) {
		t.Errorf("the ReplicaSet (%s) was created before the migration finished (%s)", created, done)
	}
	// With the HPA on, up starts the HPA's minimum and waits for it: the
	// Deployment used to start at 1 pod, up said done with one pod serving,
	// and a drift check right after found it unavailable while the HPA
	// raised it.
	expect(t, "replicas when up returns", dep.str("spec.replicas"), "3")
	fullyAvailable(t, dep)
	ing := get(t, ns, "ingress", "fastapi")
	expect(t, "ingress address", ing.str("status.loadBalancer.ingress[0].ip"), "127.0.0.1")

	// 2. What the API server holds.
	c := "spec.template.spec.containers[0]."
	for path, want := range map[string]string{
		c + "livenessProbe.httpGet.path":                         "/health/live",
		c + "readinessProbe.httpGet.path":                        "/health/ready",
		c + "startupProbe.httpGet.path":                          "/health/live",
		c + "readinessProbe.httpGet.port":                        "http",
		c + "securityContext.readOnlyRootFilesystem":             "true",
		c + "securityContext.allowPrivilegeEscalation":           "false",
		c + "securityContext.capabilities.drop[0]":               "ALL",
		c + "lifecycle.preStop.sleep.seconds":                    "5",
		c + "resources.limits.memory":                            "512Mi",
		"spec.template.spec.securityContext.runAsNonRoot":        "true",
		"spec.template.spec.securityContext.seccompProfile.type": "RuntimeDefault",
		"spec.template.spec.terminationGracePeriodSeconds":       "35",
		"spec.template.spec.automountServiceAccountToken":        "false",
		"spec.strategy.rollingUpdate.maxUnavailable":             "0",
	} {
		expect(t, "deployment "+path, dep.str(path), want)
	}
	secretName := dep.str(c + "envFrom[1].secretRef.name")
	secret := get(t, ns, "secret", secretName)
	if _, ok := secret.dig("data").(map[string]any)["DATABASE_URL"]; !ok {
		t.Errorf("the Secret %s the pods refer to has no DATABASE_URL", secretName)
	}
	expect(t, "pdb maxUnavailable", get(t, ns, "pdb", "fastapi").str("spec.maxUnavailable"), "1")
	hpa := get(t, ns, "hpa", "fastapi")
	expect(t, "hpa min", hpa.str("spec.minReplicas"), "3")
	expect(t, "hpa max", hpa.str("spec.maxReplicas"), "12")
	np := get(t, ns, "networkpolicy", "fastapi-api")
	expect(t, "netpol ingress source", np.str(`spec.ingress[0].from[0].namespaceSelector.matchLabels`), "map[kubernetes.io/metadata.name:ingress-nginx]")
	expect(t, "netpol egress", len(np.dig("spec.egress").([]any)), 2)
	sm := get(t, ns, "servicemonitor", "fastapi")
	expect(t, "ServiceMonitor endpoint port", sm.str("spec.endpoints[0].port"), "http")
	pr := get(t, ns, "prometheusrule", "fastapi")
	expect(t, "PrometheusRule first alert", pr.str("spec.groups[0].rules[0].alert"), "FastAPIServiceDown")
	amc := get(t, ns, "alertmanagerconfig", "fastapi")
	expect(t, "AlertmanagerConfig warning route", amc.str("spec.route.routes[1].receiver"), "warning")
	hookSecret := get(t, ns, "secret", amc.str("spec.receivers[0].webhookConfigs[0].urlSecret.name"))
	if _, ok := hookSecret.dig("data").(map[string]any)["webhook-url"]; !ok {
		t.Errorf("the Secret the AlertmanagerConfig reads has no webhook-url")
	}
	labels, _ := get(t, "", "namespace", ns).dig("metadata.labels").(map[string]any)
	expect(t, "namespace enforces restricted", labels["pod-security.kubernetes.io/enforce"], "restricted")

	// 2b. At the HPA's maximum the disruption controller still lets a
	// drain take one pod at a time (the old minAvailable of the HPA's
	// minimum allowed 10 of 12).
	kubectlRun(t, "-n", ns, "scale", "deployment", "fastapi", "--replicas", "12")
	waitFor(t, "12 available pods and the budget computed for them", time.Minute, func() bool {
		pdb := get(t, ns, "pdb", "fastapi")
		return pdb.str("status.currentHealthy") == "12" && pdb.str("status.expectedPods") == "12"
	})
	expect(t, "disruptions allowed at 12 pods", get(t, ns, "pdb", "fastapi").str("status.disruptionsAllowed"), "1")
	// The HPA scales through the scale subresource, as kubectl does: 4 is
	// its count now, inside its bounds, and no up may undo it.
	kubectlRun(t, "-n", ns, "scale", "deployment", "fastapi", "--replicas", "4")
	waitFor(t, "down to 4 pods", time.Minute, func() bool {
		return get(t, ns, "pdb", "fastapi").str("status.currentHealthy") == "4"
	})

	// 3. A second preview changes nothing.
	if _, err := s.Preview(ctx, optpreview.ExpectNoChanges()); err != nil {
		t.Fatalf("a second preview wants changes: %v", err)
	}

	// 4. A new image: a new migration Job, then a new ReplicaSet.
	s.setPath(t, "app.image", "lab.local/fastapi-app:1.0.1")
	if _, out, err := s.up(t); err != nil {
		t.Fatalf("update failed:\n%s\n%v", out, err)
	}
	jobs = jobsOf(t, ns)
	var newJob obj
	for _, j := range jobs {
		if j.str("spec.template.spec.containers[0].image") == "lab.local/fastapi-app:1.0.1" {
			newJob = j
		}
	}
	if newJob == nil {
		t.Fatalf("no migration Job for the new image among %d", len(jobs))
	}
	var newRS obj
	for _, r := range replicaSetsOf(t, ns) {
		if r.str("spec.template.spec.containers[0].image") == "lab.local/fastapi-app:1.0.1" {
			newRS = r
		}
	}
	if newRS == nil {
		t.Fatal("no ReplicaSet with the new image")
	}
	if created, done := newRS.time(t, "metadata.creationTimestamp"), newJob.time(t, "status.completionTime"); created.Before(done) {
		t.Errorf("the new ReplicaSet (%s) came before its migration finished (%s)", created, done)
	}
	expect(t, "new ReplicaSet ready", newRS.str("status.readyReplicas"), newRS.str("spec.replicas"))
	expect(t, "replicas after a release (the HPA's 4)", get(t, ns, "deployment", "fastapi").str("spec.replicas"), "4")

	// 4b. A config change alone (same image) rolls the pods: the ConfigMap
	// is replaced under a new name, which the pod template refers to.
	before := len(replicaSetsOf(t, ns))
	s.setPath(t, "app.env.FEATURE_FLAG", "on")
	if _, out, err := s.up(t); err != nil {
		t.Fatalf("env update failed:\n%s\n%v", out, err)
	}
	if after := len(replicaSetsOf(t, ns)); after != before+1 {
		t.Errorf("an env change made %d new ReplicaSets, want 1", after-before)
	}
	cm := get(t, ns, "configmap", get(t, ns, "deployment", "fastapi").str(c+"envFrom[0].configMapRef.name"))
	expect(t, "env in the ConfigMap the pods use", cm.str("data.FEATURE_FLAG"), "on")

	// 5. A failing migration fails `up`, and 1.0.1 keeps serving.
	s.setPath(t, "app.image", lab.FailingMigrationImage)
	_, out, err = s.up(t)
	if err == nil {
		t.Fatal("up succeeded with a failing migration")
	}
	if !strings.Contains(out+err.Error(), "fastapi-migrate-") || !strings.Contains(strings.ToLower(out+err.Error()), "fail") {
		t.Errorf("the error does not name the failed migration Job:\n%s\n%v", out, err)
	}
	dep = get(t, ns, "deployment", "fastapi")
	expect(t, "image after a failed migration", dep.str(c+"image"), "lab.local/fastapi-app:1.0.1")
	fullyAvailable(t, dep)
	t.Logf("a failing migration fails up with:\n%v", err)

	// 6. The next release runs a fresh Job and rolls out.
	s.setPath(t, "app.image", "lab.local/fastapi-app:1.0.2")
	if _, out, err := s.up(t); err != nil {
		t.Fatalf("the release after a failed migration failed:\n%s\n%v", out, err)
	}
	expect(t, "image after recovery", get(t, ns, "deployment", "fastapi").str(c+"image"), "lab.local/fastapi-app:1.0.2")

	// 7. destroy leaves nothing: the prod stack keeps its data outside.
	if _, err := s.Destroy(ctx); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	var remaining list
	kubectl(t, &remaining, "get", "namespaces", "--field-selector", "metadata.name="+ns)
	for _, n := range remaining.Items {
		if n.str("status.phase") != "Terminating" {
			t.Errorf("namespace %s is still there after destroy (%s)", ns, n.str("status.phase"))
		}
	}
}

// TestStorageClassIsCheckedOnTheCluster: against the real API server, an
// in-cluster database whose db.storageClass the cluster lacks stops `up`
// before anything is created (it used to create 13 resources, then time
// out on the claim after 5 minutes); the lab's default class passes.
func TestStorageClassIsCheckedOnTheCluster(t *testing.T) {
	// The stack's own database serves no TLS: no CA to verify it with.
	s := newProdStack(t, map[string]string{"environment": "development", "db.mode": "in-cluster", "db.caCert": "", "db.storageClass": "no-such-class"})
	start := time.Now()
	res, out, err := s.preview(t)
	if err == nil {
		t.Fatalf("preview with a missing StorageClass passed:\n%s\n%s", res, out)
	}
	want := `fastapi-infra:db.storageClass: the cluster has no StorageClass "no-such-class" (it has: ` + lab.StorageClass
	if !strings.Contains(out+err.Error(), want) {
		t.Fatalf("the error does not say %q:\n%s\n%v", want, out, err)
	}
	t.Logf("refused in %s", time.Since(start).Round(time.Millisecond))
	if _, out, err := s.up(t); err == nil || !strings.Contains(out+err.Error(), want) {
		t.Fatalf("up with a missing StorageClass did not stop on it:\n%s\n%v", out, err)
	}
	if out := kubectlRun(t, "get", "namespace", s.namespace, "--ignore-not-found"); strings.TrimSpace(out) != "" {
		t.Errorf("namespace %s was created before the check failed:\n%s", s.namespace, out)
	}
	// Naming the lab's class (its default) deploys the claim with it.
	s.setPath(t, "db.storageClass", lab.StorageClass)
	if _, out, err := s.preview(t); err != nil {
		t.Fatalf("preview with the lab's StorageClass failed:\n%s\n%v", out, err)
	}
}
