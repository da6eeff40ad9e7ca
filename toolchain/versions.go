package toolchain

// The pinned versions of every tool the project builds from the Go module
// proxy. Change one here and the next run builds it into a cache folder of
// its own; nothing else needs to change.
const (
	// PulumiVersion is the CLI every stack runs with, here and in the GitHub
	// workflows (a test keeps them equal).
	PulumiVersion = "v3.274.1"
	// PulumiKubernetesVersion is the kubernetes provider plugin. The proxy
	// serves only one commit of provider/v4, the day before tag v4.25.0
	// (PulumiKubernetesProviderModule); it is stamped and installed as 4.25.0.
	PulumiKubernetesVersion        = "4.25.0"
	PulumiKubernetesProviderModule = "v4.0.0-20260115033456-f47bc2d6f199"
	// PulumiDockerVersion is the docker provider plugin. Its module is not
	// served, so it cannot be built here; the driver asks for this version
	// to be installed by hand.
	PulumiDockerVersion = "4.10.0"
	// KubernetesVersion is the lab's control plane and real node.
	KubernetesVersion = "v1.36.3"
	// CoreDNSVersion is the lab's cluster DNS: the version kubeadm of
	// KubernetesVersion installs.
	CoreDNSVersion    = "v1.14.2"
	KwokVersion       = "v0.8.0"
	KubeScoreVersion  = "v1.20.0"
	ActionlintVersion = "v1.7.12"
	// TraefikVersion is the single server's Traefik on real Docker and the
	// lab's ingress controller. v3.6 is the newest line the proxy can build:
	// v3.7 needs its nested module github.com/traefik/traefik/dynamic/ext,
	// which is not served.
	TraefikVersion = "v3.6.12"
	// PebbleVersion is Let's Encrypt's test ACME server, the Traefik test's CA.
	PebbleVersion = "v2.10.1"
	// VictoriaLogsVersion is the single server's log store (Apache-2.0):
	// syslog in, LogsQL out.
	VictoriaLogsVersion = "v1.52.1"
	// VersityGWVersion is the lab's S3-compatible object store (Apache-2.0;
	// not MinIO, which is AGPL): the backups' off-host repository in the
	// tests, a gateway that keeps each bucket in a folder.
	VersityGWVersion = "v1.8.0"
)
