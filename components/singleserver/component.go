package singleserver

import (
	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// Type is the component's type token.
const Type = "fastapi-infra:index:SingleServer"

// ProxyKind chooses the reverse proxy.
type ProxyKind string

const (
	Nginx   ProxyKind = "nginx"
	Traefik ProxyKind = "traefik"
)

// Args configures a SingleServer.
type Args struct {
	// Service is the neutral spec (required).
	Service service.Spec
	// Subnet is the private network, e.g. 172.30.57.0/24 (required). The
	// proxy takes its last usable address.
	Subnet string
	// NamePrefix starts every container, network and volume name (and the
	// replicas' network alias); default Service.Name. Two single servers on
	// one Docker host need different ones.
	NamePrefix string
	// RefreshImages looks each image's digest up in its registry on every
	// up and pulls again when the tag points to a new build; false for
	// images that exist only on the host.
	RefreshImages bool
	// Proxy is nginx (default) or traefik.
	Proxy ProxyKind
	// ProxyImage is the nginx image, default DefaultNginxImage;
	// TraefikImage the Traefik one, default DefaultTraefikImage.
	ProxyImage, TraefikImage string
	// HTTPPort and HTTPSPort are published on the host; defaults 80 and 443.
	HTTPPort, HTTPSPort int
	// BodyLimit is nginx's client_max_body_size; default 10m.
	BodyLimit string
	// RateLimit (requests a second) and ConnLimit (concurrent connections)
	// bound each client address at nginx; 0: no bound.
	RateLimit, ConnLimit int
	// SecretsDigest changes when a secret that reaches the app changes, so
	// that a rotation rolls the replicas like a new release (see stacks).
	SecretsDigest string
	// LogDriver is the Docker log driver of every container; default
	// json-file. LogOptions are its options; for json-file without options,
	// max-size 10m and max-file 3.
	LogDriver  string
	LogOptions map[string]string
	// Monitoring, when non-nil, runs Prometheus with the alert rules.
	Monitoring *Monitoring
	// Logs, when non-nil, runs the log store every container logs to
	// (instead of LogDriver).
	Logs *Logs
	// StartTimeoutSeconds is how long up waits for a new replica to turn
	// healthy before the release fails; default 120.
	StartTimeoutSeconds int
	// EngineAPIVersion is the Docker Engine API version of the host, such
	// as "1.41" (Docker 20.10) or "1.44" (Docker 25.0): features of newer
	// engines (a healthcheck's startInterval, 1.44) are used only where
	// the engine has them, since the provider refuses a container that
	// asks for more than the engine speaks. Default (empty): MinEngineAPI.
	EngineAPIVersion string
}

// SingleServer is the component.
type SingleServer struct {
	pulumi.ResourceState

	URL            pulumi.StringOutput      `pulumi:"url"`
	Network        pulumi.StringOutput      `pulumi:"network"`
	ContainerNames pulumi.StringArrayOutput `pulumi:"containerNames"`
	Volumes        pulumi.StringArrayOutput `pulumi:"volumes"`

	// Children that tests and callers reach.
	Database  *docker.Container
	Backup    *docker.Container // nil without backups
	Migration *docker.Container // nil without migrations
	Apps      []*docker.Container
	Proxy     *docker.Container
}

// New registers the component; opts should carry the docker provider.
func New(ctx *pulumi.Context, name string, args *Args, opts ...pulumi.ResourceOption) (*SingleServer, error) {
	a := withDefaults(*args)
	c := &SingleServer{}
	if err := ctx.RegisterComponentResource(Type, name, c, opts...); err != nil {
		return nil, err
	}
	b := &builder{ctx: ctx, name: name, args: a, parent: c}
	if err := b.build(); err != nil {
		return nil, err
	}
	c.Database, c.Backup, c.Migration, c.Apps, c.Proxy = b.database, b.backup, b.migration, b.apps, b.proxy
	c.URL = pulumi.String(a.Service.URL(a.HTTPSPort)).ToStringOutput()
	c.Network = b.private.Name
	var names pulumi.StringArray
	for _, ctr := range b.containers() {
		names = append(names, ctr.Name)
	}
	c.ContainerNames = names.ToStringArrayOutput()
	var vols pulumi.StringArray
	for _, v := range b.volumes {
		vols = append(vols, v.Name)
	}
	c.Volumes = vols.ToStringArrayOutput()
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{
		"url":            c.URL,
		"network":        c.Network,
		"containerNames": c.ContainerNames,
		"volumes":        c.Volumes,
	})
}

// withDefaults fills the optional fields; the subnet is checked where it is
// planned (buildNetworks), before any resource.
func withDefaults(a Args) Args {
	if a.Proxy == "" {
		a.Proxy = Nginx
	}
	if a.NamePrefix == "" {
		a.NamePrefix = a.Service.Name
	}
	if a.ProxyImage == "" {
		a.ProxyImage = DefaultNginxImage
	}
	if a.TraefikImage == "" {
		a.TraefikImage = DefaultTraefikImage
	}
	if a.HTTPPort == 0 {
		a.HTTPPort = DefaultHTTPPort
	}
	if a.HTTPSPort == 0 {
		a.HTTPSPort = DefaultHTTPSPort
	}
	if a.BodyLimit == "" {
		a.BodyLimit = service.DefaultBodyLimit
	}
	if a.LogDriver == "" {
		a.LogDriver = DefaultLogDriver
	}
	if a.StartTimeoutSeconds == 0 {
		a.StartTimeoutSeconds = DefaultStartTimeoutSeconds
	}
	if a.LogDriver == DefaultLogDriver && len(a.LogOptions) == 0 {
		a.LogOptions = map[string]string{"max-size": "10m", "max-file": "3"}
	}
	if a.Monitoring != nil && a.Monitoring.Interval == "" {
		m := *a.Monitoring // the caller's Args stay as they were
		m.Interval = DefaultScrapeInterval
		a.Monitoring = &m
	}
	return a
}

