package singleserver

import (
	_ "embed"
	"fmt"
	"maps"
	"slices"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// traefikLabels route the replicas through Traefik's Docker provider; it
// sends traffic only to containers Docker reports healthy (ready).
func (b *builder) traefikLabels() docker.ContainerLabelArray {
	labels := b.traefikLabelMap()
	var out docker.ContainerLabelArray
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		out = append(out, docker.ContainerLabelArgs{Label: pulumi.String(k), Value: pulumi.String(labels[k])})
	}
	return out
}

// traefikLabelMap is TraefikLabels for this stack, none behind nginx.
func (b *builder) traefikLabelMap() map[string]string {
	if b.args.Proxy != Traefik {
		return nil
	}
	return TraefikLabels(b.args.Service, b.dockerName("private"), b.args.BodyLimit)
}

// TraefikLabels are the app replicas' labels for Traefik's Docker provider:
// a router for the domain on the TLS entrypoint with the ACME resolver and
// a retry. network is the private network Traefik reaches the replicas on.
//
// Readiness is Docker's: the provider routes only to containers whose
// healthcheck (the ready path, three failures in a row) says healthy. Not
// Traefik's own active check as well: it has no failure threshold, so one
// answer slower than its timeout took a replica out, and under load, when
// every replica answers slowly, all of them (CI: 138 of 1,046 requests
// "503 no available server" in a release; a 12 s database stall: 88 of
// 755 requests, all of them to the live endpoint, which needs no database).
//
// The retry covers a replica's stop: between uvicorn's exit and Traefik
// dropping the container on Docker's die event, Traefik still sends it
// requests, and a request that could not reach it goes to another
// replica. Traefik retries only when a replica could not be reached, never
// after one answered.
//
// No passive health check: Traefik 3.6's counts every answer of 500 or
// more as a failure, so three of the app's own 5xx in 5 s (a failing
// endpoint, a readiness check answering 503 under load) took a healthy
// replica out, and then every replica: "503 no available server" for
// every request, 437 of 1,613 in one release under load on the real
// engine (TestTraefikWithACMEOnRealDocker's 500s subtest).
//
// The replicas also carry the service label Traefik's provider is
// constrained to, the body limit nginx applies (proxy.bodyLimit, as a
// buffering limit) and the HSTS header nginx sends.
func TraefikLabels(s service.Spec, network, bodyLimit string) map[string]string {
	r := "traefik.http.routers." + s.Name
	svc := "traefik.http.services." + s.Name + ".loadbalancer"
	mw := "traefik.http.middlewares." + s.Name
	retry, limit, hsts := s.Name+"-retry", s.Name+"-body", s.Name+"-hsts"
	return map[string]string{
		"traefik.enable":         "true",
		ServiceLabel:             s.Name,
		"traefik.docker.network": network,
		// Metrics are for Prometheus on the private network (as nginx's
		// location = /metrics says): no router matches them, a 404.
		r + ".rule":                                                    fmt.Sprintf("Host(`%s`) && !Path(`/metrics`)", s.Domain),
		r + ".entrypoints":                                             "websecure",
		r + ".tls.certresolver":                                        "letsencrypt",
		r + ".middlewares":                                             retry + "," + limit + "," + hsts,
		mw + "-body.buffering.maxrequestbodybytes":                     fmt.Sprint(nginxSizeBytes(bodyLimit)),
		mw + "-hsts.headers.stsseconds":                                "63072000",
		mw + "-hsts.headers.stsincludesubdomains":                      "true",
		mw + "-hsts.headers.contenttypenosniff":                        "true",
		svc + ".server.port":                                           fmt.Sprint(s.Port),
		"traefik.http.middlewares." + retry + ".retry.attempts":        "6",
		"traefik.http.middlewares." + retry + ".retry.initialinterval": "100ms",
	}
}

// ServiceLabel names the service on its replicas; Traefik's Docker provider
// considers only containers that carry it with this service's name.
const ServiceLabel = "fastapi-infra.service"

