package deploy

import (
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
)

func TestDockerSocket(t *testing.T) {
	t.Setenv("DOCKER_HOST", "")
	for _, c := range []struct {
		name, docker, env, want, err string
	}{
		{"the stack's host", `{"host":"unix:///run/user/1000/docker.sock","namePrefix":"x"}`, "", "/run/user/1000/docker.sock", ""},
		{"DOCKER_HOST", "", "unix:///tmp/d.sock", "/tmp/d.sock", ""},
		{"Docker's default", `{"namePrefix":"x"}`, "", "/var/run/docker.sock", ""},
		{"a remote engine", `{"host":"ssh://ops@db1"}`, "", "", "fastapi-infra:docker.host is ssh://ops@db1; backup and restore reach the engine through a unix socket only"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("DOCKER_HOST", c.env)
			cfg := auto.ConfigMap{}
			if c.docker != "" {
				cfg["fastapi-infra:docker"] = auto.ConfigValue{Value: c.docker}
			}
			got, err := DockerSocket(cfg)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Errorf("socket %q, %v; want %q", got, err, c.want)
			}
		})
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
