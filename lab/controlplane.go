package lab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// startControlPlane runs etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler (one multi-call binary), then applies what every test
// expects to find: the lab's RBAC, the monitoring CRDs.
func (l *Lab) startControlPlane(ctx context.Context) error {
	cp := l.tools["controlplane"]
	p := l.pki
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", l.EtcdPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", l.EtcdPort+1)
	if err := l.portFree("etcd", l.EtcdPort, "FASTAPI_INFRA_LAB_ETCD_PORT"); err != nil {
		return err
	}
	if err := l.start(process{name: "etcd", argv: []string{cp, "etcd", "--name", "lab", "--data-dir", filepath.Join(l.State, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "lab=" + peerURL, "--log-level", "warn"}}); err != nil {
		return err
	}
	if err := l.waitFor(ctx, "etcd answering", "etcd", 30*time.Second, func() error { return httpOK(nil, etcdURL+"/health") }); err != nil {
		return err
	}
	if err := l.portFree("kube-apiserver", l.APIPort, "FASTAPI_INFRA_LAB_API_PORT"); err != nil {
		return err
	}
	if err := l.start(process{name: "kube-apiserver", argv: []string{cp, "kube-apiserver",
		"--etcd-servers", etcdURL, "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(l.APIPort), "--cert-dir", filepath.Join(l.State, "apiserver-certs"),
		"--tls-cert-file", p.apiserver.cert, "--tls-private-key-file", p.apiserver.key, "--client-ca-file", p.ca,
		"--service-account-issuer", "https://kubernetes.default.svc", "--service-account-key-file", p.serviceAccountPub,
		"--service-account-signing-key-file", p.serviceAccountKey, "--service-cluster-ip-range", serviceCIDR,
		"--authorization-mode", "Node,RBAC", "--allow-privileged=false",
		// kubectl logs/exec reach the kubelet at its node address, as itself.
		"--kubelet-client-certificate", p.apiserverKubelet.cert, "--kubelet-client-key", p.apiserverKubelet.key,
		"--kubelet-preferred-address-types", "InternalIP,Hostname",
		"--requestheader-client-ca-file", p.frontProxyCA, "--requestheader-allowed-names", "front-proxy-client",
		"--requestheader-username-headers", "X-Remote-User", "--requestheader-group-headers", "X-Remote-Group",
		"--requestheader-extra-headers-prefix", "X-Remote-Extra-",
		"--proxy-client-cert-file", p.frontProxyClient.cert, "--proxy-client-key-file", p.frontProxyClient.key,
	}}); err != nil {
		return err
	}
	client, err := l.adminHTTP()
	if err != nil {
		return err
	}
	api := fmt.Sprintf("https://127.0.0.1:%d", l.APIPort)
	if err := l.waitFor(ctx, "kube-apiserver ready", "kube-apiserver", 60*time.Second, func() error { return httpOK(client, api+"/readyz") }); err != nil {
		return err
	}
	admin := l.kubeconfigFor("admin")
	auth := []string{"--kubeconfig", admin, "--authentication-kubeconfig", admin, "--authorization-kubeconfig", admin,
		"--bind-address", "127.0.0.1", "--secure-port", "0", "--leader-elect=false"}
	if err := l.start(process{name: "kube-controller-manager", argv: append([]string{cp, "kube-controller-manager",
		"--service-account-private-key-file", p.serviceAccountKey, "--root-ca-file", p.ca,
		"--cluster-signing-cert-file", p.ca, "--cluster-signing-key-file", p.caKey,
		"--use-service-account-credentials=false",
		"--controllers", "*,-nodeipam,-service-lb-controller,-cloud-node-lifecycle,-route"}, auth...)}); err != nil {
		return err
	}
	if err := l.start(process{name: "kube-scheduler", argv: append([]string{cp, "kube-scheduler"}, auth...)}); err != nil {
		return err
	}
	// Pods can only be created once the default ServiceAccount exists.
	if err := l.waitFor(ctx, "the default ServiceAccount", "kube-controller-manager", 60*time.Second, func() error {
		_, err := l.kubectl(ctx, "", "-n", "default", "get", "serviceaccount", "default")
		return err
	}); err != nil {
		return err
	}
	if _, err := l.kubectl(ctx, "", "apply", "-f", filepath.Join(l.Repo, "lab", "crds")); err != nil {
		return fmt.Errorf("applying lab/crds: %w", err)
	}
	return l.waitFor(ctx, "the monitoring CRDs", "", 30*time.Second, func() error {
		_, err := l.kubectl(ctx, "", "get", "servicemonitors", "-A")
		return err
	})
}

// portFree fails when a process the lab did not start holds the port.
func (l *Lab) portFree(role string, port int, env string) error {
	if _, ours := l.pid(role); ours {
		return nil
	}
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err != nil {
		return nil
	}
	conn.Close()
	return fmt.Errorf("port %d (%s) is taken by a process this lab did not start; stop it or set %s", port, role, env)
}

// adminHTTP is an HTTP client that authenticates as the lab's admin.
func (l *Lab) adminHTTP() (*http.Client, error) {
	cert, err := tls.LoadX509KeyPair(l.pki.admin.cert, l.pki.admin.key)
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(l.pki.ca)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("lab: no certificate in " + l.pki.ca)
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}},
	}}, nil
}

func httpOK(client *http.Client, url string) error {
	if client == nil {
		client = &http.Client{Timeout: 2 * time.Second}
	}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}