// Where the Traefik container keeps ACME state (a retained volume) and the
// private ACME server's CA (uploaded).
const (
	acmeDir    = "/letsencrypt"
	acmeCAFile = "/etc/traefik/acme-ca.pem"
)

// TraefikCommand is the Traefik container's command: the Docker provider
// (only containers labelled for this service: another stack's containers
// on the same host are not routed, whatever their labels), HTTP -> HTTPS,
// an ACME resolver on the HTTP-01 challenge with its state on the volume,
// and the ping endpoint its healthcheck uses.
func TraefikCommand(service string, t service.TLS) []string {
	cmd := []string{
		"--providers.docker=true",
		"--providers.docker.endpoint=unix://" + DockerAPISocket,
		"--providers.docker.exposedbydefault=false",
		fmt.Sprintf("--providers.docker.constraints=Label(`%s`,`%s`)", ServiceLabel, service),
		"--entrypoints.web.address=:80",
		"--entrypoints.web.http.redirections.entrypoint.to=websecure",
		"--entrypoints.web.http.redirections.entrypoint.scheme=https",
		"--entrypoints.websecure.address=:443",
		"--certificatesresolvers.letsencrypt.acme.httpchallenge.entrypoint=web",
		"--certificatesresolvers.letsencrypt.acme.email=" + t.ACMEEmail,
		"--certificatesresolvers.letsencrypt.acme.storage=" + acmeDir + "/acme.json",
		"--ping=true",
		// Warnings too (Traefik's default is errors only), in `docker logs`.
		// Added for its active health check's "Health check failed", which
		// went with that check; what it prints now is configuration and
		// provider warnings (one at start, about encoded characters).
		"--log.level=WARN",
		// A replica that is gone leaves an address nobody answers: a
		// connect waits out Go's 30 s dial timeout, through every retry,
		// until the client gives up (measured: 33-54 of ~660 requests hung
		// 10 s in a release). On the private bridge a connect takes well
		// under a millisecond, so half a second means gone, and the retry
		// moves on. And the new set of replicas
		// takes effect 0.5 s after Docker's events, not Traefik's default 2 s.
		"--serverstransport.forwardingtimeouts.dialtimeout=500ms",
		"--providers.providersthrottleduration=500ms",
	}
	if t.ACMEServer != "" {
		cmd = append(cmd, "--certificatesresolvers.letsencrypt.acme.caserver="+t.ACMEServer)
	}
	if t.ACMECA != "" {
		cmd = append(cmd, "--certificatesresolvers.letsencrypt.acme.cacertificates="+acmeCAFile,
			"--certificatesresolvers.letsencrypt.acme.casystemcertpool=true")
	}
	return cmd
}

// buildTraefik is the seed's Traefik with ACME: it watches the Docker API
// through the read-only filter (buildDockerAPI) and keeps the ACME account
// and certificates on a volume that survives replacement, so they are not
// re-requested.
func (b *builder) buildTraefik() error {
	s := b.args.Service
	dockerAPI, filter, err := b.buildDockerAPI()
	if err != nil {
		return err
	}
	image, err := b.image("proxy", b.args.TraefikImage)
	if err != nil {
		return err
	}
	acme, err := b.volume("acme", pulumi.RetainOnDelete(true))
	if err != nil {
		return err
	}
	var uploads docker.ContainerUploadArray
	if s.TLS.ACMECA != "" {
		uploads = docker.ContainerUploadArray{docker.ContainerUploadArgs{File: pulumi.String(acmeCAFile), Content: pulumi.String(s.TLS.ACMECA)}}
	}
	return b.proxyContainer(&docker.ContainerArgs{
		Name:    pulumi.String(b.dockerName("proxy")),
		Image:   image,
		Command: pulumi.ToStringArray(TraefikCommand(s.Name, s.TLS)),
		// Binds 80 and 443 as root, nothing else.
		Capabilities: docker.ContainerCapabilitiesArgs{Drops: pulumi.StringArray{pulumi.String("ALL")}, Adds: capabilities("NET_BIND_SERVICE")},
		Uploads:      uploads,
		Volumes: docker.ContainerVolumeArray{
			docker.ContainerVolumeArgs{VolumeName: dockerAPI.Name, ContainerPath: pulumi.String(dockerAPIDir)},
			docker.ContainerVolumeArgs{VolumeName: acme.Name, ContainerPath: pulumi.String(acmeDir)},
		},
		Healthcheck: b.healthcheck("traefik", "healthcheck", "--ping"),
	}, filter)
}

