package lab

import (
	"context"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run: go test ./lab -run %s -update)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (run: go test ./lab -run %s -update, and review the diff)\n%s", name, path, t.Name(), got)
	}
}

// testLab is a lab whose paths and addresses are fixed, for golden files.
func testLab() *Lab {
	return &Lab{Config: Config{State: "/lab", APIPort: 16443}, NodeIP: net.IPv4(192, 0, 2, 7), pki: labIdentities("/lab/pki")}
}

func TestNodeConfigFiles(t *testing.T) {
	l := testLab()
	dir := t.TempDir()
	l.State = dir
	render := func(tmpl string, data any) string {
		t.Helper()
		out := filepath.Join(dir, "out")
		if err := l.render(tmpl, out, 0o644, data); err != nil {
			t.Fatal(err)
		}
		raw, _ := os.ReadFile(out)
		return strings.ReplaceAll(string(raw), dir, "/lab")
	}
	l.pki = labIdentities(filepath.Join(dir, "pki"))
	kubelet := render("kubelet.yaml.tmpl", map[string]string{
		"NodeIP": "192.0.2.7", "Socket": "/lab/node/state/containerd.sock", "PodLogs": "/lab/node/pod-logs",
		"ResolvConf": "/lab/node/resolv.conf", "ClusterDNS": dnsServiceIP, "CA": "/lab/pki/ca.crt",
		"ServingCert": "/lab/pki/kubelet-serving.crt", "ServingKey": "/lab/pki/kubelet-serving.key",
	})
	golden(t, "kubelet.yaml", kubelet)
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(kubelet), &cfg); err != nil {
		t.Fatalf("the kubelet config is not YAML: %v", err)
	}
	// What these machines need, as found when the node first ran here.
	for key, want := range map[string]any{"failCgroupV1": false, "cgroupDriver": "cgroupfs", "failSwapOn": false, "makeIPTablesUtilChains": false} {
		if cfg[key] != want {
			t.Errorf("kubelet %s = %v, want %v", key, cfg[key], want)
		}
	}
	golden(t, "kube-proxy.yaml", render("kube-proxy.yaml.tmpl", map[string]string{
		"Kubeconfig": "/lab/pki/kube-proxy.kubeconfig", "Node": RealNodeName, "PodCIDR": podCIDR, "NodeIP": "192.0.2.7"}))
	golden(t, "containerd.toml", render("containerd.toml.tmpl", map[string]string{
		"Root": "/cache/lab-containerd-root", "State": "/lab/node/state/containerd", "Socket": "/lab/node/state/containerd.sock",
		"RuncRoot": "/lab/node/state/runc", "PauseImage": "lab.local/pause:0123456789ab", "CNIBin": "/usr/lib/cni", "CNIConf": "/lab/node/cni/net.d"}))
	golden(t, "Corefile", render("Corefile.tmpl", map[string]any{
		"Port": corednsPort, "NodeIP": "192.0.2.7", "Kubeconfig": "/lab/pki/coredns.kubeconfig", "HealthPort": corednsHealthPort, "ReadyPort": corednsReadyPort}))
	if err := writeCNIConfig(filepath.Join(dir, "cni.json"), "/lab/node/cni/ipam"); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "cni.json"))
	golden(t, "10-lab.conflist", string(raw))
	if err := l.writeKubeconfigs(); err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(l.kubeconfigFor("coredns"))
	golden(t, "coredns.kubeconfig", strings.ReplaceAll(string(raw), dir, "/lab"))
}

func TestNodeManifests(t *testing.T) {
	manifest, err := renderString("node.yaml.tmpl", map[string]any{
		"Node": RealNodeName, "NodeIP": "192.0.2.7", "DNSServiceIP": dnsServiceIP, "DNSPort": corednsPort,
		"IngressClass": IngressClass, "IngressNamespace": IngressNamespace,
		"Volumes":      []localVolume{{"lab-local-1", "/lab/node/volumes/1"}, {"lab-local-2", "/lab/node/volumes/2"}},
		"StorageClass": StorageClass,
	})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "node.yaml", manifest)
	docs, err := decodeAll([]byte(manifest))
	if err != nil {
		t.Fatalf("the node manifests are not YAML: %v", err)
	}
	kinds := map[string]int{}
	for _, d := range docs {
		kinds[d["kind"].(string)]++
	}
	for kind, want := range map[string]int{"ClusterRole": 2, "ClusterRoleBinding": 2, "IngressClass": 1, "Service": 1, "EndpointSlice": 1, "StorageClass": 1, "PersistentVolume": 2} {
		if kinds[kind] != want {
			t.Errorf("%d %s, want %d", kinds[kind], kind, want)
		}
	}
}

// TestKwokStages edits kwok's own stages from the module cache: kwok's
// pod-complete stage must leave the failing-migration image to the lab's
// stage, or that Job would succeed.
func TestKwokStages(t *testing.T) {
	raw, err := (&Lab{}).kwokStages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	docs, err := decodeAll(raw)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, d := range docs {
		names[d["metadata"].(map[string]any)["name"].(string)] = true
	}
	for _, want := range []string{"node-initialize", "node-heartbeat-with-lease", "pod-ready", "pod-complete", "pod-delete", "ingress-address", "pod-fail-migration"} {
		if !names[want] {
			t.Errorf("no stage %s among %v", want, names)
		}
	}
	_, exprs, _ := matchExpressions(docs, "pod-complete")
	last := exprs[len(exprs)-1].(map[string]any)
	if last["key"] != imageKey || last["operator"] != "NotIn" || last["values"].([]any)[0] != FailingMigrationImage {
		t.Errorf("pod-complete does not leave %s alone: %v", FailingMigrationImage, last)
	}
	if !selectsImage(docs, "pod-fail-migration", FailingMigrationImage) {
		t.Error("pod-fail-migration does not select the failing image")
	}
}

func TestNormalizedImageNames(t *testing.T) {
	for ref, want := range map[string]string{
		"fastapi-infra-app:dev":        "docker.io/library/fastapi-infra-app:dev",
		"acme/api:1.2":                 "docker.io/acme/api:1.2",
		"lab.local/pause:abc":          "lab.local/pause:abc",
		"localhost:5000/api":           "localhost:5000/api:latest",
		"ghcr.io/acme/api@sha256:0123": "ghcr.io/acme/api@sha256:0123",
	} {
		if got := normalized(ref); got != want {
			t.Errorf("normalized(%q) = %q, want %q", ref, got, want)
		}
	}
}

func TestUnquoteComment(t *testing.T) {
	rule := `FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD`
	got := strings.Join(unquoteComment(strings.Fields(rule)), "|")
	if want := "FORWARD|-m|comment|--comment|CNI firewall plugin rules|-j|CNI-FORWARD"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
