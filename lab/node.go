package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/fastapi-infra/fastapi-infra/toolchain"
)

// The real node's folders: state that ends with the lab (kubelet, CNI,
// containerd's run state) and containerd's root, which keeps the imported
// images between runs and clones (importing the 880 MB app image takes
// about 25 s), in the toolchain's cache.
func (l *Lab) nodeDir(parts ...string) string {
	return filepath.Join(append([]string{l.State, "node"}, parts...)...)
}

func (l *Lab) containerdSocket() string { return l.nodeDir("state", "containerd.sock") }

// containerdRoot is in the toolchain's cache, outside the clone, so that
// the imported images survive a fresh clone.
func (l *Lab) containerdRoot() (string, error) {
	cache, err := toolchain.CacheDir()
	return filepath.Join(cache, "lab-containerd-root"), err
}

const cniBridge = "cni-lab0"

// startNode joins the real node: containerd, CNI, the kubelet, kube-proxy,
// CoreDNS and the ingress controller, each checked before the next.
func (l *Lab) startNode(ctx context.Context) error {
	started := time.Now()
	if err := l.startContainerd(ctx); err != nil {
		return err
	}
	if err := l.startKubelet(ctx); err != nil {
		return err
	}
	volumes, err := l.localVolumes()
	if err != nil {
		return err
	}
	if err := l.apply(ctx, "node.yaml.tmpl", map[string]any{
		"Node": RealNodeName, "NodeIP": l.NodeIP.String(), "DNSServiceIP": dnsServiceIP, "DNSPort": corednsPort,
		"IngressClass": IngressClass, "IngressNamespace": IngressNamespace, "Volumes": volumes,
		"StorageClass": StorageClass,
	}); err != nil {
		return fmt.Errorf("applying the node's services: %w", err)
	}
	if err := l.startKubeProxy(ctx); err != nil {
		return err
	}
	if err := l.startCoreDNS(ctx); err != nil {
		return err
	}
	if err := l.startIngress(ctx); err != nil {
		return err
	}
	l.logf("real node %s (%s) Ready with Service routing, DNS and ingress in %s", RealNodeName, l.NodeIP, time.Since(started).Round(100*time.Millisecond))
	return nil
}

func (l *Lab) startContainerd(ctx context.Context) error {
	if _, running := l.pid("containerd"); running {
		return nil
	}
	pause, err := l.buildPause(ctx)
	if err != nil {
		return err
	}
	root, err := l.containerdRoot()
	if err != nil {
		return err
	}
	cniConf := l.nodeDir("cni", "net.d")
	if err := os.MkdirAll(cniConf, 0o755); err != nil {
		return err
	}
	if err := writeCNIConfig(filepath.Join(cniConf, "10-lab.conflist"), l.nodeDir("cni", "ipam")); err != nil {
		return err
	}
	if err := l.render("containerd.toml.tmpl", l.nodeDir("containerd.toml"), 0o644, map[string]string{
		"Root": root, "State": l.nodeDir("state", "containerd"), "Socket": l.containerdSocket(),
		"RuncRoot": l.nodeDir("state", "runc"), "PauseImage": pause,
		"CNIBin": "/usr/lib/cni", "CNIConf": cniConf,
	}); err != nil {
		return err
	}
	for _, bin := range []string{"containerd", "runc", "ctr", "/usr/lib/cni/bridge", "/usr/lib/cni/firewall", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "conntrack", "iptables"} {
		if _, err := lookPath(bin); err != nil {
			return fmt.Errorf("lab: the real node needs %s (Debian: apt-get install containerd runc containernetworking-plugins conntrack iptables): %w", bin, err)
		}
	}
	if err := l.start(process{name: "containerd", argv: []string{"containerd", "--config", l.nodeDir("containerd.toml")}}); err != nil {
		return err
	}
	if err := l.waitFor(ctx, "containerd answering", "containerd", 30*time.Second, func() error {
		_, err := l.ctr(ctx, "version")
		return err
	}); err != nil {
		return err
	}
	return l.loadImage(ctx, pause)
}

// writeCNIConfig is the pod network: a bridge with a private /24, and the
// firewall plugin, without which Docker's FORWARD policy (DROP, with bridge
// netfilter on) drops pod-to-pod traffic.
func writeCNIConfig(path, ipamDir string) error {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "lab",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": cniBridge, "isGateway": true, "ipMasq": false, "hairpinMode": true,
				"ipam": map[string]any{
					"type": "host-local", "dataDir": ipamDir,
					"ranges": [][]map[string]string{{{"subnet": podCIDR}}},
					"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
			map[string]any{"type": "firewall"},
		},
	}
	raw, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, raw, 0o644)
}