//go:embed docker-api.conf
var dockerAPIConf string

// Where Traefik finds the Docker API: the filter's socket, in a volume
// only the two of them mount.
const (
	dockerAPIDir    = "/run/docker-api"
	DockerAPISocket = dockerAPIDir + "/docker.sock"
)

// buildDockerAPI is what stands between Traefik and the engine: nginx (the
// stack's nginx image) passing on the few reads Traefik's Docker provider
// makes and refusing everything else (docker-api.conf). Traefik faces the
// internet; the engine's socket is root on the host, and mounting it
// read-only limits nothing (the API is one socket for reads and writes).
//
// Not a file provider fed by the program instead, though the program knows
// every replica: Traefik would then route by its own active health check,
// which has no failure threshold (one slow answer took a replica out, see
// TraefikLabels), and a release would have to rewrite Traefik's file
// before each replica stops, which pulumi-docker cannot order. Docker's
// health and events stay the source of truth; the filter only narrows who
// may ask.
//
// The filter has no network at all: it answers on a unix socket in a
// volume that Traefik mounts, so nothing else on the host (an app replica
// on the private network among them) can reach it. Its nginx runs its
// worker as root to open the engine's socket (root:docker, 0660) and keeps
// one capability, SETGID, for the initgroups of its worker's start
// (without it: "initgroups(root, 0) failed (1: Operation not
// permitted)"). Its root file system stays writable, as the nginx proxy's:
// Docker refuses the upload of its config into a read-only one. No
// healthcheck: a probe is an exec, 250-300 ms of
// CPU every interval (see healthcheck), for a process whose failure
// Docker's restart policy already covers; Traefik keeps its routes while
// the filter restarts and reconnects.
func (b *builder) buildDockerAPI() (*docker.Volume, *docker.Container, error) {
	image, err := b.image("docker-api", b.args.ProxyImage)
	if err != nil {
		return nil, nil, err
	}
	socket, err := b.volume("docker-api")
	if err != nil {
		return nil, nil, err
	}
	args := &docker.ContainerArgs{
		Name:  pulumi.String(b.dockerName("docker-api")),
		Image: image,
		// A socket left by a killed nginx would make its bind fail.
		Entrypoints: pulumi.ToStringArray([]string{"/bin/sh", "-c",
			"rm -f " + DockerAPISocket + " && exec nginx -c " + proxyDir + "docker-api.conf -g 'daemon off;'"}),
		Uploads: docker.ContainerUploadArray{
			docker.ContainerUploadArgs{File: pulumi.String(proxyDir + "docker-api.conf"), Content: pulumi.String(dockerAPIConf)},
		},
		NetworkMode: pulumi.String("none"),
		Volumes: docker.ContainerVolumeArray{
			docker.ContainerVolumeArgs{HostPath: pulumi.String("/var/run/docker.sock"), ContainerPath: pulumi.String("/var/run/docker.sock")},
			docker.ContainerVolumeArgs{VolumeName: socket.Name, ContainerPath: pulumi.String(dockerAPIDir)},
		},
		Restart:      pulumi.String("unless-stopped"),
		Capabilities: docker.ContainerCapabilitiesArgs{Drops: pulumi.StringArray{pulumi.String("ALL")}, Adds: capabilities("SETGID")},
		SecurityOpts: pulumi.StringArray{pulumi.String("no-new-privileges:true")},
		LogDriver:    pulumi.String(b.logDriver()),
		LogOpts:      b.logOptions(),
	}
	limitMemory(args, 32)
	b.dockerAPI, err = docker.NewContainer(b.ctx, b.name+"-docker-api", args, b.opts()...)
	return socket, b.dockerAPI, err
}
