package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fastapi-infra/fastapi-infra/toolchain"
)

// kwokNodes are the fake nodes' names.
var kwokNodes = []string{"lab-node-1", "lab-node-2", "lab-node-3"}

// startKwok runs kwok with its own fast node and pod stages plus the lab's
// (lab/kwok/stages.yaml), and registers the fake nodes. kwok manages only
// the nodes it annotates, so it leaves the real node and its pods alone.
func (l *Lab) startKwok(ctx context.Context) error {
	stages, err := l.kwokStages(ctx)
	if err != nil {
		return err
	}
	path := filepath.Join(l.State, "kwok-stages.yaml")
	if err := os.WriteFile(path, stages, 0o644); err != nil {
		return err
	}
	// Node heartbeats go through Leases, which kwok renews: without them
	// the node lifecycle controller marks the nodes NotReady after 40 s.
	if err := l.start(process{name: "kwok", argv: []string{l.tools["kwok"], "--kubeconfig", l.Kubeconfig, "--config", path,
		"--manage-nodes-with-annotation-selector", "kwok.x-k8s.io/node=fake", "--cidr", "10.244.0.0/16",
		"--node-ip", "127.0.0.1", "--server-address", "127.0.0.1:0", "--v", "WARN",
		"--node-lease-duration-seconds", "40"}}); err != nil {
		return err
	}
	if err := l.apply(ctx, "kwok-nodes.yaml.tmpl", kwokNodes); err != nil {
		return fmt.Errorf("registering kwok's nodes: %w", err)
	}
	return l.waitFor(ctx, "kwok's nodes Ready", "kwok", 60*time.Second, func() error {
		return l.nodesReady(ctx, "type=kwok", len(kwokNodes))
	})
}

// nodesReady checks that want nodes with the label selector are Ready.
func (l *Lab) nodesReady(ctx context.Context, selector string, want int) error {
	out, err := l.kubectl(ctx, "", "get", "nodes", "-l", selector, "-o",
		`jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
	if err != nil {
		return err
	}
	if n := strings.Count(out, "True"); n < want {
		return fmt.Errorf("%d of %d nodes (%s) Ready", n, want, selector)
	}
	return nil
}

// kwokStages are kwok's fast stages from the pinned module, with
// pod-complete told to leave the failing-migration image alone, and the
// lab's own stages, as one multi-document YAML.
func (l *Lab) kwokStages(ctx context.Context) ([]byte, error) {
	m, err := toolchain.Download(ctx, "sigs.k8s.io/kwok@"+toolchain.KwokVersion)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(m.Dir, "kustomize", "stage")
	var docs []map[string]any
	for _, f := range []string{"node/fast/node-initialize.yaml", "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
		"pod/fast/pod-ready.yaml", "pod/fast/pod-delete.yaml", "pod/fast/pod-complete.yaml"} {
		d, err := decodeFile(filepath.Join(dir, f))
		if err != nil {
			return nil, err
		}
		docs = append(docs, d...)
	}
	own, err := files.ReadFile("kwok/stages.yaml")
	if err != nil {
		return nil, err
	}
	ours, err := decodeAll(own)
	if err != nil {
		return nil, fmt.Errorf("lab/kwok/stages.yaml: %w", err)
	}
	docs = append(docs, ours...)
	if err := excludeImage(docs, "pod-complete", FailingMigrationImage); err != nil {
		return nil, err
	}
	if !selectsImage(docs, "pod-fail-migration", FailingMigrationImage) {
		return nil, fmt.Errorf("lab/kwok/stages.yaml: the stage pod-fail-migration does not select %s", FailingMigrationImage)
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	for _, d := range docs {
		if err := enc.Encode(d); err != nil {
			return nil, err
		}
	}
	return out.Bytes(), enc.Close()
}

func decodeFile(path string) ([]map[string]any, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	docs, err := decodeAll(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return docs, nil
}

func decodeAll(raw []byte) ([]map[string]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
}

// matchExpressions is the selector list of the stage named name.
func matchExpressions(docs []map[string]any, name string) (map[string]any, []any, bool) {
	for _, d := range docs {
		meta, _ := d["metadata"].(map[string]any)
		if meta["name"] != name {
			continue
		}
		spec, _ := d["spec"].(map[string]any)
		sel, _ := spec["selector"].(map[string]any)
		exprs, _ := sel["matchExpressions"].([]any)
		return sel, exprs, sel != nil
	}
	return nil, nil, false
}

// imageKey is how a kwok selector names a pod's container images.
const imageKey = ".spec.containers.[].image"

func excludeImage(docs []map[string]any, stage, image string) error {
	sel, exprs, ok := matchExpressions(docs, stage)
	if !ok {
		return fmt.Errorf("kwok %s has no stage %s with a selector", toolchain.KwokVersion, stage)
	}
	sel["matchExpressions"] = append(exprs, map[string]any{"key": imageKey, "operator": "NotIn", "values": []any{image}})
	return nil
}

func selectsImage(docs []map[string]any, stage, image string) bool {
	_, exprs, _ := matchExpressions(docs, stage)
	for _, e := range exprs {
		expr, _ := e.(map[string]any)
		values, _ := expr["values"].([]any)
		if expr["key"] == imageKey && expr["operator"] == "In" && len(values) == 1 && values[0] == image {
			return true
		}
	}
	return false
}