// The defaults of Args, which the stack config's keys take too (one place).
const (
	DefaultNginxImage     = "nginx:1.30"   // nginx's stable line
	DefaultTraefikImage   = "traefik:v3.6" // v3.6 or later: the ACME CA options
	DefaultHTTPPort       = 80
	DefaultHTTPSPort      = 443
	DefaultLogDriver      = "json-file" // rotated at 10m x 3
	DefaultScrapeInterval = "15s"
	// DefaultStartTimeoutSeconds is how long a new replica may take to
	// turn healthy (health.startTimeout).
	DefaultStartTimeoutSeconds = 120
)

type builder struct {
	ctx    *pulumi.Context
	name   string
	args   Args
	parent pulumi.Resource

	private, edge *docker.Network
	// archive is the way out of the database and backup containers to an
	// off-host backup repository (nil without one).
	archive   *docker.Network
	net       addressPlan
	volumes   []*docker.Volume
	appImage  pulumi.StringOutput
	database  *docker.Container
	dbImage   pulumi.StringOutput
	dbSecrets appSecrets     // the database password as a file
	dbSocket  *docker.Volume // the database's unix socket folder
	dbData    *docker.Volume // the database's data
	rolesSet  *docker.Container
	rolesGate pulumi.StringOutput // resolves once the roles are set up
	revoker   *docker.Container   // ends the app's earlier logins
	backup    *docker.Container
	secrets   appSecrets // the replicas' secret files
	// migrationSecrets are the migration's: DATABASE_URL is the owner's.
	migrationSecrets appSecrets
	migration        *docker.Container
	gate             pulumi.StringOutput
	apps             []*docker.Container
	proxy            *docker.Container
	prometheus       *docker.Container
	alertmanager     *docker.Container
	pgExporter       *docker.Container
	logs             *docker.Container // the log store; every other container waits for it
	dockerAPI        *docker.Container // Traefik's read-only view of the engine
}

func (b *builder) build() error {
	for _, step := range []func() error{
		b.buildNetworks,
		b.buildLogs,
		b.buildAppImage,
		b.buildDatabase,
		b.buildDatabaseRoles,
		b.buildBackup,
		b.buildAppSecrets,
		b.buildMigration,
		b.buildApps,
		b.buildRevoker,
		b.buildProxy,
		b.buildAlertmanager,
		b.buildPostgresExporter,
		b.buildPrometheus,
	} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

func (b *builder) containers() []*docker.Container {
	var all []*docker.Container
	for _, c := range append([]*docker.Container{b.database, b.backup, b.migration, b.revoker}, b.apps...) {
		if c != nil {
			all = append(all, c)
		}
	}
	all = append(all, b.proxy)
	if b.dockerAPI != nil {
		all = append(all, b.dockerAPI)
	}
	for _, c := range []*docker.Container{b.alertmanager, b.pgExporter, b.prometheus, b.logs} {
		if c != nil {
			all = append(all, c)
		}
	}
	return all
}

// opts are every child's options. Delete before replace: each Docker
// object has a fixed name (a release's replicas carry the release in
// theirs, so a release is new resources, not a replacement), which the
// engine refuses to a second object. pulumi-docker asks for it when a
// change forces a replacement, but an explicit one (`pulumi up --replace`,
// the driver's rerun of a failed migration) is create-first unless the
// program says so, and failed with "the container name ... is already in
// use" on the real provider.
func (b *builder) opts(extra ...pulumi.ResourceOption) []pulumi.ResourceOption {
	opts := []pulumi.ResourceOption{pulumi.Parent(b.parent), pulumi.DeleteBeforeReplace(true)}
	if b.logs != nil {
		// Created after the log store, which the log driver sends to.
		opts = append(opts, pulumi.DependsOn([]pulumi.Resource{b.logs}))
	}
	return append(opts, extra...)
}

// volume creates the Docker volume of a role (Docker name
// dockerName(role)) and lists it in the component's outputs; keep are its
// options beyond the component's (RetainOnDelete, Protect).
func (b *builder) volume(role string, keep ...pulumi.ResourceOption) (*docker.Volume, error) {
	v, err := docker.NewVolume(b.ctx, b.name+"-"+role, &docker.VolumeArgs{Name: pulumi.String(b.dockerName(role))}, b.opts(keep...)...)
	if err != nil {
		return nil, err
	}
	b.volumes = append(b.volumes, v)
	return v, nil
}

// dockerName is the Docker name of a role's container, network or volume,
// unique per component on its host.
func (b *builder) dockerName(role string) string { return b.args.NamePrefix + "-" + role }
