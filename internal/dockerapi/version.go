package dockerapi

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
	"time"
)

// APIVersion is the engine's Engine API version, such as "1.41" (GET
// /version unversioned, which every engine answers, whatever the oldest
// API version it still takes).
func (e *Client) APIVersion(ctx context.Context) (string, error) {
	var v struct{ APIVersion string }
	if err := e.do(ctx, "GET", "/version", nil, nil, "", &v); err != nil {
		return "", fmt.Errorf("asking the Docker engine its version: %w", err)
	}
	if v.APIVersion == "" {
		return "", fmt.Errorf("the Docker engine's /version has no ApiVersion")
	}
	return v.APIVersion, nil
}

// HostAPIVersion asks the engine at host, written as the docker provider
// and the docker CLI take it (unix:///path, tcp://host:port,
// ssh://[user@]host[:port]), for its Engine API version, within timeout:
// through ForHost, as every day-2 verb reaches it.
func HostAPIVersion(ctx context.Context, host, certPath string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client, err := ForHost(host, certPath)
	if err != nil {
		return "", err
	}
	return client.APIVersion(ctx)
}

// tcpClient reaches a tcp:// engine, with the client certificate of
// certs (or $DOCKER_CERT_PATH) when it is set.
func tcpClient(addr, certs string) (*Client, error) {
	if certs == "" {
		certs = os.Getenv("DOCKER_CERT_PATH")
	}
	if certs == "" {
		dial := func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}
		return &Client{client: &http.Client{}, base: "http://" + addr, dial: dial}, nil
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(certs, "cert.pem"), filepath.Join(certs, "key.pem"))
	if err != nil {
		return nil, fmt.Errorf("the Docker client certificate: %w", err)
	}
	ca, err := os.ReadFile(filepath.Join(certs, "ca.pem"))
	if err != nil {
		return nil, fmt.Errorf("the Docker client certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("the Docker client certificate: no certificate in %s", filepath.Join(certs, "ca.pem"))
	}
	config := &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}
	tr := &http.Transport{TLSClientConfig: config}
	dial := func(ctx context.Context) (net.Conn, error) {
		d := tls.Dialer{Config: config}
		return d.DialContext(ctx, "tcp", addr)
	}
	return &Client{client: &http.Client{Transport: tr}, base: "https://" + addr, dial: dial}, nil
}

// BridgeAddress is this host's IPv4 address on the Docker engine's default
// bridge (docker0): the containers of every bridge network reach the host
// there (traffic to the host itself, so the isolation between bridges
// does not apply), and a listener bound to it is not reachable from
// outside the host. The tests' webhook receiver and object store listen
// on it.
func BridgeAddress() (string, error) {
	iface, err := net.InterfaceByName("docker0")
	if err != nil {
		return "", fmt.Errorf("no docker0 bridge on this host: %w", err)
	}
	addrs, err := iface.Addrs()
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP.String(), nil
		}
	}
	return "", errors.New("docker0 has no IPv4 address")
}
