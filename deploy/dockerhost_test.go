package deploy

import (
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
)

// TestDockerHost: the day-2 verbs reach the engine up deploys to: the
// stack's docker.host (ssh:// and tcp:// too, which they once refused:
// "backup and restore reach the engine through a unix socket only"),
// else DOCKER_HOST, else Docker's default socket.
func TestDockerHost(t *testing.T) {
	for _, c := range []struct {
		name, docker, env, want, certs string
	}{
		{"the stack's host", `{"host":"unix:///run/user/1000/docker.sock","namePrefix":"x"}`, "", "unix:///run/user/1000/docker.sock", ""},
		{"DOCKER_HOST", "", "unix:///tmp/d.sock", "unix:///tmp/d.sock", ""},
		{"Docker's default", `{"namePrefix":"x"}`, "", "unix:///var/run/docker.sock", ""},
		{"over ssh", `{"host":"ssh://ops@db1:2222"}`, "", "ssh://ops@db1:2222", ""},
		{"TLS tcp", `{"host":"tcp://db1:2376","certPath":"/etc/docker-client"}`, "", "tcp://db1:2376", "/etc/docker-client"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("DOCKER_HOST", c.env)
			cfg := auto.ConfigMap{}
			if c.docker != "" {
				cfg["fastapi-infra:docker"] = auto.ConfigValue{Value: c.docker}
			}
			host, certs, err := DockerHost(cfg)
			if err != nil || host != c.want || certs != c.certs {
				t.Errorf("host %q certs %q, %v; want %q %q", host, certs, err, c.want, c.certs)
			}
			if _, err := DockerClient(cfg); err != nil && !strings.Contains(err.Error(), "client certificate") {
				t.Errorf("no client for %s: %v", host, err)
			}
		})
	}
	cfg := auto.ConfigMap{"fastapi-infra:docker": {Value: `{"host":"npipe:////./pipe/docker"}`}}
	if _, err := DockerClient(cfg); err == nil || !strings.Contains(err.Error(), "want unix://, tcp:// or ssh://") {
		t.Errorf("an unknown scheme: %v", err)
	}
}

// TestDockerNamePrefix: the driver finds the stack's containers by the
// name prefix the program gives them.
func TestDockerNamePrefix(t *testing.T) {
	for _, tc := range []struct {
		docker, app, want string
	}{
		{"", "", "fastapi-dev"},
		{"", `{"name":"shop"}`, "shop-dev"},
		{`{"namePrefix":"legacy"}`, `{"name":"shop"}`, "legacy"},
	} {
		cfg := auto.ConfigMap{}
		if tc.docker != "" {
			cfg["fastapi-infra:docker"] = auto.ConfigValue{Value: tc.docker}
		}
		if tc.app != "" {
			cfg["fastapi-infra:app"] = auto.ConfigValue{Value: tc.app}
		}
		if got := DockerNamePrefix(cfg, "dev"); got != tc.want {
			t.Errorf("docker %s app %s: %s, want %s", tc.docker, tc.app, got, tc.want)
		}
	}
}
