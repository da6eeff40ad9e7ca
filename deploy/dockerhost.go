package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/fastapi-infra/fastapi-infra/internal/cluster"
	"github.com/fastapi-infra/fastapi-infra/internal/dockerapi"
	"github.com/fastapi-infra/fastapi-infra/stacks"
)

// DockerHost is the single server's Docker engine as the provider reaches
// it: the stack's docker.host (an object field, as config keys are
// paths), else DOCKER_HOST, else Docker's default socket; and
// docker.certPath, a tcp:// host's client certificate folder.
func DockerHost(cfg auto.ConfigMap) (host, certPath string, err error) {
	var docker struct{ Host, CertPath string }
	if raw := cfg[stacks.FullKey("docker")].Value; raw != "" {
		if err := json.Unmarshal([]byte(raw), &docker); err != nil {
			return "", "", fmt.Errorf("reading %s: %w", stacks.FullKey("docker"), err)
		}
	}
	host = docker.Host
	if host == "" {
		host = os.Getenv("DOCKER_HOST")
	}
	if host == "" {
		host = "unix:///var/run/docker.sock"
	}
	return host, docker.CertPath, nil
}

// DockerClient reaches the single server's engine for the day-2 verbs
// (logs, backup, restore, maintenance, exec) the way up does: a unix
// socket here, TLS tcp://, or ssh:// (dockerapi.ForHost).
func DockerClient(cfg auto.ConfigMap) (*dockerapi.Client, error) {
	host, certPath, err := DockerHost(cfg)
	if err != nil {
		return nil, err
	}
	client, err := dockerapi.ForHost(host, certPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", stacks.FullKey("docker.host"), err)
	}
	return client, nil
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
// failed; "" when none is unwell or the engine does not answer.
func WhyUnwell(ctx context.Context, cfg auto.ConfigMap, stack string) string {
	engine, err := DockerClient(cfg)
	if err != nil {
		return ""
	}
	why, err := engine.WhyUnwell(ctx, DockerNamePrefix(cfg, stack)+"-", 10)
	if err != nil {
		return ""
	}
	return why
}
