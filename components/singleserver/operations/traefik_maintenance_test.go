package operations_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/fastapi-infra/fastapi-infra/components/service"
	"github.com/fastapi-infra/fastapi-infra/components/singleserver"
	"github.com/fastapi-infra/fastapi-infra/components/singleserver/operations"
)

// The page's router behind Traefik is the replicas' (rule, entrypoint,
// certificate), ahead of theirs, on their network, and names none of
// their middlewares: those vanish with the replicas a restore stops, and
// Traefik drops a router whose middleware is missing.
func TestMaintenanceLabelsRouteTheDomainAheadOfTheReplicas(t *testing.T) {
	spec := service.Spec{Name: "shop", Domain: "shop.example.com", Port: 8000}
	replica := singleserver.TraefikLabels(spec, "shop-private", "10m")
	labels, network, err := operations.MaintenanceLabels(replica)
	if err != nil {
		t.Fatal(err)
	}
	if network != "shop-private" {
		t.Errorf("network %q, want the replicas' shop-private", network)
	}
	r := "traefik.http.routers.shop-maintenance."
	for k, want := range map[string]string{
		"traefik.enable":          "true",
		singleserver.ServiceLabel: "shop",
		"traefik.docker.network":  "shop-private",
		r + "rule":                replica["traefik.http.routers.shop.rule"],
		r + "entrypoints":         "websecure",
		r + "tls.certresolver":    "letsencrypt",
		r + "service":             "shop-maintenance",
		"traefik.http.services.shop-maintenance.loadbalancer.server.port": "8080",
	} {
		if labels[k] != want {
			t.Errorf("%s = %q, want %q", k, labels[k], want)
		}
	}
	if p, err := strconv.Atoi(labels[r+"priority"]); err != nil || p <= len(replica["traefik.http.routers.shop.rule"]) {
		t.Errorf("priority %q: want one above the replicas' (Traefik's default is the rule's length)", labels[r+"priority"])
	}
	for k := range labels {
		if strings.Contains(k, "middlewares") {
			t.Errorf("label %s: the page's router must not use the replicas' middlewares", k)
		}
	}
	if !strings.Contains(labels[r+"rule"], "!Path(`/metrics`)") {
		t.Errorf("rule %q: /metrics stays off the public router", labels[r+"rule"])
	}

	// Behind nginx the replicas carry no router: refused, saying why.
	if _, _, err := operations.MaintenanceLabels(map[string]string{"fastapi-infra.release": "r1"}); err == nil || !strings.Contains(err.Error(), "Traefik router") {
		t.Errorf("a replica without Traefik labels: %v", err)
	}
}
