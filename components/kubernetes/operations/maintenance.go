package operations

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// The maintenance page on Kubernetes is three objects the driver makes and
// removes, never the stack's own (an up would see them as drift): a
// Deployment of one pod that answers every request with the page, its
// Service, and an Ingress for the stack's host that the ingress
// controller prefers to the stack's: Traefik by the router's priority,
// ingress-nginx as a canary that takes every request.
const (
	maintenanceComponent = "maintenance"
	maintenanceManager   = "fastapi-infra-maintenance"
	maintenancePort      = 8080
)

// ingressSettle is how long the ingress controller takes to act on a new
// or deleted Ingress: its watch, and Traefik's provider throttle (2 s by
// default).
var ingressSettle = 3 * time.Second

// MaintenanceServer is the page's server, run by the app image's python3
// (every cluster that runs the app has it): every request a 503 with
// Retry-After and the page, JSON for clients that accept it. The pages
// come from the environment.
const MaintenanceServer = `import http.server, os
html = os.environ["PAGE_HTML"].encode()
js = os.environ["PAGE_JSON"].encode()
class Page(http.server.BaseHTTPRequestHandler):
    def answer(self, body=True):
        as_json = "application/json" in self.headers.get("Accept", "")
        page = js if as_json else html
        self.send_response(503)
        self.send_header("Content-Type", "application/json" if as_json else "text/html; charset=utf-8")
        self.send_header("Retry-After", "30")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        if body:
            self.wfile.write(page)
    def do_GET(self):
        self.answer()
    def do_HEAD(self):
        self.answer(False)
    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("", 8080), Page).serve_forever()
`

func (r Running) maintenanceName() string { return r.App + "-maintenance" }

// Maintenance puts the page up (on, with message) or takes it down. On:
// the page's Deployment is applied and awaited ready, then its Ingress,
// then the controller's settle time. Off: the Ingress goes first and the
// controller's settle time passes before the page's pod, so no request
// meets a page that is gone.
func (r Running) Maintenance(ctx context.Context, on bool, message string) error {
	name := r.maintenanceName()
	apps := "/apis/apps/v1/namespaces/" + r.Namespace + "/deployments/"
	ingresses := "/apis/networking.k8s.io/v1/namespaces/" + r.Namespace + "/ingresses/"
	services := "/api/v1/namespaces/" + r.Namespace + "/services/"
	policies := "/apis/networking.k8s.io/v1/namespaces/" + r.Namespace + "/networkpolicies/"
	if !on {
		existed, err := r.remove(ctx, ingresses+name)
		if err != nil {
			return err
		}
		if existed {
			time.Sleep(ingressSettle)
		}
		for _, p := range []string{apps + name, services + name, policies + name} {
			if _, err := r.remove(ctx, p); err != nil {
				return err
			}
		}
		return nil
	}
	var d struct {
		Spec struct {
			Template obj `json:"template"`
		} `json:"spec"`
	}
	if err := r.API.Do(ctx, http.MethodGet, r.deployment(), "", nil, &d); err != nil {
		return fmt.Errorf("finding the Deployment %s in namespace %s (is the stack up?): %w", r.App, r.Namespace, err)
	}
	var ingress obj
	if err := r.API.Do(ctx, http.MethodGet, ingresses+r.App, "", nil, &ingress); err != nil {
		return fmt.Errorf("finding the Ingress %s: %w", r.App, err)
	}
	objects, err := MaintenanceObjects(r.App, r.Namespace, d.Spec.Template, ingress, message)
	if err != nil {
		return err
	}
	for _, o := range objects[:3] { // the page's NetworkPolicy, Deployment and Service
		if err := r.apply(ctx, o); err != nil {
			return err
		}
	}
	err = r.wait(ctx, 2*time.Minute, "the maintenance page's pod ready", func() (bool, error) {
		var s struct {
			Status struct{ ReadyReplicas int } `json:"status"`
		}
		err := r.API.Do(ctx, http.MethodGet, apps+name, "", nil, &s)
		return err == nil && s.Status.ReadyReplicas >= 1, err
	})
	if err != nil {
		return err
	}
	if err := r.apply(ctx, objects[3]); err != nil {
		return err
	}
	time.Sleep(ingressSettle)
	return nil
}

// apply creates or updates an object by server-side apply, as the
// driver's own field manager.
func (r Running) apply(ctx context.Context, o obj) error {
	path, err := objectPath(o)
	if err != nil {
		return err
	}
	return r.API.Do(ctx, http.MethodPatch, path+"?fieldManager="+maintenanceManager+"&force=true", "application/apply-patch+yaml", o, nil)
}

// remove deletes an object and says whether it was there; one that is
// not is no error.
func (r Running) remove(ctx context.Context, path string) (existed bool, err error) {
	err = r.API.Do(ctx, http.MethodDelete, path, "application/json", obj{"propagationPolicy": "Background"}, nil)
	if err != nil && strings.Contains(err.Error(), "404 Not Found") {
		return false, nil
	}
	return err == nil, err
}

