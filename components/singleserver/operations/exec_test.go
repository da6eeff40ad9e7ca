package operations

import (
	"encoding/json"
	"testing"
)

// TestOneOffIsAReplicaWithoutItsRoutes: the one-off container keeps what
// makes it the release (image, user, env, secret volume, hardening, limits)
// and drops what would make it a replica: Traefik's labels and the
// release label, the network alias nginx sends requests to, the health
// check, the restart policy.
func TestOneOffIsAReplicaWithoutItsRoutes(t *testing.T) {
	var replica replicaDocument
	if err := json.Unmarshal([]byte(`{
		"Name": "/fastapi-app-1-ef63fd3212",
		"Config": {"Image": "sha256:abc", "User": "10001", "Env": ["DATABASE_URL_FILE=/run/secrets/DATABASE_URL", "LOG_LEVEL=info"],
			"Cmd": ["python3", "/srv/supervisor.py"], "Entrypoint": null, "Hostname": "ef63fd3212ab",
			"Labels": {"fastapi-infra.release": "ef63fd3212", "traefik.enable": "true"},
			"Healthcheck": {"Test": ["CMD", "python3", "-c", "probe"]}, "ExposedPorts": {"8000/tcp": {}}},
		"HostConfig": {"Binds": ["fastapi-app-secrets:/run/secrets:ro"], "ReadonlyRootfs": true, "CapDrop": ["ALL"],
			"Memory": 536870912, "RestartPolicy": {"Name": "unless-stopped"}, "NetworkMode": "fastapi-private"},
		"NetworkSettings": {"Networks": {"fastapi-private": {"Aliases": ["fastapi-app", "ef63fd3212ab"]}}}
	}`), &replica); err != nil {
		t.Fatal(err)
	}
	body, err := oneOff(replica, []string{"python3", "-m", "app.manage"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(body)
	var got struct {
		Image, User     string
		Env             []string
		Entrypoint, Cmd []string
		Labels          map[string]string
		Healthcheck     any
		Hostname        any
		HostConfig      struct {
			Binds          []string
			ReadonlyRootfs bool
			CapDrop        []string
			Memory         int64
			RestartPolicy  struct{ Name string }
			NetworkMode    string
		}
		NetworkingConfig struct {
			EndpointsConfig map[string]struct{ Aliases []string }
		}
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.Image != "sha256:abc" || got.User != "10001" || len(got.Env) != 2 || !got.HostConfig.ReadonlyRootfs ||
		got.HostConfig.CapDrop[0] != "ALL" || got.HostConfig.Memory != 536870912 || got.HostConfig.Binds[0] != "fastapi-app-secrets:/run/secrets:ro" {
		t.Errorf("the release's image, user, env, secrets, hardening or limits were not kept: %s", raw)
	}
	if len(got.Entrypoint) != 1 || got.Entrypoint[0] != "python3" || len(got.Cmd) != 2 || got.Cmd[1] != "app.manage" {
		t.Errorf("entrypoint %v cmd %v", got.Entrypoint, got.Cmd)
	}
	if len(got.Labels) != 1 || got.Labels["fastapi-infra.role"] != ExecRole {
		t.Errorf("labels %v: Traefik would route to it, a restore would stop it as a replica", got.Labels)
	}
	if got.Healthcheck != nil || got.Hostname != nil || got.HostConfig.RestartPolicy.Name != "no" {
		t.Errorf("health check %v, hostname %v, restart %q", got.Healthcheck, got.Hostname, got.HostConfig.RestartPolicy.Name)
	}
	ep, ok := got.NetworkingConfig.EndpointsConfig["fastapi-private"]
	if !ok || len(ep.Aliases) != 0 || got.HostConfig.NetworkMode != "fastapi-private" {
		t.Errorf("network %+v: want the private network without the replicas' alias", got.NetworkingConfig)
	}
	if replica.Config["Labels"] == nil || replica.HostConfig["RestartPolicy"].(map[string]any)["Name"] != "unless-stopped" {
		t.Error("the replica's document was changed")
	}
}
