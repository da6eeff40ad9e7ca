package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

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
