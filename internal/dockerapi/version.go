package dockerapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// APIVersion is the engine's Engine API version, such as "1.41".
func (e *Client) APIVersion(ctx context.Context) (string, error) {
	return apiVersion(ctx, e.client, "http://docker")
}

// HostAPIVersion asks the engine at host, written as the docker provider
// and the docker CLI take it (unix:///path, tcp://host:port, ssh://[user@]host[:port]),
// for its Engine API version, within timeout. A tcp host uses TLS with
// the client certificate folder certPath (ca.pem, cert.pem, key.pem),
// else $DOCKER_CERT_PATH's, as the provider does; an ssh host runs the
// docker CLI there.
func HostAPIVersion(ctx context.Context, host, certPath string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u, err := url.Parse(host)
	if err != nil {
		return "", fmt.Errorf("reading docker host %q: %w", host, err)
	}
	switch u.Scheme {
	case "unix":
		return NewClient(u.Path).APIVersion(ctx)
	case "tcp":
		client, base, err := tcpClient(u.Host, certPath)
		if err != nil {
			return "", err
		}
		return apiVersion(ctx, client, base)
	case "ssh":
		args := []string{"-o", "BatchMode=yes", "-o", "ConnectTimeout=10"}
		if u.Port() != "" {
			args = append(args, "-p", u.Port())
		}
		if u.User != nil {
			args = append(args, "-l", u.User.Username())
		}
		args = append(args, "--", u.Hostname(), "docker", "version", "--format", "{{.Server.APIVersion}}")
		out, err := exec.CommandContext(ctx, "ssh", args...).Output()
		if err != nil {
			return "", fmt.Errorf("ssh %s docker version: %w", u.Hostname(), err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	return "", fmt.Errorf("docker host %q: want unix://, tcp:// or ssh://", host)
}

// tcpClient reaches a tcp:// engine, with the client certificate of
// certs (or $DOCKER_CERT_PATH) when it is set.
func tcpClient(addr, certs string) (*http.Client, string, error) {
	if certs == "" {
		certs = os.Getenv("DOCKER_CERT_PATH")
	}
	if certs == "" {
		return &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{}).DialContext}}, "http://" + addr, nil
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(certs, "cert.pem"), filepath.Join(certs, "key.pem"))
	if err != nil {
		return nil, "", fmt.Errorf("DOCKER_CERT_PATH: %w", err)
	}
	ca, err := os.ReadFile(filepath.Join(certs, "ca.pem"))
	if err != nil {
		return nil, "", fmt.Errorf("DOCKER_CERT_PATH: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, "", fmt.Errorf("DOCKER_CERT_PATH: no certificate in %s", filepath.Join(certs, "ca.pem"))
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}}
	return &http.Client{Transport: tr}, "https://" + addr, nil
}

// apiVersion reads GET /version, which every API version answers.
func apiVersion(ctx context.Context, client *http.Client, base string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/version", nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("asking the Docker engine its version: %w", err)
	}
	defer resp.Body.Close()
	var v struct{ APIVersion string }
	if err := decode(resp, &v); err != nil {
		return "", err
	}
	if v.APIVersion == "" {
		return "", fmt.Errorf("the Docker engine's /version has no ApiVersion")
	}
	return v.APIVersion, nil
}

func decode(resp *http.Response, into any) error {
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("docker GET /version: %s: %s", resp.Status, strings.TrimSpace(string(raw)))
	}
	return json.Unmarshal(raw, into)
}
