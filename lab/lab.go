package lab

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/fastapi-infra/fastapi-infra/toolchain"
)

//go:embed templates kwok/stages.yaml
var files embed.FS

var templates = template.Must(template.New("").Option("missingkey=error").ParseFS(files, "templates/*.tmpl"))

// Config says which lab to run and where.
type Config struct {
	// Repo is the repository folder (required): lab/crds and lab/pause.
	Repo string
	// State holds certificates, cluster data, logs and pids; default
	// <Repo>/.lab (git ignores it).
	State string
	// APIPort and EtcdPort are the control plane's ports on 127.0.0.1;
	// defaults 16443 and 12379 (and the next one for etcd's peers).
	APIPort, EtcdPort int
	// Kwok registers three fake nodes whose pods kwok fakes: fast, and
	// enough for the shape of a multi-node rollout.
	Kwok bool
	// RealNode joins a real node: containerd, the kubelet, kube-proxy,
	// CoreDNS and a Traefik ingress controller on 127.0.0.1.
	RealNode bool
	// Progress gets one line per step; nil discards them.
	Progress io.Writer
}

// Lab is a local Kubernetes cluster for the end-to-end tests.
type Lab struct {
	Config
	// Kubeconfig is an admin kubeconfig for the cluster.
	Kubeconfig string
	// NodeIP is the real node's address: the machine's own, as a kubelet
	// refuses loopback.
	NodeIP net.IP
	// IngressHTTPS and IngressHTTP are the ingress controller's listeners,
	// on 127.0.0.1 only.
	IngressHTTPS, IngressHTTP string

	tools map[string]string
	pki   *labPKI
}

// The lab's fixed addresses. The pod range is private to the real node's
// bridge and apart from kwok's fake pods (10.244.0.0/16), Docker's
// networks and the single server's default subnet.
const (
	serviceCIDR  = "10.96.0.0/16"
	apiServiceIP = "10.96.0.1"
	dnsServiceIP = "10.96.0.10"
	podCIDR      = "10.245.0.0/24"
	cniGateway   = "10.245.0.1" // the bridge's address: the host's, towards the pods
	// RealNodeName is the real node. Pods choose it with the node selector
	// type=real, and kwok's fake nodes with type=kwok (kubernetes.nodeSelector).
	RealNodeName = "lab-real"
	// IngressClass is the real node's ingress controller (Traefik).
	IngressClass = "traefik"
	// IngressNamespace is where the ingress controller's identity lives.
	IngressNamespace = "lab-ingress"
	// FailingMigrationImage is an image whose Job pods kwok fails with
	// exit code 1, for the fast migration-failure case.
	FailingMigrationImage = "lab.local/fastapi-app:fail-migration"
	ingressHTTPSPort      = 18443
	ingressHTTPPort       = 18080
	corednsPort           = 1053
)

