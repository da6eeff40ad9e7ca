package operations

import (
	"encoding/json"
	"strings"
	"testing"
)

func maintenanceInputs() (template, ingress obj) {
	template = obj{"spec": obj{
		"securityContext":    obj{"runAsNonRoot": true, "seccompProfile": obj{"type": "RuntimeDefault"}},
		"nodeSelector":       obj{"type": "kwok"},
		"serviceAccountName": "svc",
		"containers": []any{obj{"name": "app", "image": "registry.example.com/app@sha256:abc",
			"env":             []any{obj{"name": "DATABASE_URL_FILE", "value": "/run/secrets/db/url"}},
			"securityContext": obj{"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": obj{"drop": []any{"ALL"}}}}},
	}}
	ingress = obj{
		"metadata": obj{"name": "svc", "annotations": obj{
			"traefik.ingress.kubernetes.io/router.entrypoints": "websecure",
			"traefik.ingress.kubernetes.io/router.tls":         "true",
			"pulumi.com/autonamed":                             "false"}},
		"spec": obj{"ingressClassName": "traefik",
			"tls":   []any{obj{"hosts": []any{"api.example.com"}, "secretName": "svc-tls"}},
			"rules": []any{obj{"host": "api.example.com", "http": obj{"paths": []any{obj{"path": "/"}}}}}},
	}
	return template, ingress
}

// The page on Kubernetes: the app's image and hardening but none of its
// environment, secrets or token; an Ingress for the same host and TLS
// secret that the controller prefers; the pods' role is not the API's,
// so the app's Service, PDB and HPA never count them.
func TestMaintenanceObjectsTakeOverTheHostWithoutTheAppsSecrets(t *testing.T) {
	template, ingress := maintenanceInputs()
	objects, err := MaintenanceObjects("svc", "ns", template, ingress, "Back at <10:00>")
	if err != nil {
		t.Fatal(err)
	}
	kinds := []string{}
	for _, o := range objects {
		kinds = append(kinds, o["kind"].(string))
	}
	if strings.Join(kinds, ",") != "NetworkPolicy,Deployment,Service,Ingress" {
		t.Fatalf("objects %v", kinds)
	}
	raw, _ := json.Marshal(objects)
	text := string(raw)
	for _, leak := range []string{"DATABASE_URL_FILE", "serviceAccountName", "pulumi.com/autonamed"} {
		if strings.Contains(text, leak) {
			t.Errorf("the page's objects carry %s", leak)
		}
	}
	for _, want := range []string{`"image":"registry.example.com/app@sha256:abc"`, `"readOnlyRootFilesystem":true`, `"runAsNonRoot":true`,
		`"nodeSelector":{"type":"kwok"}`, `"automountServiceAccountToken":false`, `"app.kubernetes.io/component":"maintenance"`,
		`"traefik.ingress.kubernetes.io/router.priority":"1000000"`, `"traefik.ingress.kubernetes.io/router.tls":"true"`,
		`"secretName":"svc-tls"`, `"host":"api.example.com"`, `Back at \u0026lt;10:00\u0026gt;`} {
		if !strings.Contains(text, want) {
			t.Errorf("the page's objects lack %s:\n%s", want, text)
		}
	}

	// ingress-nginx: a canary that takes every request.
	ingress["spec"].(obj)["ingressClassName"] = "nginx"
	objects, err = MaintenanceObjects("svc", "ns", template, ingress, "")
	if err != nil {
		t.Fatal(err)
	}
	a := objects[3]["metadata"].(obj)["annotations"].(obj)
	if a["nginx.ingress.kubernetes.io/canary"] != "true" || a["nginx.ingress.kubernetes.io/canary-weight"] != "100" {
		t.Errorf("nginx annotations %v, want a canary of weight 100", a)
	}

	// Another controller: refused, naming the two it knows.
	ingress["spec"].(obj)["ingressClassName"] = "haproxy"
	if _, err := MaintenanceObjects("svc", "ns", template, ingress, ""); err == nil || !strings.Contains(err.Error(), "traefik") || !strings.Contains(err.Error(), "nginx") {
		t.Errorf("an haproxy Ingress: %v", err)
	}
}
