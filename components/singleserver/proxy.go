package singleserver

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/service"
)

const (
	proxyDir = "/etc/nginx/fastapi-infra/"
	tlsDir   = "/etc/nginx/tls/"
)

func (b *builder) buildProxy() error {
	if b.args.Proxy == Traefik {
		return b.buildTraefik()
	}
	return b.buildNginx()
}

// proxyNetworks puts the proxy at its fixed address on the private network,
// the one address the app trusts, and on the edge network that publishes.
func (b *builder) proxyNetworks() docker.ContainerNetworksAdvancedArray {
	return docker.ContainerNetworksAdvancedArray{
		docker.ContainerNetworksAdvancedArgs{Name: b.private.Name, Ipv4Address: pulumi.String(b.net.ProxyIP)},
		docker.ContainerNetworksAdvancedArgs{Name: b.edge.Name},
	}
}

func (b *builder) publishedPorts() docker.ContainerPortArray {
	return docker.ContainerPortArray{
		docker.ContainerPortArgs{Internal: pulumi.Int(80), External: pulumi.Int(b.args.HTTPPort)},
		docker.ContainerPortArgs{Internal: pulumi.Int(443), External: pulumi.Int(b.args.HTTPSPort)},
	}
}

// appDependencies make the proxy start after the first healthy replicas:
// nginx refuses to load a config whose upstream name does not resolve.
func (b *builder) appDependencies() []pulumi.Resource {
	deps := make([]pulumi.Resource, 0, len(b.apps))
	for _, a := range b.apps {
		deps = append(deps, a)
	}
	return deps
}

// NginxConfigFor is the generated config of a service; exported for the
// golden test and the real-engine check.
func NginxConfigFor(s service.Spec, upstream string, httpsPort int, bodyLimit string) NginxConfig {
	cert, key := tlsDir+"tls.crt", tlsDir+"tls.key"
	if s.TLS.Mode == service.TLSProvided {
		cert, key = proxyDir+"tls.crt", proxyDir+"tls.key"
	}
	return NginxConfig{
		ServerName:      s.Domain,
		Upstream:        fmt.Sprintf("%s:%d", upstream, s.Port),
		HTTPSPortSuffix: httpsPortSuffix(httpsPort),
		CertFile:        cert,
		KeyFile:         key,
		BodyLimit:       bodyLimit,
	}
}

func (b *builder) buildNginx() error {
	s := b.args.Service
	cfg := NginxConfigFor(s, b.upstreamHost(), b.args.HTTPSPort, b.args.BodyLimit)
	cfg.RateLimit, cfg.ConnLimit = b.args.RateLimit, b.args.ConnLimit
	conf, err := RenderNginx(cfg)
	if err != nil {
		return err
	}
	image, err := b.image("proxy", b.args.ProxyImage)
	if err != nil {
		return err
	}
	uploads := docker.ContainerUploadArray{
		docker.ContainerUploadArgs{File: pulumi.String(proxyDir + "nginx.conf"), Content: pulumi.String(conf)},
		docker.ContainerUploadArgs{File: pulumi.String(proxyDir + "entrypoint.sh"), Content: pulumi.String(proxyEntrypoint), Executable: pulumi.Bool(true)},
	}
	var volumes docker.ContainerVolumeArray
	switch s.TLS.Mode {
	case service.TLSProvided:
		uploads = append(uploads,
			docker.ContainerUploadArgs{File: pulumi.String(proxyDir + "tls.crt"), Content: s.TLS.Cert},
			docker.ContainerUploadArgs{File: pulumi.String(proxyDir + "tls.key"), Content: pulumi.ToSecret(s.TLS.Key).(pulumi.StringOutput), Permissions: pulumi.String("0400")},
		)
	default:
		// The self-signed certificate is made on first start and kept here,
		// so browsers see the same one after the proxy is replaced.
		certs, err := b.volume("tls", false)
		if err != nil {
			return err
		}
		volumes = docker.ContainerVolumeArray{docker.ContainerVolumeArgs{VolumeName: certs.Name, ContainerPath: pulumi.String(tlsDir)}}
	}
	return b.proxyContainer(&docker.ContainerArgs{
		Name:        pulumi.String(b.dockerName("proxy")),
		Image:       image,
		Entrypoints: pulumi.StringArray{pulumi.String("/bin/sh"), pulumi.String(proxyDir + "entrypoint.sh")},
		Envs: pulumi.ToStringArray([]string{
			"TLS_MODE=" + string(s.TLS.Mode), "DOMAIN=" + s.Domain, "UPSTREAM_HOST=" + b.upstreamHost(),
		}),
		Uploads:     uploads,
		Volumes:     volumes,
		Healthcheck: healthcheck("/bin/sh", "-c", "kill -0 $(cat /run/nginx.pid)"),
		// The master binds 80 and 443 and runs its workers as www-data,
		// owning their temporary folders; nothing else.
		Capabilities: docker.ContainerCapabilitiesArgs{Drops: pulumi.StringArray{pulumi.String("ALL")},
			Adds: pulumi.ToStringArray([]string{"CHOWN", "NET_BIND_SERVICE", "SETGID", "SETUID"})},
	})
}