// New resolves the defaults of cfg.
func New(cfg Config) (*Lab, error) {
	if cfg.Repo == "" {
		return nil, errors.New("lab: Config.Repo is required")
	}
	if cfg.State == "" {
		cfg.State = filepath.Join(cfg.Repo, ".lab")
	}
	state, err := filepath.Abs(cfg.State)
	if err != nil {
		return nil, err
	}
	cfg.State = state
	if cfg.APIPort == 0 {
		cfg.APIPort = 16443
	}
	if cfg.EtcdPort == 0 {
		cfg.EtcdPort = 12379
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	l := &Lab{
		Config:       cfg,
		Kubeconfig:   filepath.Join(state, "pki", "admin.kubeconfig"),
		IngressHTTPS: fmt.Sprintf("127.0.0.1:%d", ingressHTTPSPort),
		IngressHTTP:  fmt.Sprintf("127.0.0.1:%d", ingressHTTPPort),
	}
	if l.NodeIP, err = hostAddress(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Lab) logf(format string, args ...any) {
	fmt.Fprintf(l.Progress, "lab: "+format+"\n", args...)
}

// Start brings the cluster up, or finds it running. A stopped lab starts
// fresh (new etcd data and certificates), so no pod of an earlier run comes
// back on the real node.
func (l *Lab) Start(ctx context.Context) error {
	started := time.Now()
	names := []string{"controlplane"}
	if l.Kwok {
		names = append(names, "kwok")
	}
	if l.RealNode {
		names = append(names, "kubenode", "traefik")
	}
	var err error
	b := toolchain.Builder{Progress: l.Progress}
	if l.tools, err = b.Ensure(ctx, names...); err != nil {
		return err
	}
	if _, running := l.pid("kube-apiserver"); !running {
		if err := l.fresh(); err != nil {
			return err
		}
	} else {
		l.pki = labIdentities(filepath.Join(l.State, "pki"))
	}
	if err := l.startControlPlane(ctx); err != nil {
		return err
	}
	if l.Kwok {
		if err := l.startKwok(ctx); err != nil {
			return err
		}
	}
	if l.RealNode {
		if err := l.startNode(ctx); err != nil {
			return err
		}
	}
	l.logf("up in %s; KUBECONFIG=%s", time.Since(started).Round(100*time.Millisecond), l.Kubeconfig)
	return nil
}

// fresh clears what an earlier run left and makes new certificates.
func (l *Lab) fresh() error {
	for _, dir := range []string{"etcd", "pki", "node/state", "node/kubelet", "node/pod-logs", "node/volumes"} {
		if err := removeAll(filepath.Join(l.State, dir)); err != nil {
			return err
		}
	}
	var err error
	l.pki, err = newLabPKI(filepath.Join(l.State, "pki"), RealNodeName, l.NodeIP, net.ParseIP(apiServiceIP))
	if err != nil {
		return err
	}
	return l.writeKubeconfigs()
}

// DriftUser is the lab's user for the CI drift job's identity: no rights
// until a test binds it (DriftKubeconfig).
const DriftUser = "lab:drift"

// DriftKubeconfig is DriftUser's kubeconfig.
func (l *Lab) DriftKubeconfig() string { return l.kubeconfigFor("drift") }

// kubeconfigFor is the kubeconfig file of one identity.
func (l *Lab) kubeconfigFor(user string) string {
	return filepath.Join(l.State, "pki", user+".kubeconfig")
}

func (l *Lab) writeKubeconfigs() error {
	for user, id := range map[string]identity{
		"admin": l.pki.admin, "kubelet": l.pki.kubelet, "kube-proxy": l.pki.kubeProxy,
		"coredns": l.pki.coredns, "traefik": l.pki.traefik, "drift": l.pki.drift,
	} {
		err := l.render("kubeconfig.tmpl", l.kubeconfigFor(user), 0o600, map[string]string{
			"Server": fmt.Sprintf("https://127.0.0.1:%d", l.APIPort), "CA": l.pki.ca,
			"User": user, "Cert": id.cert, "Key": id.key,
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// render executes a template into a file.
func (l *Lab) render(name, path string, mode os.FileMode, data any) error {
	var out strings.Builder
	if err := templates.ExecuteTemplate(&out, name, data); err != nil {
		return fmt.Errorf("rendering %s: %w", name, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(out.String()), mode)
}

// renderString executes a template into a string (a manifest to apply).
func renderString(name string, data any) (string, error) {
	var out strings.Builder
	if err := templates.ExecuteTemplate(&out, name, data); err != nil {
		return "", fmt.Errorf("rendering %s: %w", name, err)
	}
	return out.String(), nil
}

// Stop ends every process Start started, in reverse order, and removes
// what the real node made outside the lab's folder. It is safe to call on
// a lab that is not running.
func (l *Lab) Stop(ctx context.Context) error {
	var errs []error
	if err := l.stopNode(ctx); err != nil {
		errs = append(errs, err)
	}
	for _, name := range []string{"kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"} {
		if l.stop(name, 5*time.Second) {
			l.logf("stopped %s", name)
		}
	}
	return errors.Join(errs...)
}

// Processes are the names Status reports on.
var Processes = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok",
	"containerd", "kubelet", "kube-proxy", "coredns", "traefik"}

// Status says which processes run.
func (l *Lab) Status() map[string]int {
	st := map[string]int{}
	for _, name := range Processes {
		if pid, ok := l.pid(name); ok {
			st[name] = pid
		}
	}
	return st
}

// hostAddress is the machine's own IPv4 address: the source address of the
// default route (connecting a UDP socket sends nothing).
func hostAddress() (net.IP, error) {
	conn, err := net.Dial("udp4", "198.51.100.1:9")
	if err == nil {
		defer conn.Close()
		if ip := conn.LocalAddr().(*net.UDPAddr).IP; !ip.IsLoopback() {
			return ip.To4(), nil
		}
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for _, i := range ifaces {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 || strings.HasPrefix(i.Name, "docker") ||
			strings.HasPrefix(i.Name, "br-") || strings.HasPrefix(i.Name, "veth") || strings.HasPrefix(i.Name, "cni") {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				return n.IP.To4(), nil
			}
		}
	}
	return nil, errors.New("lab: this machine has no non-loopback IPv4 address, which a kubelet needs as its node address")
}

func removeAll(path string) error {
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("clearing %s: %w", path, err)
	}
	return nil
}
