package lab

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/fastapi-infra/fastapi-infra/internal/pki"
)

// Domain is the host name the lab's real-node stacks serve; clients reach
// the ingress controller on 127.0.0.1 with it as SNI and Host.
const Domain = "fastapi.lab.test"

// RealNodeStack is the stack config (path keys, as `pulumi config set
// --path` takes them) of a development cluster stack on the real node:
// the in-cluster database, the lab's ingress controller, the local images,
// TLS from tlsCert/tlsKey (set those as secrets).
func (l *Lab) RealNodeStack(namespace string, images LocalImages) map[string]string {
	return map[string]string{
		"architecture": "kubernetes",
		"environment":  "development",
		"domain":       Domain,
		"app.image":    images.App,
		"app.replicas": "2",
		// The example app's /_meta routes: the tests' slow requests.
		"app.testRoutes": "true",
		"db.image":       images.Postgres,
		// Used once a test turns monitoring.enabled on.
		"monitoring.postgresExporterImage": images.PostgresExporter,
		"tls.mode":                         "provided",
		"kubernetes.kubeconfig":            l.Kubeconfig,
		"kubernetes.namespace":             namespace,
		"kubernetes.ingressClass":          IngressClass,
		"kubernetes.ingressNamespace":      IngressNamespace,
		"kubernetes.nodeSelector.type":     "real",
		// Traefik runs on the host and reaches the pods from the bridge.
		"kubernetes.trustedProxies[0]": cniGateway,
		"kubernetes.pdb":               "true",
	}
}

// KwokStack points a Kubernetes stack at kwok's fake nodes: its pods are
// never run, so any image reference and any database host will do.
func (l *Lab) KwokStack(namespace string) map[string]string {
	return map[string]string{
		"kubernetes.kubeconfig":        l.Kubeconfig,
		"kubernetes.namespace":         namespace,
		"kubernetes.nodeSelector.type": "kwok",
	}
}

// LocalImages are the images/build.sh images the real node runs.
type LocalImages struct{ App, Postgres, PostgresExporter string }

// BuildImages makes the local images (images/build.sh dev, built once per
// content) and loads the app, PostgreSQL and postgres_exporter images into
// the real node.
func (l *Lab) BuildImages(ctx context.Context) (LocalImages, error) {
	all, err := Images(ctx, l.Repo, "dev")
	if err != nil {
		return LocalImages{}, err
	}
	images := LocalImages{App: all["APP"], Postgres: all["POSTGRES"], PostgresExporter: all["POSTGRES_EXPORTER"]}
	if images.App == "" || images.Postgres == "" || images.PostgresExporter == "" {
		return images, fmt.Errorf("images/build.sh dev named no app, postgres or postgres-exporter image: %v", all)
	}
	return images, l.LoadImages(ctx, images.App, images.Postgres, images.PostgresExporter)
}

// IngressClient reaches the ingress controller's HTTPS listener on
// 127.0.0.1 for Domain, trusting only ca: a certificate that is not the
// stack's fails every request.
func (l *Lab) IngressClient(ca *pki.CA) *http.Client {
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: Domain, MinVersion: tls.VersionTLS12},
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, "tcp", l.IngressHTTPS)
			},
			MaxIdleConnsPerHost: 64,
		},
	}
}
