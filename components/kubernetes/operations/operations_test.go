package operations

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// fakeAPI answers as an API server with one backup CronJob, one finished
// migration Job and the app's Deployment, and records every change.
type fakeAPI struct {
	t        *testing.T
	calls    []string       // METHOD path, for the changes
	jobs     map[string]obj // the Jobs there are
	made     map[string]obj // every Job created
	replicas int
	failJob  string // a Job whose name has this prefix fails
	pending  bool   // every Job's pod waits for a node
}

func (f *fakeAPI) Do(_ context.Context, method, path, _ string, body, into any) error {
	reply := func(v any) error {
		raw, _ := json.Marshal(v)
		if s, ok := into.(*string); ok {
			*s = string(raw)
			return nil
		}
		return json.Unmarshal(raw, into)
	}
	p, _, _ := strings.Cut(path, "?")
	if method != http.MethodGet {
		f.calls = append(f.calls, method+" "+p)
	}
	switch {
	case method == http.MethodGet && strings.HasSuffix(p, "/cronjobs/svc-db-backup"):
		return reply(obj{"spec": obj{"jobTemplate": obj{"spec": obj{"template": obj{"spec": obj{
			"containers": []any{obj{"name": "backup", "command": []any{"bash", "-c", "x", "backup", "now"}}}}}}}}})
	case method == http.MethodPost && strings.HasSuffix(p, "/jobs"):
		job := body.(obj)
		f.jobs[job["metadata"].(obj)["name"].(string)] = job
		f.made[job["metadata"].(obj)["name"].(string)] = job
		return nil
	case method == http.MethodGet && strings.HasSuffix(p, "/jobs") && strings.Contains(path, "component%3Dmigration"):
		return reply(obj{"items": []any{obj{"metadata": obj{"name": "svc-migrate-abc", "creationTimestamp": "2026-11-26T00:00:00Z"},
			"spec": obj{"activeDeadlineSeconds": 900, "template": obj{"metadata": obj{"labels": obj{
				"app.kubernetes.io/component": "migration", "batch.kubernetes.io/controller-uid": "u1", "controller-uid": "u1", "job-name": "svc-migrate-abc", "batch.kubernetes.io/job-name": "svc-migrate-abc"}},
				"spec": obj{"containers": []any{obj{"name": "migrate"}}}}}}}})
	case method == http.MethodGet && strings.Contains(p, "/jobs/"):
		name := p[strings.LastIndex(p, "/")+1:]
		if f.pending {
			return reply(obj{"status": obj{}})
		}
		if f.failJob != "" && strings.HasPrefix(name, f.failJob) {
			return reply(obj{"status": obj{"failed": 1}})
		}
		return reply(obj{"status": obj{"succeeded": 1}})
	case method == http.MethodGet && strings.HasSuffix(p, "/pods") && strings.Contains(path, "job-name"):
		_, job, _ := strings.Cut(path, "job-name%3D")
		pod := obj{"metadata": obj{"name": "pod-of-" + job}}
		if f.pending {
			pod["status"] = obj{"phase": "Pending", "conditions": []any{obj{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/4 nodes are available: 1 Insufficient cpu"}}}
		}
		return reply(obj{"items": []any{pod}})
	case method == http.MethodGet && strings.HasSuffix(p, "/pods"):
		return reply(obj{"items": []any{}}) // the app's pods are gone
	case method == http.MethodGet && strings.HasSuffix(p, "/log"):
		s := into.(*string)
		if strings.Contains(p, "list") {
			*s = "app-20261126T031500Z.dump\napp-20261125T031500Z.dump\n"
		} else {
			*s = "backup: done\n"
		}
		return nil
	case method == http.MethodDelete && strings.Contains(p, "/jobs/"):
		delete(f.jobs, p[strings.LastIndex(p, "/")+1:])
		return nil
	case method == http.MethodPatch && strings.HasSuffix(p, "/deployments/svc/scale"):
		f.replicas = int(body.(obj)["spec"].(obj)["replicas"].(int))
		return nil
	case method == http.MethodGet && strings.HasSuffix(p, "/deployments/svc"):
		return reply(obj{"spec": obj{"replicas": 3}, "status": obj{"replicas": f.replicas, "readyReplicas": f.replicas}})
	}
	return fmt.Errorf("unexpected %s %s", method, path)
}

func newFake(t *testing.T) (*fakeAPI, Running) {
	f := &fakeAPI{t: t, jobs: map[string]obj{}, made: map[string]obj{}, replicas: 3}
	return f, Running{API: f, Namespace: "ns", App: "svc", Poll: time.Millisecond}
}

// TestRestoreScalesDownRestoresMigratesAndScalesBack: the order of the
// changes, the backup action in the CronJob's template, and the migration
// Job made from the last one's pod template without the controller's
// labels (the API server refuses a Job whose template names another
// Job's uid).
func TestRestoreScalesDownRestoresMigratesAndScalesBack(t *testing.T) {
	f, r := newFake(t)
	if err := r.Restore(context.Background(), "app-20261125T031500Z.dump", io.Discard); err != nil {
		t.Fatal(err)
	}
	var order []string
	deleted := 0
	for _, c := range f.calls {
		if strings.HasPrefix(c, "DELETE") {
			deleted++
			continue
		}
		order = append(order, c[strings.LastIndex(c, "/")+1:])
	}
	if deleted != 3 || len(f.jobs) != 0 {
		t.Errorf("%d Jobs deleted, %d left: the Jobs that worked must not stay", deleted, len(f.jobs))
	}
	want := []string{"jobs", "scale", "jobs", "jobs", "scale"} // list, 0, restore, migration, back
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("changes %v, want %v", f.calls, want)
	}
	if f.replicas != 3 {
		t.Errorf("the Deployment is at %d replicas after the restore, want 3", f.replicas)
	}
	var restore, migrate obj
	for name, job := range f.made {
		switch {
		case strings.HasPrefix(name, "svc-db-restore-"):
			restore = job
		case strings.HasPrefix(name, "svc-migrate-restore-"):
			migrate = job
		}
	}
	if restore == nil || migrate == nil {
		t.Fatalf("jobs made: %v", f.made)
	}
	cmd := dig(restore, "spec", "template", "spec", "containers").([]any)[0].(obj)["command"]
	if fmt.Sprint(cmd) != fmt.Sprint(service.BackupCommand("restore", "app-20261125T031500Z.dump")) {
		t.Errorf("the restore Job runs %v", cmd)
	}
	labels := dig(migrate, "spec", "template", "metadata", "labels").(obj)
	if fmt.Sprint(labels) != "map[app.kubernetes.io/component:migration]" {
		t.Errorf("the migration Job's pod labels: %v", labels)
	}
	if migrate["spec"].(obj)["backoffLimit"] != 0 {
		t.Error("the migration is retried blindly")
	}
}

// TestFailedRestoreScalesTheAppBack: a restore Job that fails (the dump
// does not apply; its one transaction left the data as it was) still
// brings the app back, and says so with the Job's log.
func TestFailedRestoreScalesTheAppBack(t *testing.T) {
	f, r := newFake(t)
	f.failJob = "svc-db-restore-"
	err := r.Restore(context.Background(), "app-20261126T031500Z.dump", io.Discard)
	if err == nil || !strings.Contains(err.Error(), "failed; its log:") {
		t.Fatalf("a failed restore Job: %v", err)
	}
	if f.replicas != 3 {
		t.Errorf("the app is left at %d replicas", f.replicas)
	}
	for name := range f.made {
		if strings.HasPrefix(name, "svc-migrate-restore-") {
			t.Error("the migration ran after a failed restore")
		}
	}
}

// TestRestoreRefusesAnUnknownBackup: nothing is scaled for a name that is
// not on the claim.
func TestRestoreRefusesAnUnknownBackup(t *testing.T) {
	f, r := newFake(t)
	err := r.Restore(context.Background(), "app-1999.dump", io.Discard)
	if err == nil || !strings.Contains(err.Error(), `no backup "app-1999.dump" on the backups claim; there are: app-20261126T031500Z.dump, app-20261125T031500Z.dump`) {
		t.Fatalf("an unknown backup: %v", err)
	}
	for _, c := range f.calls {
		if strings.Contains(c, "scale") {
			t.Errorf("scaled for an unknown backup: %s", c)
		}
	}
}

// TestAJobWithoutANodeSaysWhy: a backup Job whose pod cannot be scheduled
// (seen in the lab: "Insufficient cpu") fails with the scheduler's reason
// instead of waiting 15 minutes in silence.
func TestAJobWithoutANodeSaysWhy(t *testing.T) {
	f, r := newFake(t)
	f.pending = true
	defer func(d time.Duration) { unschedulableAfter = d }(unschedulableAfter)
	unschedulableAfter = 0
	_, err := r.BackupNow(context.Background())
	if err == nil || !strings.Contains(err.Error(), "cannot be scheduled (Unschedulable): 0/4 nodes are available: 1 Insufficient cpu") {
		t.Fatalf("a pod without a node: %v", err)
	}
}
