package operations

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/fastapi-infra/fastapi-infra/components/service"
	"github.com/fastapi-infra/fastapi-infra/components/singleserver"
)

// MaintenanceRole marks the Traefik maintenance container in its
// fastapi-infra.role label.
const MaintenanceRole = "maintenance"

// traefikSettle is how long Traefik takes to act on a container's health
// event: its provider throttle (TraefikCommand's 500 ms) and a margin.
var traefikSettle = 1500 * time.Millisecond

// behindTraefik: the stack's proxy is Traefik, which alone has the Docker
// API filter beside it.
func (r Running) behindTraefik(ctx context.Context) bool {
	_, err := r.Engine.Inspect(ctx, r.Prefix+"-docker-api")
	return err == nil
}

func (r Running) maintenanceContainer() string { return r.Prefix + "-maintenance" }

// maintenanceNginx is the maintenance container's nginx: every request a
// 503 with Retry-After and the page (JSON for clients that accept it), as
// the nginx proxy's own maintenance location answers. Unprivileged: port
// 8080, everything it writes under /tmp.
const maintenanceNginx = `worker_processes 1;
pid /tmp/m/nginx.pid;
error_log stderr warn;
events { worker_connections 512; }
http {
    access_log off;
    server_tokens off;
    client_body_temp_path /tmp/m/body;
    proxy_temp_path /tmp/m/proxy;
    fastcgi_temp_path /tmp/m/fastcgi;
    uwsgi_temp_path /tmp/m/uwsgi;
    scgi_temp_path /tmp/m/scgi;
    types { text/html html; application/json json; }
    map $http_accept $maintenance_page {
        "~*application/json" page.json;
        default page.html;
    }
    server {
        listen 8080;
        error_page 503 @maintenance;
        location @maintenance {
            root /tmp/m;
            add_header Retry-After 30 always;
            add_header Cache-Control no-store always;
            add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" always;
            try_files /$maintenance_page =503;
        }
        location / {
            return 503;
        }
    }
}
`

// maintenanceStart writes the config and pages from the environment (never
// the command line) and the "on" file its health check looks for.
const maintenanceStart = `set -e
mkdir -p /tmp/m
printf '%s' "$MAINTENANCE_NGINX" >/tmp/m/nginx.conf
printf '%s' "$MAINTENANCE_HTML" >/tmp/m/page.html
printf '%s' "$MAINTENANCE_JSON" >/tmp/m/page.json
: >/tmp/m/on
exec nginx -c /tmp/m/nginx.conf -g 'daemon off;'`

// traefikMaintenance runs the page as a container Traefik routes the
// domain to ahead of the replicas: a router of its own, with the
// replicas' rule, entrypoint and certificate resolver, at a priority
// above theirs. Traefik routes only to containers Docker reports healthy,
// and the container's health check is its "on" file: on waits until it is
// healthy and Traefik has had time to route to it; off removes the file,
// waits until Traefik has dropped it (unhealthy, then the provider's
// throttle), and only then removes it, so no request meets a gone page.
func (r Running) traefikMaintenance(ctx context.Context, on bool, message string) error {
	name := r.maintenanceContainer()
	if !on {
		if _, err := r.Engine.Inspect(ctx, name); err != nil {
			return nil // no page up
		}
		if _, code, err := r.Engine.Exec(ctx, name, "rm", "-f", "/tmp/m/on"); err == nil && code == 0 {
			if err := r.waitUnhealthy(ctx, name, 15*time.Second); err == nil {
				time.Sleep(traefikSettle)
			}
		}
		return r.Engine.Remove(ctx, name)
	}
	body, err := r.maintenanceBody(ctx, message)
	if err != nil {
		return err
	}
	_ = r.Engine.Remove(ctx, name) // a page already up, with another message
	id, err := r.Engine.Create(ctx, name, body)
	if err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	if err := r.Engine.Start(ctx, id); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	if err := r.Engine.WaitHealthy(ctx, id, 30*time.Second); err != nil {
		logs, _ := r.Engine.Logs(ctx, id)
		_ = r.Engine.Remove(ctx, id)
		return fmt.Errorf("the maintenance page's container: %w\n%s", err, lastLines(logs, 10))
	}
	time.Sleep(traefikSettle)
	return nil
}