// traefikLabels route the replicas through Traefik's Docker provider; it
// sends traffic only to healthy containers and checks readiness itself.
func (b *builder) traefikLabels() docker.ContainerLabelArray {
	if b.args.Proxy != Traefik {
		return nil
	}
	labels := TraefikLabels(b.args.Service, b.dockerName("private"), b.args.BodyLimit)
	var out docker.ContainerLabelArray
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		out = append(out, docker.ContainerLabelArgs{Label: pulumi.String(k), Value: pulumi.String(labels[k])})
	}
	return out
}

// TraefikLabels are the app replicas' labels for Traefik's Docker provider:
// a router for the domain on the TLS entrypoint with the ACME resolver and
// a retry, and a load balancer that health-checks the ready path actively
// and failed requests passively. network is the private network Traefik
// reaches the replicas on.
//
// The retry and the passive health check cover a replica's stop: between
// uvicorn's SIGTERM (it stops accepting at once) and Traefik dropping the
// container on Docker's die event, Traefik still sends it requests. Three
// failed attempts take the replica out of the balancer and later attempts
// go elsewhere (the measurements are in the README's Tests section).
// Traefik retries only when a replica could not be reached, never after
// one answered; a 5xx answer counts as a passive failure too, and the 1 s
// active check brings a replica back as soon as it is ready again.
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
		"traefik.enable":                                               "true",
		serviceLabel:                                                   s.Name,
		"traefik.docker.network":                                       network,
		r + ".rule":                                                    fmt.Sprintf("Host(`%s`)", s.Domain),
		r + ".entrypoints":                                             "websecure",
		r + ".tls.certresolver":                                        "letsencrypt",
		r + ".middlewares":                                             retry + "," + limit + "," + hsts,
		mw + "-body.buffering.maxrequestbodybytes":                     fmt.Sprint(nginxSizeBytes(bodyLimit)),
		mw + "-hsts.headers.stsseconds":                                "63072000",
		mw + "-hsts.headers.stsincludesubdomains":                      "true",
		mw + "-hsts.headers.contenttypenosniff":                        "true",
		svc + ".server.port":                                           fmt.Sprint(s.Port),
		svc + ".healthcheck.path":                                      s.Health.ReadyPath,
		svc + ".healthcheck.interval":                                  "1s",
		svc + ".passivehealthcheck.maxfailedattempts":                  "3",
		svc + ".passivehealthcheck.failurewindow":                      "5s",
		"traefik.http.middlewares." + retry + ".retry.attempts":        "6",
		"traefik.http.middlewares." + retry + ".retry.initialinterval": "100ms",
	}
}