func objectPath(o obj) (string, error) {
	meta, _ := o["metadata"].(obj)
	ns, _ := meta["namespace"].(string)
	name, _ := meta["name"].(string)
	switch o["kind"] {
	case "Deployment":
		return "/apis/apps/v1/namespaces/" + ns + "/deployments/" + name, nil
	case "Service":
		return "/api/v1/namespaces/" + ns + "/services/" + name, nil
	case "Ingress":
		return "/apis/networking.k8s.io/v1/namespaces/" + ns + "/ingresses/" + name, nil
	case "NetworkPolicy":
		return "/apis/networking.k8s.io/v1/namespaces/" + ns + "/networkpolicies/" + name, nil
	}
	return "", fmt.Errorf("no path for a %v", o["kind"])
}

// MaintenanceObjects are the page's NetworkPolicy, Deployment, Service and
// Ingress, made from the app's pod template (its image, the pod's and the
// container's securityContext, node selector and tolerations; none of its
// environment, secrets or service account) and the stack's Ingress (its
// class, annotations, TLS and host rules, every path sent to the page).
func MaintenanceObjects(app, namespace string, template, ingress obj, message string) ([]obj, error) {
	spec, _ := template["spec"].(obj)
	containers, _ := spec["containers"].([]any)
	if len(containers) == 0 {
		return nil, fmt.Errorf("the Deployment %s has no container to take the image from", app)
	}
	first, _ := containers[0].(obj)
	image, _ := first["image"].(string)
	if image == "" {
		return nil, fmt.Errorf("the Deployment %s's container has no image", app)
	}
	ingSpec, _ := ingress["spec"].(obj)
	class, _ := ingSpec["ingressClassName"].(string)
	ingMeta, _ := ingress["metadata"].(obj)
	annotations := obj{}
	if a, ok := ingMeta["annotations"].(obj); ok {
		for k, v := range a {
			if !strings.HasPrefix(k, "pulumi.com/") && k != "kubectl.kubernetes.io/last-applied-configuration" {
				annotations[k] = v
			}
		}
	}
	switch class {
	case "traefik":
		annotations["traefik.ingress.kubernetes.io/router.priority"] = "1000000"
	case "nginx":
		annotations["nginx.ingress.kubernetes.io/canary"] = "true"
		annotations["nginx.ingress.kubernetes.io/canary-weight"] = "100"
	default:
		return nil, fmt.Errorf("the Ingress class %q: the maintenance page takes precedence over the stack's Ingress on traefik (router priority) and nginx (a canary) only", class)
	}
	name := app + "-maintenance"
	labels := obj{"app.kubernetes.io/name": app, "app.kubernetes.io/component": maintenanceComponent, "app.kubernetes.io/managed-by": maintenanceManager}
	selector := obj{"app.kubernetes.io/name": app, "app.kubernetes.io/component": maintenanceComponent}
	meta := func() obj { return obj{"name": name, "namespace": namespace, "labels": labels} }

	rules, _ := ingSpec["rules"].([]any)
	var pageRules []any
	for _, r := range rules {
		rule, _ := r.(obj)
		host, _ := rule["host"].(string)
		pageRules = append(pageRules, obj{"host": host, "http": obj{"paths": []any{obj{
			"path": "/", "pathType": "Prefix",
			"backend": obj{"service": obj{"name": name, "port": obj{"number": maintenancePort}}},
		}}}})
	}
	if len(pageRules) == 0 {
		return nil, fmt.Errorf("the Ingress %s has no host rule to take over", app)
	}
	ingressSpec := obj{"ingressClassName": class, "rules": pageRules}
	if tls, ok := ingSpec["tls"]; ok {
		ingressSpec["tls"] = tls
	}

	page, pageJSON := service.MaintenancePages(message)
	container := obj{
		"name":    "page",
		"image":   image,
		"command": []string{"python3", "-I", "-c", MaintenanceServer},
		"env":     []any{obj{"name": "PAGE_HTML", "value": page}, obj{"name": "PAGE_JSON", "value": pageJSON}},
		"ports":   []any{obj{"name": "http", "containerPort": maintenancePort}},
		"readinessProbe": obj{"tcpSocket": obj{"port": maintenancePort}, "periodSeconds": 1,
			"failureThreshold": 3},
		"resources": obj{"requests": obj{"cpu": "10m", "memory": "32Mi"}, "limits": obj{"cpu": "200m", "memory": "64Mi"}},
	}
	if sc, ok := first["securityContext"]; ok {
		container["securityContext"] = sc
	}
	podSpec := obj{"containers": []any{container}, "automountServiceAccountToken": false, "enableServiceLinks": false}
	for _, k := range []string{"securityContext", "nodeSelector", "tolerations", "imagePullSecrets"} {
		if v, ok := spec[k]; ok {
			podSpec[k] = v
		}
	}
	return []obj{
		// The page needs nothing: no egress at all.
		{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta(),
			"spec": obj{"podSelector": obj{"matchLabels": selector}, "policyTypes": []string{"Egress"}}},
		{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(),
			"spec": obj{"replicas": 1, "selector": obj{"matchLabels": selector},
				"template": obj{"metadata": obj{"labels": labels}, "spec": podSpec}}},
		{"apiVersion": "v1", "kind": "Service", "metadata": meta(),
			"spec": obj{"selector": selector, "ports": []any{obj{"name": "http", "port": maintenancePort, "targetPort": maintenancePort}}}},
		{"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
			"metadata": obj{"name": name, "namespace": namespace, "labels": labels, "annotations": annotations},
			"spec":     ingressSpec},
	}, nil
}