// maintenanceBody is the create body of the maintenance container: the
// stack's nginx image (the Docker API filter's), on the replicas' private
// network with the Traefik labels of a router ahead of theirs, hardened
// as the one-off containers are.
func (r Running) maintenanceBody(ctx context.Context, message string) (map[string]any, error) {
	var filter struct{ Config struct{ Image string } }
	if err := r.Engine.InspectInto(ctx, r.Prefix+"-docker-api", &filter); err != nil {
		return nil, err
	}
	apps, err := r.containers(ctx, "fastapi-infra.release", "app")
	if err != nil {
		return nil, err
	}
	if len(apps) == 0 {
		return nil, fmt.Errorf("stack %s has no app replica to take Traefik's router from; run ./infra up first", r.Prefix)
	}
	var replica struct {
		Config struct{ Labels map[string]string }
	}
	if err := r.Engine.InspectInto(ctx, apps[0], &replica); err != nil {
		return nil, err
	}
	labels, network, err := MaintenanceLabels(replica.Config.Labels)
	if err != nil {
		return nil, err
	}
	page, pageJSON := service.MaintenancePages(message)
	return map[string]any{
		"Image":      filter.Config.Image,
		"User":       "www-data",
		"Entrypoint": []string{"/bin/sh", "-c", maintenanceStart},
		"Cmd":        []string{},
		"Env":        []string{"MAINTENANCE_NGINX=" + maintenanceNginx, "MAINTENANCE_HTML=" + page, "MAINTENANCE_JSON=" + pageJSON},
		"Labels":     labels,
		"Healthcheck": map[string]any{
			"Test":     []string{"CMD", "test", "-f", "/tmp/m/on"},
			"Interval": int64(time.Second), "Timeout": int64(2 * time.Second), "Retries": 1,
		},
		"HostConfig": map[string]any{
			"NetworkMode":    network,
			"ReadonlyRootfs": true,
			"Tmpfs":          map[string]string{"/tmp": "size=1m"},
			"CapDrop":        []string{"ALL"},
			"SecurityOpt":    []string{"no-new-privileges:true"},
			"Memory":         32 << 20,
			"RestartPolicy":  map[string]any{"Name": "unless-stopped"},
		},
		"NetworkingConfig": map[string]any{"EndpointsConfig": map[string]any{network: map[string]any{}}},
	}, nil
}

// MaintenanceLabels are the maintenance container's labels, from a
// replica's (singleserver.TraefikLabels): the service label Traefik is
// constrained to, the network, and a router of the page's own with the
// replicas' rule, entrypoints and certificate resolver at the highest
// priority, sending to port 8080. None of the replicas' middlewares: they
// are defined on the replicas, and a router naming one that is gone (the
// replicas stopped for a restore) is dropped by Traefik.
func MaintenanceLabels(replica map[string]string) (map[string]string, string, error) {
	svc := replica[singleserver.ServiceLabel]
	network := replica["traefik.docker.network"]
	router := "traefik.http.routers." + svc + "."
	rule := replica[router+"rule"]
	if svc == "" || network == "" || rule == "" {
		return nil, "", fmt.Errorf("the replica carries no Traefik router (%s, traefik.docker.network, %srule): is the stack's proxy Traefik, and up to date (./infra up)?", singleserver.ServiceLabel, router)
	}
	own := "traefik.http.routers." + svc + "-maintenance."
	labels := map[string]string{
		"traefik.enable":          "true",
		singleserver.ServiceLabel: svc,
		"traefik.docker.network":  network,
		"fastapi-infra.role":      MaintenanceRole,
		own + "rule":              rule,
		own + "priority":          "1000000",
		own + "service":           svc + "-maintenance",
		"traefik.http.services." + svc + "-maintenance.loadbalancer.server.port": "8080",
	}
	for _, k := range []string{"entrypoints", "tls.certresolver"} {
		if v, ok := replica[router+k]; ok {
			labels[own+k] = v
		}
	}
	if !strings.Contains(rule, "Host(") {
		return nil, "", fmt.Errorf("the replicas' Traefik rule %q names no host", rule)
	}
	return labels, network, nil
}

// waitUnhealthy waits until Docker reports the container unhealthy (its
// health check failed), or it is gone.
func (r Running) waitUnhealthy(ctx context.Context, id string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		st, err := r.Engine.Inspect(ctx, id)
		if err != nil || !st.State.Running || st.State.Health != nil && st.State.Health.Status == "unhealthy" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still healthy after %s", id, within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
