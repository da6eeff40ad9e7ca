package lab

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"

	"github.com/fastapi-infra/fastapi-infra/internal/pki"
)

// identity is a certificate and its key on disk.
type identity struct{ cert, key string }

// labPKI is every certificate the lab's processes use, made fresh with each
// fresh cluster, as files in dir.
type labPKI struct {
	dir                    string
	ca, frontProxyCA       string // CA certificates
	caKey                  string // signs the controller manager's CSRs
	apiserver              identity
	apiserverKubelet       identity // the API server towards kubelets (logs, exec)
	frontProxyClient       identity
	serviceAccountKey      string // signs service account tokens
	serviceAccountPub      string
	admin                  identity // system:masters: the tests, kubectl, the controllers
	kubelet, kubeletServer identity
	kubeProxy              identity
	coredns, traefik       identity // least-privilege users, bound by the lab's RBAC
	// drift has no rights until a test binds it: the CI drift job's
	// identity, held to the role docs/ci.md prescribes.
	drift identity
}

// labIdentities names the files of each identity, whether they exist yet
// or not: Start of a running lab only needs the names.
func labIdentities(dir string) *labPKI {
	id := func(name string) identity {
		return identity{cert: filepath.Join(dir, name+".crt"), key: filepath.Join(dir, name+".key")}
	}
	return &labPKI{
		dir: dir, ca: filepath.Join(dir, "ca.crt"), caKey: filepath.Join(dir, "ca.key"), frontProxyCA: filepath.Join(dir, "front-proxy-ca.crt"),
		apiserver: id("apiserver"), apiserverKubelet: id("apiserver-kubelet-client"), frontProxyClient: id("front-proxy-client"),
		serviceAccountKey: filepath.Join(dir, "sa.key"), serviceAccountPub: filepath.Join(dir, "sa.pub"),
		admin: id("admin"), kubelet: id("kubelet"), kubeletServer: id("kubelet-serving"), kubeProxy: id("kube-proxy"),
		coredns: id("coredns"), traefik: id("traefik"), drift: id("drift"),
	}
}

// newLabPKI makes the lab's CAs and every identity it signs.
func newLabPKI(dir, nodeName string, nodeIP, apiServiceIP net.IP) (*labPKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := labIdentities(dir)
	ca, err := pki.NewCA("fastapi-infra-lab-ca")
	if err != nil {
		return nil, err
	}
	frontProxy, err := pki.NewCA("fastapi-infra-lab-front-proxy-ca")
	if err != nil {
		return nil, err
	}
	write := func(path string, content []byte, mode os.FileMode) {
		if err == nil {
			err = os.WriteFile(path, content, mode)
		}
	}
	write(p.ca, ca.CertPEM, 0o644)
	write(p.caKey, ca.KeyPEM, 0o600)
	write(p.frontProxyCA, frontProxy.CertPEM, 0o644)
	issue := func(by *pki.CA, id identity, s pki.Subject) {
		if err != nil {
			return
		}
		var cert, key []byte
		if cert, key, err = by.Issue(s); err == nil {
			write(id.cert, cert, 0o644)
			write(id.key, key, 0o600)
		}
	}
	issue(ca, p.apiserver, pki.Subject{CommonName: "kube-apiserver", Server: true, Names: []string{
		"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
		"127.0.0.1", nodeIP.String(), apiServiceIP.String()}})
	issue(ca, p.apiserverKubelet, pki.Subject{CommonName: "kube-apiserver-kubelet-client", Organizations: []string{"system:masters"}})
	issue(frontProxy, p.frontProxyClient, pki.Subject{CommonName: "front-proxy-client"})
	issue(ca, p.admin, pki.Subject{CommonName: "lab-admin", Organizations: []string{"system:masters"}})
	issue(ca, p.kubelet, pki.Subject{CommonName: "system:node:" + nodeName, Organizations: []string{"system:nodes"}})
	issue(ca, p.kubeletServer, pki.Subject{CommonName: nodeName, Server: true, Names: []string{nodeName, nodeIP.String()}})
	// system:kube-proxy is bound to system:node-proxier by the API server's
	// default RBAC; lab:coredns and lab:traefik by the lab's own roles.
	issue(ca, p.kubeProxy, pki.Subject{CommonName: "system:kube-proxy"})
	issue(ca, p.coredns, pki.Subject{CommonName: "lab:coredns"})
	issue(ca, p.traefik, pki.Subject{CommonName: "lab:traefik"})
	issue(ca, p.drift, pki.Subject{CommonName: DriftUser})
	if err != nil {
		return nil, err
	}
	saKey, err := pki.NewKey()
	if err != nil {
		return nil, err
	}
	saPEM, err := pki.KeyPEM(saKey)
	if err != nil {
		return nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return nil, err
	}
	write(p.serviceAccountKey, saPEM, 0o600)
	write(p.serviceAccountPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
	return p, err
}
