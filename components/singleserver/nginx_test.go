package singleserver

import (
	"flag"
	"os"
	"testing"

	"github.com/fastapi-infra/fastapi-infra/components/service"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// goldenSpec is a service as the dev stack describes it.
func goldenSpec() service.Spec {
	return service.Spec{Name: "fastapi", Port: 8000, Domain: "api.example.com", TLS: service.TLS{Mode: service.TLSSelfSigned}}
}

func TestNginxConfigGolden(t *testing.T) {
	cases := map[string]NginxConfig{
		"nginx-443.conf":  NginxConfigFor(goldenSpec(), "fastapi-app", 443, "10m"),
		"nginx-8443.conf": limited(NginxConfigFor(goldenSpec(), "fastapi-app", 8443, "1g")),
	}
	for file, cfg := range cases {
		got, err := RenderNginx(cfg)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, file, got)
	}
}

// golden compares generated configuration with testdata/FILE.golden, or
// rewrites it with -update.
func golden(t *testing.T, file, got string) {
	t.Helper()
	path := "testdata/" + file + ".golden"
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s; if the change is meant, run: go test ./components/singleserver -run Golden -update", file, path)
	}
}

func TestNginxConfigNeedsEveryField(t *testing.T) {
	_, err := RenderNginx(NginxConfig{HTTPSPortSuffix: ":8443", BodyLimit: "1m"})
	if err == nil || err.Error() != "rendering nginx.conf: CertFile, KeyFile, MaintenanceDir, ServerName, Upstream not set" {
		t.Fatalf("a config without its fields: %v", err)
	}
	spec := goldenSpec()
	spec.TLS.Mode = service.TLSProvided
	if c := NginxConfigFor(spec, "x", 443, "1m"); c.KeyFile != "/etc/nginx/fastapi-infra/tls.key" {
		t.Errorf("provided TLS reads the key from %s", c.KeyFile)
	}
}

func TestPlanAddresses(t *testing.T) {
	p, err := PlanAddresses("172.30.57.0/24")
	if err != nil || p.ProxyIP != "172.30.57.254" || p.DynamicRange != "172.30.57.0/25" {
		t.Fatalf("plan %+v, %v", p, err)
	}
	p, err = PlanAddresses("10.20.0.0/16")
	if err != nil || p.ProxyIP != "10.20.255.254" || p.DynamicRange != "10.20.0.0/17" {
		t.Fatalf("plan %+v, %v", p, err)
	}
	for _, bad := range []string{"10.0.0.0/8", "172.30.57.1/24", "fd00::/64", "nonsense", "10.0.0.0/30"} {
		if _, err := PlanAddresses(bad); err == nil {
			t.Errorf("PlanAddresses(%q) accepted", bad)
		}
	}
}

func TestDemuxLogs(t *testing.T) {
	framed := "\x01\x00\x00\x00\x00\x00\x00\x03ok\n\x02\x00\x00\x00\x00\x00\x00\x04err\n"
	if got := demuxLogs(framed); got != "ok\nerr\n" {
		t.Errorf("demuxLogs = %q", got)
	}
	if got := demuxLogs("plain text\n"); got != "plain text\n" {
		t.Errorf("unframed text changed: %q", got)
	}
	if got := lastLines("a\nb\nc\n", 2); got != "b\nc" {
		t.Errorf("lastLines = %q", got)
	}
}

// limited is a config with the per-client limits on.
func limited(c NginxConfig) NginxConfig {
	c.RateLimit, c.ConnLimit = 100, 50
	return c
}