func (l *Lab) startKubelet(ctx context.Context) error {
	if _, running := l.pid("kubelet"); !running {
		resolv := l.nodeDir("resolv.conf")
		// Pods resolve through cluster DNS only, never the machine's own
		// search domains.
		if err := os.WriteFile(resolv, []byte("# the lab's pods use cluster DNS only\n"), 0o644); err != nil {
			return err
		}
		if err := l.render("kubelet.yaml.tmpl", l.nodeDir("kubelet.yaml"), 0o644, map[string]string{
			"NodeIP": l.NodeIP.String(), "Socket": l.containerdSocket(), "PodLogs": l.nodeDir("pod-logs"),
			"ResolvConf": resolv, "ClusterDNS": dnsServiceIP, "CA": l.pki.ca,
			"ServingCert": l.pki.kubeletServer.cert, "ServingKey": l.pki.kubeletServer.key,
		}); err != nil {
			return err
		}
		if err := l.start(process{name: "kubelet", argv: []string{l.tools["kubenode"], "kubelet",
			"--config", l.nodeDir("kubelet.yaml"), "--kubeconfig", l.kubeconfigFor("kubelet"),
			"--hostname-override", RealNodeName, "--node-ip", l.NodeIP.String(),
			"--root-dir", l.nodeDir("kubelet"), "--cert-dir", l.nodeDir("kubelet-pki"),
			"--node-labels", "type=real", "--v", "1"}}); err != nil {
			return err
		}
	}
	return l.waitFor(ctx, "the real node Ready", "kubelet", 60*time.Second, func() error {
		return l.nodesReady(ctx, "type=real", 1)
	})
}

// StorageClass is the lab's default class: local volumes on the real node.
const StorageClass = "lab-local"

// localVolume is a folder on the node that backs one PersistentVolume.
type localVolume struct{ Name, Path string }

// localVolumes makes the folders of the default StorageClass's volumes:
// enough for every claim the tests and the benchmark make in one lab run
// (retained claims keep theirs; nothing recycles them before a fresh start).
func (l *Lab) localVolumes() ([]localVolume, error) {
	var vols []localVolume
	for i := 1; i <= 20; i++ {
		v := localVolume{Name: fmt.Sprintf("%s-%d", StorageClass, i), Path: l.nodeDir("volumes", fmt.Sprintf("%d", i))}
		if err := os.MkdirAll(v.Path, 0o777); err != nil {
			return nil, err
		}
		// The database's user (999) writes here; fsGroup would too, but
		// not every volume plugin applies it.
		if err := os.Chmod(v.Path, 0o777); err != nil {
			return nil, err
		}
		vols = append(vols, v)
	}
	return vols, nil
}

func (l *Lab) startKubeProxy(ctx context.Context) error {
	if err := l.render("kube-proxy.yaml.tmpl", l.nodeDir("kube-proxy.yaml"), 0o644, map[string]string{
		"Kubeconfig": l.kubeconfigFor("kube-proxy"), "Node": RealNodeName, "PodCIDR": podCIDR, "NodeIP": l.NodeIP.String(),
	}); err != nil {
		return err
	}
	if err := l.start(process{name: "kube-proxy", argv: []string{l.tools["kubenode"], "kube-proxy",
		"--config", l.nodeDir("kube-proxy.yaml"), "--v", "1"}}); err != nil {
		return err
	}
	// Never send traffic to a ClusterIP before its rule exists: without it
	// the packet follows the default route off the machine.
	return l.waitFor(ctx, "kube-proxy's rule for the DNS Service", "kube-proxy", 60*time.Second, func() error {
		out, err := exec.CommandContext(ctx, "iptables", "-w", "-t", "nat", "-S", "KUBE-SERVICES").Output()
		if err != nil {
			return err
		}
		if !strings.Contains(string(out), dnsServiceIP+"/32") {
			return fmt.Errorf("no rule for %s yet", dnsServiceIP)
		}
		return nil
	})
}

func lookPath(bin string) (string, error) {
	if filepath.IsAbs(bin) {
		_, err := os.Stat(bin)
		return bin, err
	}
	for _, dir := range append(filepath.SplitList(os.Getenv("PATH")), "/usr/sbin", "/sbin") {
		p := filepath.Join(dir, bin)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not installed", bin)
}

// dnsResolver is the cluster DNS as the host reaches it: through the
// ClusterIP, so a lookup proves Service routing too.
func dnsResolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, net.JoinHostPort(dnsServiceIP, "53"))
	}}
}
