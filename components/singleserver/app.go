package singleserver

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// appUser is the non-root user and group of the app image (app/Dockerfile).
const appUser = "10001:10001"

// multiprocDir holds the Prometheus client's per-worker metric files.
const multiprocDir = "/tmp/prometheus-multiproc"

// appSecrets are the values that reach the app only as secret files.
func (b *builder) appSecrets() map[string]pulumi.StringOutput {
	s := b.args.Service
	secrets := maps.Clone(s.SecretEnv)
	if secrets == nil {
		secrets = map[string]pulumi.StringOutput{}
	}
	secrets["DATABASE_URL"] = s.Database.URL(b.databaseHost())
	return secrets
}

// releaseID changes with everything an app container is made of. It is in
// the containers' logical names, so a new release is a set of new resources:
// Pulumi creates them (waiting until healthy) before it deletes the old ones,
// where an in-place change would delete each container first, since
// pulumi-docker replaces containers delete-before-create.
func (b *builder) releaseID() string {
	s := b.args.Service
	parts := []string{b.migrationID(), b.args.SecretsDigest, s.Module,
		strconv.Itoa(s.Port), strconv.Itoa(s.Workers), s.Resources.CPU.String(), s.Resources.Memory.String(),
		strconv.Itoa(s.ShutdownGraceSeconds), s.Health.LivePath, strconv.FormatBool(s.ProxyHeaders),
		string(b.args.Proxy), b.net.ProxyIP, s.Domain}
	parts = append(parts, plainEnv(s.Env)...)
	parts = append(parts, slices.Sorted(maps.Keys(s.SecretEnv))...)
	return shortHash(parts...)
}

// buildApps creates the replicas. Each answers on the private network under
// the shared alias the proxy's upstream resolves, and is created only after
// its release's migration gate passed.
func (b *builder) buildApps() error {
	s := b.args.Service
	release := b.releaseID()
	uploads, fileEnv := secretFiles(b.appSecrets())
	// Several workers per container: the metrics client adds them up from
	// files in this folder, a tmpfs so that a restart starts from zero.
	envs := append(append(plainEnv(s.Env), fileEnv...), "PROMETHEUS_MULTIPROC_DIR="+multiprocDir)
	liveURL := fmt.Sprintf("http://127.0.0.1:%d%s", s.Port, s.Health.LivePath)
	var deps []pulumi.Resource
	if b.migration != nil {
		deps = append(deps, b.migration)
	}
	for i := 1; i <= s.Replicas; i++ {
		role := fmt.Sprintf("app-%d-%s", i, release)
		labels := docker.ContainerLabelArray{
			// The gate's value: an input that exists only once the
			// migration exited 0.
			docker.ContainerLabelArgs{Label: pulumi.String("fastapi-infra.migration"), Value: b.gate},
			docker.ContainerLabelArgs{Label: pulumi.String("fastapi-infra.release"), Value: pulumi.String(release)},
		}
		labels = append(labels, b.traefikLabels()...)
		app, err := docker.NewContainer(b.ctx, b.name+"-"+role, &docker.ContainerArgs{
			Name:             pulumi.String(b.containerName(role)),
			Image:            b.appImage,
			Command:          pulumi.ToStringArray(s.ServerCommand(b.net.ProxyIP)),
			User:             pulumi.String(appUser),
			Envs:             pulumi.ToStringArray(envs),
			Uploads:          uploads,
			Labels:           labels,
			NetworksAdvanced: b.privateNetwork(b.upstreamHost()),
			Healthcheck: healthcheck("python3", "-c",
				"import sys,urllib.request; sys.exit(0 if urllib.request.urlopen('"+liveURL+"', timeout=2).status == 200 else 1)"),
			Tmpfs:        pulumi.StringMap{multiprocDir: pulumi.String("rw,noexec,nosuid,size=16m,mode=1777")},
			Restart:      pulumi.String("unless-stopped"),
			Memory:       pulumi.Int(s.Resources.Memory.Megabytes()),
			MemorySwap:   pulumi.Int(s.Resources.Memory.Megabytes()), // no swap beyond the limit
			Cpus:         pulumi.String(cpus(s.Resources.CPU.Value)),
			LogDriver:    pulumi.String(b.logDriver()),
			LogOpts:      b.logOptions(),
			SecurityOpts: pulumi.StringArray{pulumi.String("no-new-privileges:true")},
			Capabilities: docker.ContainerCapabilitiesArgs{Drops: pulumi.StringArray{pulumi.String("ALL")}},
			// SIGTERM, then this long for in-flight requests (uvicorn
			// finishes them and runs the lifespan shutdown) before SIGKILL.
			StopSignal:          pulumi.String("SIGTERM"),
			StopTimeout:         pulumi.Int(s.ShutdownGraceSeconds),
			DestroyGraceSeconds: pulumi.Int(s.ShutdownGraceSeconds),
			Wait:                pulumi.Bool(true),
			WaitTimeout:         pulumi.Int(120),
		}, b.opts(pulumi.DependsOn(deps))...)
		if err != nil {
			return err
		}
		b.apps = append(b.apps, app)
	}
	return nil
}

// upstreamHost is the alias every replica shares on the private network.
func (b *builder) upstreamHost() string { return b.containerName("app") }
