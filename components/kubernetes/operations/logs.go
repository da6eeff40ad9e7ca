package operations

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
)

// LogLine is one line a container of the service's pods wrote.
type LogLine struct {
	Time time.Time
	// Source is the pod's name, and /container when the pod has more
	// than one (the database's exporter beside PostgreSQL).
	Source string
	Text   string
}

// serviceNames are the pods' roles (app.kubernetes.io/component) by the
// names a single server's --service takes, so that one flag means one
// thing on both architectures.
var serviceNames = map[string]string{"api": "app", "database": "db", "migration": "migrate", "backup": "backup", "exec": "exec"}

// Logs are the lines of the service's pods (or of one service's: app, db,
// migrate, backup) since a time (zero: all the kubelet keeps), with the
// kubelet's timestamps, in time order across pods and containers. An
// unknown service is an error that lists the namespace's.
func (r Running) Logs(ctx context.Context, since time.Time, service string) ([]LogLine, error) {
	var pods struct {
		Items []struct {
			Metadata struct {
				Name   string            `json:"name"`
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
			Spec struct {
				Containers []struct {
					Name string `json:"name"`
				} `json:"containers"`
			} `json:"spec"`
		} `json:"items"`
	}
	if err := r.pods(ctx, url.Values{"labelSelector": {"app.kubernetes.io/name=" + r.App}}, &pods); err != nil {
		return nil, err
	}
	found := map[string]bool{}
	var out []LogLine
	for _, p := range pods.Items {
		role := p.Metadata.Labels["app.kubernetes.io/component"]
		svc, ok := serviceNames[role]
		if !ok {
			svc = role
		}
		found[svc] = true
		if service != "" && svc != service {
			continue
		}
		for _, c := range p.Spec.Containers {
			source := p.Metadata.Name
			if len(p.Spec.Containers) > 1 {
				source += "/" + c.Name
			}
			lines, err := r.containerLog(ctx, p.Metadata.Name, c.Name, since)
			if err != nil {
				return nil, err
			}
			for _, l := range lines {
				l.Source = source
				out = append(out, l)
			}
		}
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("no pod labelled app.kubernetes.io/name=%s in namespace %s: is the stack up?", r.App, r.Namespace)
	}
	if service != "" && !found[service] {
		return nil, fmt.Errorf("no service %q among the pods; their services: %s", service, strings.Join(slices.Sorted(maps.Keys(found)), ", "))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// containerLog is one container's lines since a time. The API server
// takes whole seconds, so the lines before since in that second are
// dropped here; a container that has not started has none yet.
func (r Running) containerLog(ctx context.Context, pod, container string, since time.Time) ([]LogLine, error) {
	q := url.Values{"timestamps": {"true"}, "container": {container}}
	if !since.IsZero() {
		q.Set("sinceTime", since.UTC().Truncate(time.Second).Format(time.RFC3339))
	}
	var text string
	err := r.API.Do(ctx, http.MethodGet, "/api/v1/namespaces/"+r.Namespace+"/pods/"+pod+"/log?"+q.Encode(), "", nil, &text)
	if err != nil {
		if strings.Contains(err.Error(), "is waiting to start") || strings.Contains(err.Error(), "ContainerCreating") {
			return nil, nil
		}
		return nil, fmt.Errorf("the log of %s/%s: %w", pod, container, err)
	}
	var out []LogLine
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		stamp, rest, ok := strings.Cut(line, " ")
		t, err := time.Parse(time.RFC3339Nano, stamp)
		if !ok || err != nil || t.Before(since) {
			continue
		}
		out = append(out, LogLine{Time: t, Text: rest})
	}
	return out, nil
}
