package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/fastapi-infra/fastapi-infra/internal/cluster"
	"github.com/fastapi-infra/fastapi-infra/internal/dockerapi"
	"github.com/fastapi-infra/fastapi-infra/stacks"
)

// DockerSocket is the unix socket of the single server's Docker engine:
// the stack's docker.host (an object field, as config keys are paths),
// else DOCKER_HOST, else Docker's default. The day-2 operations (backup,
// restore) reach the engine only through a socket on this machine.
func DockerSocket(cfg auto.ConfigMap) (string, error) {
	var docker struct{ Host string }
	if raw := cfg[stacks.FullKey("docker")].Value; raw != "" {
		if err := json.Unmarshal([]byte(raw), &docker); err != nil {
			return "", fmt.Errorf("reading %s: %w", stacks.FullKey("docker"), err)
		}
	}
	host := docker.Host
	if host == "" {
		host = os.Getenv("DOCKER_HOST")
	}
	if host == "" {
		return "/var/run/docker.sock", nil
	}
	socket, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		return "", fmt.Errorf("%s is %s; backup and restore reach the engine through a unix socket only: run them on the Docker host, or forward its socket over SSH and point DOCKER_HOST (or docker.host) at it as unix:///path", stacks.FullKey("docker.host"), host)
	}
	return socket, nil
}

// KubernetesTarget is where a Kubernetes stack runs, as its provider
// reaches it: the cluster (kubernetes.kubeconfig, the secret kubeconfig,
// kubernetes.context), kubernetes.namespace and app.name, with the keys'
// defaults. The day-2 operations (backup, restore) use it.
func KubernetesTarget(cfg auto.ConfigMap) (access cluster.Access, namespace, app string, err error) {
	var k struct{ Kubeconfig, Context, Namespace string }
	var a struct{ Name string }
	for key, into := range map[string]any{"kubernetes": &k, "app": &a} {
		if raw := cfg[stacks.FullKey(key)].Value; raw != "" {
			if err := json.Unmarshal([]byte(raw), into); err != nil {
				return access, "", "", fmt.Errorf("reading %s: %w", stacks.FullKey(key), err)
			}
		}
	}
	orDefault := func(v, key string) string {
		if v != "" {
			return v
		}
		d, _ := stacks.LookupKey(key)
		s, _ := d.Default.(string)
		return s
	}
	access = cluster.Access{KubeconfigPath: k.Kubeconfig, KubeconfigContent: cfg[stacks.FullKey("kubeconfig")].Value, Context: k.Context}
	return access, orDefault(k.Namespace, "kubernetes.namespace"), orDefault(a.Name, "app.name"), nil
}

// DockerNamePrefix is what the single server's Docker names start with:
// docker.namePrefix, else <app.name>-<stack> (stacks' rule).
func DockerNamePrefix(cfg auto.ConfigMap, stack string) string {
	var docker struct{ NamePrefix string }
	var app struct{ Name string }
	_ = json.Unmarshal([]byte(cfg[stacks.FullKey("docker")].Value), &docker)
	_ = json.Unmarshal([]byte(cfg[stacks.FullKey("app")].Value), &app)
	if docker.NamePrefix != "" {
		return docker.NamePrefix
	}
	if app.Name == "" {
		k, _ := stacks.LookupKey("app.name")
		app.Name, _ = k.Default.(string)
	}
	return app.Name + "-" + stack
}

// WhyUnwell is what the stack's containers that are not healthy show of
// why (dockerapi.WhyUnwell: their last probes and log lines), after an up
// failed; "" when none is unwell or the engine cannot be asked here (a
// remote host: its probes are in docker inspect there).
func WhyUnwell(ctx context.Context, cfg auto.ConfigMap, stack string) string {
	socket, err := DockerSocket(cfg)
	if err != nil {
		return ""
	}
	why, err := dockerapi.NewClient(socket).WhyUnwell(ctx, DockerNamePrefix(cfg, stack)+"-", 10)
	if err != nil {
		return ""
	}
	return why
}