// serviceLabel names the service on its replicas; Traefik's Docker provider
// considers only containers that carry it with this service's name.
const serviceLabel = "fastapi-infra.service"

// nginxSizeBytes reads an nginx size (512k, 10m, 1g, or bytes), validated
// by the stack config.
func nginxSizeBytes(size string) int64 {
	mult := int64(1)
	switch strings.ToLower(size[len(size)-1:]) {
	case "k":
		mult, size = 1<<10, size[:len(size)-1]
	case "m":
		mult, size = 1<<20, size[:len(size)-1]
	case "g":
		mult, size = 1<<30, size[:len(size)-1]
	}
	n, _ := strconv.ParseInt(size, 10, 64)
	return n * mult
}

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
		"--providers.docker.exposedbydefault=false",
		fmt.Sprintf("--providers.docker.constraints=Label(`%s`,`%s`)", serviceLabel, service),
		"--entrypoints.web.address=:80",
		"--entrypoints.web.http.redirections.entrypoint.to=websecure",
		"--entrypoints.web.http.redirections.entrypoint.scheme=https",
		"--entrypoints.websecure.address=:443",
		"--certificatesresolvers.letsencrypt.acme.httpchallenge.entrypoint=web",
		"--certificatesresolvers.letsencrypt.acme.email=" + t.ACMEEmail,
		"--certificatesresolvers.letsencrypt.acme.storage=" + acmeDir + "/acme.json",
		"--ping=true",
		// A replica that is gone leaves an address nobody answers: a
		// connect waits out Go's 30 s dial timeout, through every retry,
		// until the client gives up (measured: 33-54 of ~660 requests hung
		// 10 s in a release). On the private bridge a connect takes well
		// under a millisecond, so half a second means gone, and the retry
		// and passive health check move on. And the new set of replicas
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
// (socket mounted read-only) and keeps the ACME account and certificates
// on a volume that survives replacement, so they are not re-requested.
func (b *builder) buildTraefik() error {
	s := b.args.Service
	image, err := b.image("proxy", b.args.TraefikImage)
	if err != nil {
		return err
	}
	acme, err := b.volume("acme", true)
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
		Capabilities: docker.ContainerCapabilitiesArgs{Drops: pulumi.StringArray{pulumi.String("ALL")}, Adds: pulumi.StringArray{pulumi.String("NET_BIND_SERVICE")}},
		Uploads:      uploads,
		Volumes: docker.ContainerVolumeArray{
			docker.ContainerVolumeArgs{HostPath: pulumi.String("/var/run/docker.sock"), ContainerPath: pulumi.String("/var/run/docker.sock"), ReadOnly: pulumi.Bool(true)},
			docker.ContainerVolumeArgs{VolumeName: acme.Name, ContainerPath: pulumi.String(acmeDir)},
		},
		Healthcheck: healthcheck("traefik", "healthcheck", "--ping"),
	})
}

// proxyContainer creates the proxy (nginx or Traefik) with what both share:
// the edge and internal networks, the published ports, the restart policy,
// memory limit and log rotation, and creation after the app replicas, then
// a wait until its own healthcheck passes.
func (b *builder) proxyContainer(args *docker.ContainerArgs) error {
	args.NetworksAdvanced = b.proxyNetworks()
	args.Ports = b.publishedPorts()
	args.Restart = pulumi.String("unless-stopped")
	args.Memory = pulumi.Int(256)
	args.LogDriver = pulumi.String(b.logDriver())
	args.LogOpts = b.logOptions()
	args.StopTimeout = pulumi.Int(30)
	args.SecurityOpts = pulumi.StringArray{pulumi.String("no-new-privileges:true")}
	args.Wait = pulumi.Bool(true)
	args.WaitTimeout = pulumi.Int(60)
	var err error
	b.proxy, err = docker.NewContainer(b.ctx, b.name+"-proxy", args, b.opts(pulumi.DependsOn(b.appDependencies()))...)
	return err
}
