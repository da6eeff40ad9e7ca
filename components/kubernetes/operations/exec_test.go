package operations

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// execAPI answers as an API server with the app's Deployment; the Job's
// pod runs, prints, and ends with exit code 3.
type execAPI struct {
	jobs    map[string]obj
	deleted []string
	polls   int
}

func (f *execAPI) Do(_ context.Context, method, path, _ string, body, into any) error {
	p, _, _ := strings.Cut(path, "?")
	switch {
	case method == http.MethodGet && strings.HasSuffix(p, "/deployments/svc"):
		return decodeInto(obj{"spec": obj{"template": obj{
			"metadata": obj{"labels": obj{"app.kubernetes.io/name": "svc", "app.kubernetes.io/component": "api", "app.kubernetes.io/part-of": "svc"}},
			"spec": obj{
				"initContainers":            []any{obj{"name": "migrate", "command": []any{"alembic", "upgrade", "head"}}},
				"topologySpreadConstraints": []any{obj{"maxSkew": 1}},
				"nodeSelector":              obj{"pool": "apps"},
				"containers": []any{obj{"name": "app", "image": "app:2", "args": []any{"--workers", "2"},
					"envFrom":        []any{obj{"secretRef": obj{"name": "svc-secret-abc"}}},
					"readinessProbe": obj{}, "livenessProbe": obj{}, "startupProbe": obj{}, "lifecycle": obj{}, "ports": []any{obj{"containerPort": 8000}}},
					obj{"name": "sidecar"}},
			}}}}, into)
	case method == http.MethodPost && strings.HasSuffix(p, "/jobs"):
		job := body.(obj)
		f.jobs[job["metadata"].(obj)["name"].(string)] = job
		return nil
	case method == http.MethodGet && strings.HasSuffix(p, "/pods") && strings.Contains(path, "job-name"):
		return decodeInto(obj{"items": []any{obj{"metadata": obj{"name": "exec-pod"}, "status": obj{"phase": "Running"}}}}, into)
	case method == http.MethodGet && strings.HasSuffix(p, "/pods/exec-pod/log"):
		if !strings.Contains(path, "follow=true") {
			return fmt.Errorf("the log is read without follow: %s", path)
		}
		_, err := io.WriteString(into.(io.Writer), "42 rows\n")
		return err
	case method == http.MethodGet && strings.HasSuffix(p, "/pods/exec-pod"):
		f.polls++
		status := obj{"phase": "Running", "containerStatuses": []any{obj{"state": obj{"running": obj{}}}}}
		if f.polls > 1 {
			status = obj{"phase": "Failed", "containerStatuses": []any{obj{"state": obj{"terminated": obj{"exitCode": 3}}}}}
		}
		return decodeInto(obj{"status": status}, into)
	case method == http.MethodDelete && strings.Contains(p, "/jobs/"):
		f.deleted = append(f.deleted, path)
		return nil
	}
	return fmt.Errorf("unexpected %s %s", method, path)
}

// TestExecRunsOnceInAPodOfTheRelease: the Job's pod is the Deployment's
// template cut to one run of the command: the app container only, no
// probes, no preStop, no ports, no init container (a migration there
// would run again), no restart; the migration's role label, so that the
// Service never routes to it and its NetworkPolicy reaches the database.
// Its output is followed, its exit code returned, and the Job removed.
func TestExecRunsOnceInAPodOfTheRelease(t *testing.T) {
	f := &execAPI{jobs: map[string]obj{}}
	r := Running{API: f, Namespace: "ns", App: "svc", Poll: 1}
	var out bytes.Buffer
	var started string
	code, err := r.Exec(context.Background(), []string{"python3", "-m", "app.count"}, &out, func(job string) { started = job })
	if err != nil || code != 3 || out.String() != "42 rows\n" {
		t.Fatalf("exec: code %d, err %v, output %q; want 3 and the pod's output", code, err, out.String())
	}
	if len(f.jobs) != 1 || f.jobs[started] == nil {
		t.Fatalf("jobs %v, started %q", f.jobs, started)
	}
	job := f.jobs[started]
	if len(f.deleted) != 1 || !strings.Contains(f.deleted[0], "/jobs/"+started+"?propagationPolicy=Background") {
		t.Errorf("the Job and its pod were not removed after: %v", f.deleted)
	}
	spec := dig(job, "spec", "template", "spec").(obj)
	containers := spec["containers"].([]any)
	if len(containers) != 1 {
		t.Fatalf("%d containers, want the app's only", len(containers))
	}
	app := containers[0].(obj)
	if fmt.Sprint(app["command"]) != "[python3 -m app.count]" || app["args"] != nil || app["image"] != "app:2" || app["envFrom"] == nil {
		t.Errorf("the container: %v", app)
	}
	for _, k := range []string{"readinessProbe", "livenessProbe", "startupProbe", "lifecycle", "ports"} {
		if app[k] != nil {
			t.Errorf("the one-off container keeps %s", k)
		}
	}
	if spec["initContainers"] != nil || spec["restartPolicy"] != "Never" || spec["nodeSelector"] == nil {
		t.Errorf("the pod spec: %v", spec)
	}
	labels := dig(job, "spec", "template", "metadata", "labels").(obj)
	if labels["app.kubernetes.io/component"] != "migration" || labels["app.kubernetes.io/name"] != "svc" {
		t.Errorf("the pod's labels %v: the migration's role, not the API's (the Service selects that)", labels)
	}
	if dig(job, "spec", "backoffLimit") != 0 {
		t.Error("a one-off command is retried")
	}
}

// decodeInto answers as the API server's JSON does.
func decodeInto(v any, into any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, into)
}
