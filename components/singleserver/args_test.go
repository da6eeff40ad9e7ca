package singleserver_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/monitoring"
	"github.com/fastapi-infra/fastapi-infra/components/service"
	"github.com/fastapi-infra/fastapi-infra/components/singleserver"
	"github.com/fastapi-infra/fastapi-infra/internal/mocktest"
)

// deployArgs registers the component from its Args alone under the mocks.
func deployArgs(t *testing.T, args singleserver.Args) *mocktest.Recorder {
	t.Helper()
	rec := &mocktest.Recorder{Outputs: mocktest.DockerOutputs}
	if err := mocktest.Run(t, "fixture", mocktest.Config{Values: map[string]string{}}, func(ctx *pulumi.Context) error {
		_, err := singleserver.New(ctx, args.Service.Name, &args)
		return err
	}, rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestComponentDefaults: what the component does when Args leave a field
// empty, without the stack config's defaults in between: nginx publishing
// 80 and 443 with a 10m body limit, json-file logs rotated at 10m x 3,
// names from the service's name, a 15 s scrape interval.
func TestComponentDefaults(t *testing.T) {
	rec := deployArgs(t, singleserver.Args{Service: mocktest.ServiceSpec(), Subnet: "172.30.9.0/24",
		Monitoring: &singleserver.Monitoring{Image: "prom/prometheus:v2.53.0", Retention: "1d", LocalPort: 9090,
			Rules: monitoring.Alerts("svc", "svc", monitoring.Thresholds{DownMinutes: 3, ErrorRatio: 0.05, P95Seconds: 0.5, RestartsPerHour: 3})}})
	rec.Named(t, "svc-proxy-image").Equal(t, "name", singleserver.DefaultNginxImage)
	proxy := rec.Named(t, "svc-proxy")
	proxy.Equal(t, "ports[0].external", singleserver.DefaultHTTPPort)
	proxy.Equal(t, "ports[1].external", singleserver.DefaultHTTPSPort)
	if conf := fmt.Sprint(proxy.Get(t, "uploads")); !strings.Contains(conf, "client_max_body_size "+service.DefaultBodyLimit+";") {
		t.Errorf("nginx.conf without the default body limit: %s", conf)
	}
	n := 0
	for _, c := range rec.ByType(containerType) {
		n++
		if name := c.Str(t, "name"); !strings.HasPrefix(name, "svc-") {
			t.Errorf("container %s is not named after the service", name)
		}
		c.Equal(t, "logDriver", singleserver.DefaultLogDriver)
		c.Equal(t, "logOpts", map[string]any{"max-size": "10m", "max-file": "3"})
		if c.Has(`labels[2]`) && strings.Contains(fmt.Sprint(c.Get(t, "labels")), "traefik") {
			t.Errorf("%s carries Traefik labels behind the default nginx", c.Name)
		}
	}
	if n < 8 {
		t.Errorf("only %d containers", n)
	}
	prom := rec.Named(t, "svc-prometheus")
	if conf := prom.Str(t, "uploads[0].content"); !strings.Contains(conf, "scrape_interval: "+singleserver.DefaultScrapeInterval) {
		t.Errorf("prometheus.yml without the default interval:\n%s", conf)
	}
}
