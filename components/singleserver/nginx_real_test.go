//go:build e2e

package singleserver

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fastapi-infra/fastapi-infra/components/monitoring"
)

// TestNginxAcceptsTheGeneratedConfig runs the real `nginx -t` on the
// generated config (with a throw-away certificate, and an upstream that
// resolves outside Docker), and `sh -n` on the proxy entrypoint.
func TestNginxAcceptsTheGeneratedConfig(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Fatal("nginx is not installed, so the generated config cannot be checked: apt-get install nginx")
	}
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if out, err := exec.Command("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
		"-subj", "/CN=localhost", "-keyout", key, "-out", cert).CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	for _, port := range []int{443, 8443} {
		cfg := limited(NginxConfigFor(goldenSpec(), "127.0.0.1", port, "10m"))
		cfg.CertFile, cfg.KeyFile = cert, key
		conf, err := RenderNginx(cfg)
		if err != nil {
			t.Fatal(err)
		}
		// The pid file of a check must not touch a running nginx's.
		conf = strings.Replace(conf, "pid /run/nginx.pid;", "pid "+filepath.Join(dir, "nginx.pid")+";", 1)
		path := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(nginx, "-t", "-c", path).CombinedOutput()
		if err != nil {
			t.Fatalf("nginx -t rejects the generated config (https port %d):\n%s", port, out)
		}
		if !strings.Contains(string(out), "syntax is ok") {
			t.Fatalf("nginx -t said:\n%s", out)
		}
	}
	if out, err := exec.Command("sh", "-n", "proxy-entrypoint.sh").CombinedOutput(); err != nil {
		t.Fatalf("proxy-entrypoint.sh: %v\n%s", err, out)
	}
}

// TestPromtoolAcceptsThePrometheusConfig runs the real `promtool check
// config` on the generated prometheus.yml with its rule file.
func TestPromtoolAcceptsThePrometheusConfig(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed, so the generated config cannot be checked: apt-get install prometheus")
	}
	dir := t.TempDir()
	rules, err := monitoring.RuleFile(monitoring.Alerts("fastapi", "fastapi", monitoring.Thresholds{DownMinutes: 3, ErrorRatio: 0.05, P95Seconds: 0.5, RestartsPerHour: 3}))
	if err != nil {
		t.Fatal(err)
	}
	pc := goldenPrometheus() // with external labels and an Alertmanager
	pc.RuleFile = filepath.Join(dir, "rules.yml")
	conf, err := RenderPrometheus(pc)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"rules.yml": rules, "prometheus.yml": conf} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(promtool, "check", "config", filepath.Join(dir, "prometheus.yml")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
}
