package service

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Spec is everything both architectures need to know about the service.
// stacks fills it from stack config, defaulted and validated; the converters
// take it as it is and never re-default.
type Spec struct {
	// Name is a DNS-1123 label; every resource name derives from it.
	Name  string
	Image Image
	// Port is the container port uvicorn listens on.
	Port int
	// Module is the ASGI application, e.g. "app.main:app".
	Module string
	// Workers is the uvicorn worker count per container: 2 x CPU + 1 on a
	// single server, 1 on Kubernetes, where replicas scale instead.
	Workers  int
	Replicas int
	// Env is plain environment; SecretEnv values are secret outputs and only
	// ever reach a container through a secret mechanism.
	Env       map[string]string
	SecretEnv map[string]pulumi.StringOutput
	Health    Health
	Migration Migration
	Resources Resources
	// ShutdownGraceSeconds is how long a container has to finish in-flight
	// requests after SIGTERM before it is killed.
	ShutdownGraceSeconds int
	// Domain is the public host name, e.g. "api.example.com" or "localhost".
	Domain string
	TLS    TLS
	// ProxyHeaders makes uvicorn trust X-Forwarded-* from the proxy only.
	ProxyHeaders bool
	Database     Database
	Registry     Registry
}

// DefaultBodyLimit is the largest request body both architectures' proxies
// take when none is configured (an nginx size).
const DefaultBodyLimit = "10m"

// RedactedSecret replaces every secret value in a spec that is rendered to
// files instead of deployed: manifests on disk are for review and static
// checks, and must not hold what only a Secret object should.
const RedactedSecret = "REDACTED-by-fastapi-infra-set-by-pulumi-up"

// Redacted returns the spec with every secret value (database passwords,
// TLS certificate and key, secret env, registry password) replaced by
// RedactedSecret.
func (s Spec) Redacted() Spec {
	redacted := pulumi.ToSecret(pulumi.String(RedactedSecret)).(pulumi.StringOutput)
	s.Database.Password, s.Database.AppPassword = redacted, redacted
	s.TLS.Cert, s.TLS.Key = redacted, redacted
	s.Registry.Password = redacted
	env := map[string]pulumi.StringOutput{}
	for name := range s.SecretEnv {
		env[name] = redacted
	}
	s.SecretEnv = env
	return s
}

// Image is a reference to run, optionally built from a local context first.
type Image struct {
	// Ref is "repository:tag" or "repository@sha256:...".
	Ref string
	// BuildContext, when set, is a folder with a Dockerfile that the single
	// server builds into Ref before running it (no push).
	BuildContext string
	// Dockerfile is relative to BuildContext; default "Dockerfile".
	Dockerfile string
}

// Health holds the HTTP paths of the two probes of the seed.
type Health struct {
	LivePath  string // the process is up: restart when it fails
	ReadyPath string // it can serve: take it out of the load balancer when it fails
}

// MigrationStrategy says how the migration command runs before the app.
type MigrationStrategy string

const (
	// MigrationJob runs the command once per release (a one-shot container
	// on a single server, a Job on Kubernetes) and gates the app on it.
	MigrationJob MigrationStrategy = "job"
	// MigrationInitContainer runs it in every pod before the app starts
	// (Kubernetes only): once per pod and concurrently.
	MigrationInitContainer MigrationStrategy = "init-container"
	// MigrationNone skips migrations.
	MigrationNone MigrationStrategy = "none"
)

// Migration describes the schema migration step.
type Migration struct {
	Strategy MigrationStrategy
	Command  []string // exec form, e.g. alembic upgrade head
}

// Resources are per-container limits; requests equal limits for memory and
// are a fraction of the limit for CPU on Kubernetes.
type Resources struct {
	CPU    Quantity // e.g. 500m
	Memory Quantity // e.g. 512Mi
}

// TLSMode chooses where the certificate comes from.
type TLSMode string

