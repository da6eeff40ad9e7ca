package deploy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	k8sops "github.com/fastapi-infra/fastapi-infra/components/kubernetes/operations"
	"github.com/fastapi-infra/fastapi-infra/internal/dockerapi"
	"github.com/fastapi-infra/fastapi-infra/internal/logstore"
)

// LogFilter picks the lines `./infra logs` prints.
type LogFilter struct {
	// Since drops lines older than this (zero: every line Docker keeps).
	Since time.Time
	// Grep keeps only lines that contain it (empty: every line).
	Grep string
	// Service keeps only the containers of one role: app, proxy, db,
	// backup, migrate, ... (empty: every container of the stack).
	Service string
}

// StackLogLine is one line of one of the stack's containers.
type StackLogLine struct {
	dockerapi.LogLine
	// Container is the Docker name without the stack's prefix, e.g.
	// app-1-3f2a9c0d1e or db.
	Container string
}

func (l StackLogLine) String() string {
	return l.Time.UTC().Format("2006-01-02T15:04:05.000Z") + " " + l.Container + " | " + l.Text
}

// ServiceOf is the role of a container by its name without the stack's
// prefix: app-1-<release> is app, migrate-<id> is migrate, db-roles-<id>
// is db-roles, db is db.
func ServiceOf(container string) string {
	parts := strings.Split(container, "-")
	var words []string
	for _, p := range parts {
		if isID(p) {
			break
		}
		words = append(words, p)
	}
	return strings.Join(words, "-")
}

// isID says whether a name part is a replica number or a release or
// secrets id (10 hex digits), not a word of the role.
func isID(p string) bool {
	if p == "" {
		return false
	}
	digits, hex := true, len(p) == 10
	for _, c := range p {
		digits = digits && c >= '0' && c <= '9'
		hex = hex && (c >= '0' && c <= '9' || c >= 'a' && c <= 'f')
	}
	return digits || hex
}

// StackLogs are the lines of the single server's containers (Docker names
// starting with prefix-), filtered, in time order across them: one
// stream, as a release's replicas, its proxy and its database wrote it.
// An unknown service is an error that lists the stack's.
func StackLogs(ctx context.Context, docker *dockerapi.Client, prefix string, f LogFilter) ([]StackLogLine, error) {
	all, picked, err := stackContainers(ctx, docker, prefix, f.Service)
	if err != nil {
		return nil, err
	}
	var out []StackLogLine
	for _, name := range picked {
		lines, err := docker.LogsSince(ctx, all[name], f.Since)
		if err != nil {
			return nil, err
		}
		short := strings.TrimPrefix(name, prefix+"-")
		for _, l := range lines {
			if f.Grep == "" || strings.Contains(l.Text, f.Grep) {
				out = append(out, StackLogLine{LogLine: l, Container: short})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// storedLines bounds a read from the log store: the newest lines.
const storedLines = 50000

// StoredLogs are the same lines from the stack's log store
// (logging.aggregate), which keeps those of containers the engine no
// longer has: replicas a release replaced, lines past the engine's
// rotation. ok is false when the stack has no store running.
func StoredLogs(ctx context.Context, docker *dockerapi.Client, prefix string, f LogFilter) (lines []StackLogLine, ok bool, err error) {
	store := logstore.Store{Engine: docker, Prefix: prefix}
	if !store.Running(ctx) {
		return nil, false, nil
	}
	if _, _, err := stackContainers(ctx, docker, prefix, f.Service); err != nil {
		return nil, true, err
	}
	stored, err := store.Lines(ctx, f.Since, storedLines)
	if err != nil {
		return nil, true, fmt.Errorf("reading the log store %s-logs: %w", prefix, err)
	}
	for _, l := range stored {
		short := strings.TrimPrefix(l.Container, prefix+"-")
		if f.Service != "" && ServiceOf(short) != f.Service || f.Grep != "" && !strings.Contains(l.Text, f.Grep) {
			continue
		}
		lines = append(lines, StackLogLine{LogLine: dockerapi.LogLine{Time: l.Time, Text: l.Text}, Container: short})
	}
	return lines, true, nil
}

// stackContainers are the stack's containers on the engine (name -> ID)
// and those of the service asked for (every one for ""); an unknown
// service is an error that lists the stack's.
func stackContainers(ctx context.Context, docker *dockerapi.Client, prefix, service string) (map[string]string, []string, error) {
	all, err := docker.List(ctx, "")
	if err != nil {
		return nil, nil, err
	}
	services := map[string]bool{}
	var picked []string
	for _, name := range slices.Sorted(maps.Keys(all)) {
		short, ok := strings.CutPrefix(name, prefix+"-")
		if !ok {
			continue
		}
		svc := ServiceOf(short)
		services[svc] = true
		if service == "" || svc == service {
			picked = append(picked, name)
		}
	}
	if len(services) == 0 {
		return nil, nil, fmt.Errorf("no container of the stack (Docker names %s-...) on this engine: is the stack up?", prefix)
	}
	if service != "" && !services[service] {
		return nil, nil, fmt.Errorf("no service %q in the stack; its services: %s", service, strings.Join(slices.Sorted(maps.Keys(services)), ", "))
	}
	return all, picked, nil
}

// KubernetesLogs are the lines of a Kubernetes stack's pods, filtered as
// StackLogs filters a single server's, each named by its pod.
func KubernetesLogs(ctx context.Context, svc k8sops.Running, f LogFilter) ([]StackLogLine, error) {
	lines, err := svc.Logs(ctx, f.Since, f.Service)
	if err != nil {
		return nil, err
	}
	var out []StackLogLine
	for _, l := range lines {
		if f.Grep == "" || strings.Contains(l.Text, f.Grep) {
			out = append(out, StackLogLine{LogLine: dockerapi.LogLine{Time: l.Time, Text: l.Text}, Container: l.Source})
		}
	}
	return out, nil
}