const (
	TLSSelfSigned  TLSMode = "self-signed"  // made on first start, kept in a volume (single server, dev)
	TLSProvided    TLSMode = "provided"     // certificate and key from secret config
	TLSACME        TLSMode = "acme"         // Let's Encrypt through Traefik (single server)
	TLSSecret      TLSMode = "secret"       // an existing kubernetes.io/tls Secret
	TLSCertManager TLSMode = "cert-manager" // a cert-manager ClusterIssuer annotation
)

// TLS describes HTTPS termination at the proxy or ingress.
type TLS struct {
	Mode TLSMode
	// Cert and Key are PEM, secret, for TLSProvided.
	Cert pulumi.StringOutput
	Key  pulumi.StringOutput
	// ACMEEmail is the Let's Encrypt account for TLSACME.
	ACMEEmail string
	// ACMEServer is the ACME directory URL (Let's Encrypt production unless
	// set); ACMECA is PEM of the CA a private ACME server's HTTPS chains to.
	ACMEServer, ACMECA string
	// SecretName is the Kubernetes TLS Secret for TLSSecret and
	// TLSCertManager (and that TLSProvided makes); default <Name>-tls.
	SecretName string
	// ClusterIssuer is the cert-manager issuer for TLSCertManager.
	ClusterIssuer string
}

// DatabaseMode says where PostgreSQL runs.
type DatabaseMode string

const (
	DatabaseContainer DatabaseMode = "container"  // a PostgreSQL container on the single server
	DatabaseInCluster DatabaseMode = "in-cluster" // a StatefulSet (non-prod clusters)
	DatabaseExternal  DatabaseMode = "external"   // managed, reached at Host
)

// Database describes PostgreSQL and how the app reaches it.
type Database struct {
	Mode  DatabaseMode
	Image string // for container and in-cluster
	Host  string // for external; derived otherwise
	Port  int
	Name  string
	// User owns the database and runs the migrations (DDL); Password is
	// secret.
	User     string
	Password pulumi.StringOutput
	// AppUser is the role the app's replicas connect as: it owns nothing,
	// cannot create roles or databases, is no superuser, and may only read
	// and write rows (container and in-cluster: the database's role step
	// creates it and grants that). Empty for an external database without
	// db.appUser: the app then connects as User. AppPassword is secret.
	AppUser     string
	AppPassword pulumi.StringOutput
	SSLMode     string
	// CACert is the PEM of the CA that signed an external database's
	// server certificate; with SSLMode verify-ca or verify-full it reaches
	// the app as the file CACertFile, which DATABASE_URL's sslrootcert
	// names.
	CACert string
	// RetainOnDelete keeps the data volume through replacement and destroy.
	RetainOnDelete bool
	// Protect marks the volumes that hold the data and its backups
	// protected (production): the engine refuses to delete or replace
	// them, so a `destroy` or a change that would replace one stops
	// before it changes anything, until `pulumi state unprotect`.
	Protect bool
	// StorageSize is the in-cluster volume size, e.g. 10Gi.
	StorageSize string
	// StorageClass is the in-cluster volume's class; empty: the default.
	StorageClass string
	// Resources limit the database container (container and in-cluster):
	// a runaway query must not starve the app on a shared host.
	Resources Resources
	// Backup is the scheduled dump of a container or in-cluster database.
	Backup Backup
}

// Registry holds optional pull credentials for the app image.
type Registry struct {
	Server   string
	Username string
	Password pulumi.StringOutput // secret; empty Server means none
}

// DataOptions are the resource options of a volume that holds the
// database's data or its backups: retained through replacement and
// destroy when retain, protected when Protect.
func (d Database) DataOptions(retain bool) []pulumi.ResourceOption {
	var opts []pulumi.ResourceOption
	if retain {
		opts = append(opts, pulumi.RetainOnDelete(true))
	}
	if d.Protect {
		opts = append(opts, pulumi.Protect(true))
	}
	return opts
}
