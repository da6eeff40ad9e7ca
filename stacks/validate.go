package stacks

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/fastapi-infra/fastapi-infra/components/monitoring"
	"github.com/fastapi-infra/fastapi-infra/components/service"
	"github.com/fastapi-infra/fastapi-infra/components/singleserver"
)

var (
	dnsLabel     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	hostLabel    = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?$`)
	envName      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	sqlName      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)
	email        = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	nginxSize    = regexp.MustCompile(`^[0-9]+[kKmMgG]?$`)
	dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	storageSize  = regexp.MustCompile(`^[0-9]+(Mi|Gi|Ti)$`)
	retention    = regexp.MustCompile(`^[0-9]+(h|d|w|y)$`)
	imageRepo    = regexp.MustCompile(`^[a-z0-9]+([._-]+[a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$`)
	imageTag     = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	imageDigest  = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
	labelKey     = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)
	labelValue   = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$`)
	reservedEnvs = []string{"DATABASE_URL"}
)

// problems collects validation errors, each naming its full key.
type problems []error

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", FullKey(key), fmt.Sprintf(format, args...)))
}

func (p *problems) oneOf(key, got string, allowed ...string) bool {
	if slices.Contains(allowed, got) {
		return true
	}
	p.add(key, "must be one of %s, got %q", strings.Join(allowed, ", "), got)
	return false
}

func (p *problems) between(key string, got, lo, hi int) {
	if got < lo || got > hi {
		p.add(key, "must be between %d and %d, got %d", lo, hi, got)
	}
}

func (p *problems) match(key, got string, re *regexp.Regexp, what string) {
	if !re.MatchString(got) {
		p.add(key, "must be %s, got %q", what, got)
	}
}

// secret checks a value that must be set with --secret; required says
// whether an empty value is an error. The value itself is never printed.
func (p *problems) secret(key string, v secretValue, required bool) {
	switch {
	case !v.set && required:
		p.add(key, "is required and not set; run: pulumi config set --secret %s <value>", key)
	case v.set && !v.isSecret:
		p.add(key, "is stored in plain text in the stack file; store it encrypted instead: pulumi config set --secret %s <value>", key)
	}
}

// validate checks every value and returns all problems at once.
func (c *Config) validate() []error {
	var p problems
	archOK := p.oneOf("architecture", string(c.Architecture), string(SingleServer), string(Kubernetes))
	prod := c.Environment == "production"
	p.oneOf("environment", c.Environment, "development", "production")

	p.match("app.name", c.App.Name, dnsLabel, "a DNS-1123 label (lower-case letters, digits and '-', at most 63)")
	c.validateImage(&p, prod)
	p.between("app.port", c.App.Port, 1, 65535)
	p.between("app.workers", c.App.Workers, 1, 64)
	p.between("app.replicas", c.App.Replicas, 1, 100)
	p.between("app.shutdownGraceSeconds", c.App.ShutdownGraceSeconds, 1, 3600)
	p.between("health.startTimeout", c.App.StartTimeout, 10, 3600)
	c.limits(&p, "app.cpu", c.App.CPU, "app.memory", c.App.Memory, 32<<20, "32Mi for a Python process")
	p.match("proxy.bodyLimit", c.Proxy.BodyLimit, nginxSize, "an nginx size such as 512k, 10m or 1g")
	validateEnv(&p, "app.env", c.App.Env)
	validateEnv(&p, "secretEnv", c.SecretEnv)
	if len(c.SecretEnv) > 0 && !c.secretEnvIsSecret {
		p.add("secretEnv", "is stored in plain text in the stack file; store each value encrypted: pulumi config set --secret --path 'secretEnv.NAME' <value>")
	}
	for name := range c.App.Env {
		if _, dup := c.SecretEnv[name]; dup {
			p.add("app.env", "%s is also set in secretEnv; keep it in one of them", name)
		}
	}
	for _, k := range []struct{ key, path string }{{"health.livePath", c.App.LivePath}, {"health.readyPath", c.App.ReadyPath}} {
		if !strings.HasPrefix(k.path, "/") || strings.ContainsAny(k.path, " \t\"'") {
			p.add(k.key, "must be an absolute URL path starting with '/', got %q", k.path)
		}
	}

	if p.oneOf("migration.strategy", string(c.App.MigrationStrategy), "job", "init-container", "none") {
		if c.App.MigrationStrategy == service.MigrationInitContainer && c.Architecture == SingleServer {
			p.add("migration.strategy", "init-container is for Kubernetes; a single server runs job (a one-shot container before the app)")
		}
		if c.App.MigrationStrategy != service.MigrationNone && (len(c.App.MigrationCommand) == 0 || c.App.MigrationCommand[0] == "") {
			p.add("migration.command", "must be a non-empty exec-form list such as [\"alembic\", \"upgrade\", \"head\"], or set migration.strategy to none")
		}
	}

	c.validateDomain(&p, prod)
	if archOK {
		c.validateTLS(&p, prod)
		c.validateDatabase(&p, prod)
		c.validateBackupRepository(&p, prod)
	}
	p.secret("dbPassword", c.dbPassword, true)
	p.between("db.port", c.DB.Port, 1, 65535)
	p.match("db.name", c.DB.Name, sqlName, "a PostgreSQL identifier (letters, digits, '_', not starting with a digit)")
	p.match("db.user", c.DB.User, sqlName, "a PostgreSQL identifier (letters, digits, '_', not starting with a digit)")
	c.validateDatabaseAccess(&p, prod)

	p.secret("registryPassword", c.registryPassword, c.Registry.Server != "")
	if c.Registry.Server != "" && c.Registry.Username == "" {
		p.add("registry.username", "is required when registry.server is set (%q)", c.Registry.Server)
	}

	c.validateMonitoring(&p)
	switch c.Architecture {
	case SingleServer:
		c.validateSingleServer(&p)
	case Kubernetes:
		c.validateKubernetes(&p, prod)
	}
	return p
}

func validateEnv(p *problems, key string, env map[string]string) {
	for _, name := range slices.Sorted(maps.Keys(env)) {
		switch {
		case !envName.MatchString(name):
			p.add(key, "%q is not an environment variable name (letters, digits, '_', not starting with a digit)", name)
		case slices.Contains(reservedEnvs, name):
			p.add(key, "%s is set by the program from the db.* keys; remove it here", name)
		}
	}
}

// imageRef is a parsed image reference: repository[:tag][@digest].
type imageRef struct {
	repo, tag, digest string
	hasDigest         bool
}

func parseImageRef(ref string) imageRef {
	var r imageRef
	r.repo, r.digest, r.hasDigest = strings.Cut(ref, "@")
	if i := strings.LastIndex(r.repo, ":"); i > strings.LastIndex(r.repo, "/") {
		r.repo, r.tag = r.repo[:i], r.repo[i+1:]
	}
	return r
}

// imageProblem says what is wrong with an image reference, or "".
func imageProblem(ref string) string {
	r := parseImageRef(ref)
	switch {
	case !imageRepo.MatchString(r.repo):
		return "must be an image reference"
	case r.hasDigest && !imageDigest.MatchString(r.digest):
		return "has a malformed digest"
	case !r.hasDigest && r.tag == "":
		return "must pin a tag or digest"
	case r.tag != "" && !imageTag.MatchString(r.tag):
		return "has a malformed tag"
	}
	return ""
}

func (c *Config) validateImage(p *problems, prod bool) {
	if problem := imageProblem(c.App.Image); problem != "" {
		p.add("app.image", "%s (repository:tag or repository@sha256:<digest>, e.g. ghcr.io/acme/api:1.4.2), got %q", problem, c.App.Image)
	} else if r := parseImageRef(c.App.Image); prod && r.tag == "latest" && !r.hasDigest {
		p.add("app.image", "must not use :latest in production (it changes under a running release); pin a version or digest, got %q", c.App.Image)
	}
	if prod && (c.App.TestRoutes || c.App.Env[TestRoutesEnv] != "") {
		p.add("app.testRoutes", "test routes are refused in production (the example app's /_meta/slow holds a worker thread up to 30 s, and 40 such requests per worker make the replicas unready): remove app.testRoutes and app.env.%s", TestRoutesEnv)
	}
	if c.App.BuildContext != "" && c.Architecture == Kubernetes {
		p.add("app.buildContext", "is for the single server; Kubernetes pulls app.image from a registry, so build and push it in CI")
	}
}

func (c *Config) validateDomain(p *problems, prod bool) {
	d := c.Domain
	labels := strings.Split(d, ".")
	ok := len(d) > 0 && len(d) <= 253
	for _, l := range labels {
		ok = ok && hostLabel.MatchString(l)
	}
	if !ok {
		p.add("domain", "must be a host name such as api.example.com (letters, digits, '-' and '.'; no scheme, port or path), got %q", d)
		return
	}
	if prod && (d == "localhost" || !strings.Contains(d, ".")) {
		p.add("domain", "must be a public host name in production, got %q", d)
	}
}

func (c *Config) validateTLS(p *problems, prod bool) {
	allowed := map[Architecture][]string{
		SingleServer: {string(service.TLSSelfSigned), string(service.TLSProvided), string(service.TLSACME)},
		Kubernetes:   {string(service.TLSSecret), string(service.TLSCertManager), string(service.TLSProvided)},
	}[c.Architecture]
	if c.TLS.Mode == "" {
		p.add("tls.mode", "must be chosen for a production single server: provided (tlsCert/tlsKey) or acme (with proxy.kind traefik)")
		return
	}
	if !p.oneOf("tls.mode", string(c.TLS.Mode), allowed...) {
		return
	}
	switch c.TLS.Mode {
	case service.TLSSelfSigned:
		if prod {
			p.add("tls.mode", "self-signed certificates are for development; use provided or acme in production")
		}
	case service.TLSProvided:
		p.secret("tlsCert", c.tlsCert, true)
		p.secret("tlsKey", c.tlsKey, true)
		if c.tlsCert.set && !strings.Contains(c.tlsCert.plain, "-----BEGIN CERTIFICATE-----") {
			p.add("tlsCert", "must be a PEM certificate chain (-----BEGIN CERTIFICATE-----)")
		}
		if c.tlsKey.set && !strings.Contains(c.tlsKey.plain, "PRIVATE KEY-----") {
			p.add("tlsKey", "must be a PEM private key (-----BEGIN ... PRIVATE KEY-----)")
		}
	case service.TLSACME:
		if c.Proxy.Kind != singleserver.Traefik {
			p.add("tls.mode", "acme needs proxy.kind traefik (it runs the ACME client), got proxy.kind %q", c.Proxy.Kind)
		}
		if !email.MatchString(c.TLS.ACMEEmail) {
			p.add("tls.acmeEmail", "must be the Let's Encrypt account e-mail for tls.mode acme, got %q", c.TLS.ACMEEmail)
		}
		if c.Domain == "localhost" {
			p.add("domain", "acme needs a public host name that Let's Encrypt can reach, got %q", c.Domain)
		}
		if u, err := url.Parse(c.TLS.ACMEServer); err != nil || u.Scheme != "https" || u.Host == "" {
			p.add("tls.acmeServer", "must be the https:// URL of an ACME directory, e.g. https://acme-staging-v02.api.letsencrypt.org/directory, got %q", c.TLS.ACMEServer)
		}
		if c.TLS.ACMECA != "" && !strings.Contains(c.TLS.ACMECA, "-----BEGIN CERTIFICATE-----") {
			p.add("tls.acmeCA", "must be PEM CA certificate(s) (-----BEGIN CERTIFICATE-----), or empty for the system roots")
		}
	case "cert-manager":
		if c.TLS.ClusterIssuer == "" {
			p.add("tls.clusterIssuer", "is required for tls.mode cert-manager (the ClusterIssuer's name)")
		}
	}
	if c.Architecture == SingleServer && c.Proxy.Kind == singleserver.Traefik && c.TLS.Mode != service.TLSACME {
		p.add("tls.mode", "proxy.kind traefik gets its certificate by ACME; set tls.mode acme, or use proxy.kind nginx for %s", c.TLS.Mode)
	}
	if c.Architecture == Kubernetes && c.TLS.SecretName != "" { // empty: the component's <app.name>-tls
		p.match("tls.secretName", c.TLS.SecretName, dnsLabel, "a Secret name (DNS-1123 label)")
	}
}

func (c *Config) validateDatabase(p *problems, prod bool) {
	allowed := map[Architecture][]string{
		SingleServer: {string(service.DatabaseContainer), string(service.DatabaseExternal)},
		Kubernetes:   {string(service.DatabaseExternal), string(service.DatabaseInCluster)},
	}[c.Architecture]
	if !p.oneOf("db.mode", string(c.DB.Mode), allowed...) {
		return
	}
	switch c.DB.Mode {
	case service.DatabaseExternal:
		if c.DB.Host == "" {
			p.add("db.host", "is required for db.mode external (the managed database's host name)")
		}
		if c.Architecture == Kubernetes && isLoopback(c.DB.Host) {
			p.add("db.host", "%q is the loopback address: in a pod it is the pod itself, not the database; give the database's host name or address as the pods reach it", c.DB.Host)
		}
	case service.DatabaseInCluster:
		if prod {
			p.add("db.mode", "in-cluster PostgreSQL is for non-production clusters; use external (a managed database) in production")
		}
		p.match("db.storageSize", c.DB.StorageSize, storageSize, "a volume size such as 10Gi")
		if c.DB.StorageClass != "" {
			p.match("db.storageClass", c.DB.StorageClass, dnsSubdomain, "a StorageClass name (lower-case letters, digits, '-' and '.'), or empty for the cluster's default")
		}
	}
	if c.DB.Mode != service.DatabaseExternal {
		c.validateImageRef(p, "db.image", c.DB.Image)
		c.limits(p, "db.cpu", c.DB.CPU, "db.memory", c.DB.Memory, 128<<20, "128Mi for PostgreSQL's shared buffers and a few connections")
		if c.DB.BackupSchedule != "" {
			if _, err := service.ParseSchedule(c.DB.BackupSchedule); err != nil {
				p.add("db.backup.schedule", "%v; or empty for no backups", err)
			}
		}
		p.between("db.backup.keep", c.DB.BackupKeep, 1, 1000)
	}
}

// maxAppUser leaves room for the suffix of a single server's app logins.
const maxAppUser = 63 - 11

// validateDatabaseAccess checks how the app and its migrations reach the
// database: the app's own role, and TLS that verifies an external server.
func (c *Config) validateDatabaseAccess(p *problems, prod bool) {
	external := c.DB.Mode == service.DatabaseExternal
	if c.DB.AppUser != "" {
		p.match("db.appUser", c.DB.AppUser, sqlName, "a PostgreSQL identifier (letters, digits, '_', not starting with a digit); or empty for <db.user>_rw")
		if c.DB.AppUser == c.DB.User {
			p.add("db.appUser", "is db.user (%q): the app must not connect as the role that owns the database and runs the migrations; give another role, or leave it empty", c.DB.User)
		}
		// A single server's app logs in as <db.appUser>_<10 characters>,
		// one login per rotation; PostgreSQL names are at most 63 bytes.
		if c.Architecture == SingleServer && !external && len(c.DB.AppUser) > maxAppUser {
			p.add("db.appUser", "is %d characters (%q, <db.user>_rw when not set); a single server's app logs in as it plus an 11-character suffix, and PostgreSQL names have at most 63: give one of at most %d", len(c.DB.AppUser), c.DB.AppUser, maxAppUser)
		}
	}
	if external && prod && c.DB.AppUser == "" {
		// The app would connect as db.user, the role that owns the
		// schema: a SQL injection could then drop tables.
		p.add("db.appUser", "must name the app's own role for an external database in production (without it the app connects as db.user, which owns the schema): create a role that may only read and write rows, set db.appUser to it and dbAppPassword to its password")
	}
	p.secret("dbAppPassword", c.dbAppPassword, external && c.DB.AppUser != "")
	if !p.oneOf("db.sslmode", c.DB.SSLMode, "disable", "allow", "prefer", "require", "verify-ca", "verify-full") {
		return
	}
	verifies := c.DB.SSLMode == "verify-ca" || c.DB.SSLMode == "verify-full"
	switch {
	case !external && !slices.Contains([]string{"disable", "allow", "prefer"}, c.DB.SSLMode):
		p.add("db.sslmode", "%s needs a server with TLS; the stack's own database (db.mode %s) serves none and is reached on its private network only: use prefer, or an external database", c.DB.SSLMode, c.DB.Mode)
	case external && prod && !verifies:
		p.add("db.sslmode", "is %s: in production the app must verify the database server; set verify-full (the production default) and db.caCert to your provider's CA bundle", c.DB.SSLMode)
	}
	switch {
	case verifies && c.DB.CACert == "":
		p.add("db.caCert", "is required with db.sslmode %s: the PEM of the CA that signed the database's certificate (your provider publishes it); set it with: pulumi config set --path db.caCert -- \"$(cat ca.pem)\"", c.DB.SSLMode)
	case c.DB.CACert != "" && !verifies:
		p.add("db.caCert", "is set but db.sslmode is %s, which does not verify the server: set db.sslmode verify-full, or remove db.caCert", c.DB.SSLMode)
	case c.DB.CACert != "":
		if err := checkCACerts(c.DB.CACert); err != nil {
			p.add("db.caCert", "%v", err)
		}
	}
}

// checkCACerts parses PEM CA certificates: at least one, nothing else.
func checkCACerts(bundle string) error {
	rest, n := []byte(bundle), 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return fmt.Errorf("must hold only PEM certificates, found a %q block", block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("certificate %d does not parse: %v", n+1, err)
		}
		n++
	}
	if n == 0 || strings.TrimSpace(string(rest)) != "" {
		return fmt.Errorf("must be PEM CA certificate(s) (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)")
	}
	return nil
}

// What the alert thresholds must be, for their errors.
const (
	errorRatioWant = "a share between 0 and 1 such as 0.05"
	p95Want        = "a number of seconds between 0 and 600 such as 0.5"
)

// limits checks a container's CPU and memory limits: a CPU amount Docker
// and Kubernetes both accept, and memory the process can start in.
func (c *Config) limits(p *problems, cpuKey string, cpu service.Quantity, memKey string, mem service.Quantity, minMem int64, why string) {
	if !c.unparsed[cpuKey] && (cpu.Value < 10 || cpu.Value > 64000) {
		p.add(cpuKey, "must be between 10m and 64 cores, got %q", cpu)
	}
	if !c.unparsed[memKey] && mem.Value < minMem {
		p.add(memKey, "must be at least %s, got %q", why, mem)
	}
}

// isLoopback says whether a host names this machine's loopback.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// validateImageRef checks the images of the database and proxy, which may
// come from a mirror registry: a reference with a tag or digest.
func (c *Config) validateImageRef(p *problems, key, ref string) {
	if problem := imageProblem(ref); problem != "" {
		p.add(key, "%s (e.g. postgres:15 or mirror.example.com/library/postgres:15), got %q", problem, ref)
	}
}

// minRolloutKey is the shortest rolloutKey accepted: 32 hex characters
// are 128 random bits.
const minRolloutKey = 32

func (c *Config) validateSingleServer(p *problems) {
	switch k := c.rolloutKey; {
	case !k.set:
		p.add("rolloutKey", `is required for a single server and not set; ./infra generates it, or run: pulumi config set --secret rolloutKey "$(openssl rand -hex 32)"`)
	case !k.isSecret:
		p.add("rolloutKey", `is stored in plain text in the stack file; store it encrypted instead: pulumi config set --secret rolloutKey "$(openssl rand -hex 32)"`)
	case len(k.plain) < minRolloutKey:
		p.add("rolloutKey", `must be a random value of at least %d characters; run: pulumi config set --secret rolloutKey "$(openssl rand -hex 32)"`, minRolloutKey)
	}
	if c.Docker.Subnet != "" {
		if _, err := singleserver.PlanAddresses(c.Docker.Subnet); err != nil {
			p.add("docker.subnet", "%v", err)
		}
	}
	if c.Docker.NamePrefix != "" {
		p.match("docker.namePrefix", c.Docker.NamePrefix, dnsLabel, "a DNS-1123 label (lower-case letters, digits and '-')")
	}
	switch {
	case !strings.HasPrefix(c.Docker.Host, "unix://") && !strings.HasPrefix(c.Docker.Host, "ssh://") && !strings.HasPrefix(c.Docker.Host, "tcp://"):
		p.add("docker.host", "must be unix:///path/to/docker.sock, ssh://user@host or tcp://host:port, got %q", c.Docker.Host)
	case strings.HasPrefix(c.Docker.Host, "tcp://") && c.Docker.CertPath == "":
		// The Engine API is root on the host: a plain TCP port gives it to
		// whoever reaches the port, and the stack's secrets cross in clear.
		p.add("docker.host", "is %s without TLS: the Engine API on a plain TCP port is root on the host for whoever reaches it; set docker.certPath to the folder with ca.pem, cert.pem and key.pem (the engine started with --tlsverify), or use ssh://user@host", c.Docker.Host)
	case c.Docker.CertPath != "" && !strings.HasPrefix(c.Docker.Host, "tcp://"):
		p.add("docker.certPath", "is set, but docker.host is %s: the certificate is for a tcp:// host; remove docker.certPath", c.Docker.Host)
	}
	if p.oneOf("proxy.kind", string(c.Proxy.Kind), string(singleserver.Nginx), string(singleserver.Traefik)) {
		if c.Proxy.Kind == singleserver.Nginx {
			c.validateImageRef(p, "proxy.image", c.Proxy.Image)
		} else {
			c.validateImageRef(p, "proxy.traefikImage", c.Proxy.TraefikImage)
		}
	}
	p.between("proxy.httpPort", c.Proxy.HTTPPort, 1, 65535)
	p.between("proxy.httpsPort", c.Proxy.HTTPSPort, 1, 65535)
	p.between("proxy.rateLimit", c.Proxy.RateLimit, 0, 1000000)
	p.between("proxy.connLimit", c.Proxy.ConnLimit, 0, 1000000)
	if c.Proxy.HTTPPort == c.Proxy.HTTPSPort {
		p.add("proxy.httpsPort", "must differ from proxy.httpPort, both are %d", c.Proxy.HTTPPort)
	}
}

func (c *Config) validateKubernetes(p *problems, prod bool) {
	switch {
	case strings.ContainsAny(c.Kubernetes.Kubeconfig, "\n{") || strings.Contains(c.Kubernetes.Kubeconfig, "apiVersion"):
		p.add("kubernetes.kubeconfig", "holds kubeconfig content, with its credentials, in plain text; give a file path here, or store the content encrypted instead: pulumi config rm --path kubernetes.kubeconfig && pulumi config set --secret kubeconfig < ~/.kube/config")
	case c.Kubernetes.Kubeconfig != "" && c.kubeconfigContent.set:
		p.add("kubernetes.kubeconfig", "and kubeconfig are both set; keep one: a path here, or the content in the secret kubeconfig")
	}
	p.secret("kubeconfig", c.kubeconfigContent, false)
	p.match("kubernetes.namespace", c.Kubernetes.Namespace, dnsLabel, "a namespace name (DNS-1123 label)")
	p.match("kubernetes.ingressNamespace", c.Kubernetes.IngressNamespace, dnsLabel, "a namespace name (DNS-1123 label)")
	if c.Kubernetes.IngressClass == "" {
		p.add("kubernetes.ingressClass", "must name the cluster's IngressClass, e.g. nginx or traefik")
	}
	p.oneOf("kubernetes.imagePullPolicy", c.Kubernetes.ImagePullPolicy, "IfNotPresent", "Always", "Never")
	for _, proxy := range c.Kubernetes.TrustedProxies {
		_, network, err := net.ParseCIDR(proxy)
		switch {
		case proxy == "*" || err == nil && network.IP.IsUnspecified():
			p.add("kubernetes.trustedProxies", "%q trusts every peer, so any pod (and, behind some controllers, any client) could forge X-Forwarded-For; name the ingress controller's addresses", proxy)
		case err != nil && net.ParseIP(proxy) == nil:
			p.add("kubernetes.trustedProxies", "%q is neither an IP address nor a CIDR such as 10.244.0.0/16", proxy)
		}
	}
	p.match("kubernetes.dnsNamespace", c.Kubernetes.DNSNamespace, dnsLabel, "a namespace name (DNS-1123 label)")
	for _, key := range []struct {
		name  string
		cidrs []string
	}{{"kubernetes.dnsCIDRs", c.Kubernetes.DNSCIDRs}, {"kubernetes.databaseCIDRs", c.Kubernetes.DatabaseCIDRs}} {
		for _, cidr := range key.cidrs {
			if _, _, err := net.ParseCIDR(cidr); err != nil {
				p.add(key.name, "%q is not a CIDR such as 10.20.0.0/16 (one address: 10.20.0.5/32)", cidr)
			}
		}
	}
	if prod && c.Kubernetes.NetworkPolicy && c.DB.Mode == service.DatabaseExternal && len(c.Kubernetes.DatabaseCIDRs) == 0 && net.ParseIP(c.DB.Host) == nil {
		p.add("kubernetes.databaseCIDRs", "is required in production with kubernetes.networkPolicy: a NetworkPolicy cannot name db.host (%s), and without the database's addresses the app may reach port %d anywhere; give the ranges your provider's database resolves to, e.g. [\"10.20.0.0/16\"]", c.DB.Host, c.DB.Port)
	}
	for _, k := range slices.Sorted(maps.Keys(c.Kubernetes.NodeSelector)) {
		if !labelKey.MatchString(k) {
			p.add("kubernetes.nodeSelector", "%q is not a label key ([prefix/]name, name up to 63 letters, digits, '-', '_', '.')", k)
		}
		if v := c.Kubernetes.NodeSelector[k]; !labelValue.MatchString(v) {
			p.add("kubernetes.nodeSelector", "%s: %q is not a label value (up to 63 letters, digits, '-', '_', '.')", k, v)
		}
	}
	if c.Kubernetes.HPA {
		p.between("kubernetes.hpa.minReplicas", c.Kubernetes.HPAMin, 1, 100)
		p.between("kubernetes.hpa.maxReplicas", c.Kubernetes.HPAMax, 1, 100)
		p.between("kubernetes.hpa.cpuTarget", c.Kubernetes.HPACPUTarget, 1, 100)
		if c.Kubernetes.HPAMin > c.Kubernetes.HPAMax {
			p.add("kubernetes.hpa.minReplicas", "must not exceed kubernetes.hpa.maxReplicas (%d), got %d", c.Kubernetes.HPAMax, c.Kubernetes.HPAMin)
		}
	}
}

func (c *Config) validateMonitoring(p *problems) {
	p.between("monitoring.downMinutes", c.Monitoring.DownMinutes, 1, 1440)
	p.between("monitoring.restartsPerHour", c.Monitoring.RestartsPerHour, 1, 1000)
	if f := c.Monitoring.ErrorRatio; !c.unparsed["monitoring.errorRatio"] && (f <= 0 || f >= 1) {
		p.add("monitoring.errorRatio", "must be %s, got %q", errorRatioWant, strconv.FormatFloat(f, 'f', -1, 64))
	}
	if f := c.Monitoring.P95Seconds; !c.unparsed["monitoring.p95Seconds"] && (f <= 0 || f > 600) {
		p.add("monitoring.p95Seconds", "must be %s, got %q", p95Want, strconv.FormatFloat(f, 'f', -1, 64))
	}
	if c.Monitoring.Enabled && c.Architecture == Kubernetes {
		p.match("monitoring.namespace", c.Monitoring.Namespace, dnsLabel, "a namespace name (DNS-1123 label)")
	}
	if _, err := monitoring.ParseDuration(c.Monitoring.Interval); err != nil {
		p.add("monitoring.interval", "must be a Prometheus duration such as 15s or 1m: %v", err)
	}
	c.validateAlerting(p)
	if c.Monitoring.Enabled && c.DB.Mode == service.DatabaseInCluster && c.Monitoring.PostgresExporterImage != "" {
		c.validateImageRef(p, "monitoring.postgresExporterImage", c.Monitoring.PostgresExporterImage)
	}
	if c.Monitoring.Enabled && c.Architecture == SingleServer {
		c.validateImageRef(p, "monitoring.prometheusImage", c.Monitoring.PrometheusImage)
		c.validateImageRef(p, "alerting.alertmanagerImage", c.Alerting.AlertmanagerImage)
		if c.DB.Mode == service.DatabaseContainer {
			c.validateImageRef(p, "monitoring.postgresExporterImage", c.Monitoring.PostgresExporterImage)
		}
		p.between("alerting.localPort", c.Alerting.LocalPort, 1, 65535)
		if c.Alerting.LocalPort == c.Monitoring.LocalPort {
			p.add("alerting.localPort", "must differ from monitoring.localPort (%d): Prometheus publishes its UI there", c.Monitoring.LocalPort)
		}
		p.match("monitoring.retention", c.Monitoring.Retention, retention, "a Prometheus duration such as 15d, 12h or 4w")
		p.between("monitoring.localPort", c.Monitoring.LocalPort, 1, 65535)
	}
	validateLogDriver(p, c.Logging.Driver)
	c.validateLogStore(p)
}

// validateLogStore checks logging.aggregate's settings.
func (c *Config) validateLogStore(p *problems) {
	if !c.Logging.Aggregate {
		return
	}
	if c.Architecture == Kubernetes {
		p.add("logging.aggregate", "is for a single server; on Kubernetes the pods write JSON lines to stdout for the cluster's collector (Fluent Bit, Vector, Promtail), see docs/monitoring.md")
		return
	}
	if c.Logging.Driver != "json-file" || len(c.Logging.Options) > 0 {
		p.add("logging.aggregate", "sends every container's lines to VictoriaLogs through the syslog driver, but logging.driver is %q (options %v): set one of them", c.Logging.Driver, c.Logging.Options)
	}
	c.validateImageRef(p, "logging.victoriaLogsImage", c.Logging.VictoriaLogsImage)
	p.match("logging.retention", c.Logging.Retention, retention, "a duration such as 7d, 12h, 4w or 1y")
	p.between("logging.localPort", c.Logging.LocalPort, 1, 65535)
	p.between("logging.syslogPort", c.Logging.SyslogPort, 1, 65535)
	taken := map[int]string{c.Proxy.HTTPPort: "proxy.httpPort", c.Proxy.HTTPSPort: "proxy.httpsPort"}
	if c.Monitoring.Enabled {
		taken[c.Monitoring.LocalPort], taken[c.Alerting.LocalPort] = "monitoring.localPort", "alerting.localPort"
	}
	if key, ok := taken[c.Logging.LocalPort]; ok {
		p.add("logging.localPort", "must differ from %s (%d), which publishes on the same host", key, c.Logging.LocalPort)
	}
}

// validateAlerting checks the receivers and the routing intervals; the
// secret URLs are checked for their form without ever being printed.
func (c *Config) validateAlerting(p *problems) {
	for _, k := range []struct {
		key string
		v   secretValue
	}{{"alertWebhookUrl", c.alertWebhookURL}, {"alertSlackUrl", c.alertSlackURL}} {
		p.secret(k.key, k.v, false)
		if k.v.set {
			if u, err := url.Parse(k.v.plain); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				p.add(k.key, "must be an http(s) URL such as https://hooks.example.com/...; the value is not shown because it is a secret")
			}
		}
	}
	p.secret("alertSmtpPassword", c.alertSMTPPassword, false)
	if c.Alerting.EmailTo != "" || c.Alerting.EmailFrom != "" || c.Alerting.SMTPHost != "" {
		for _, k := range []struct{ key, v string }{{"alerting.emailTo", c.Alerting.EmailTo}, {"alerting.emailFrom", c.Alerting.EmailFrom}} {
			if _, err := mail.ParseAddress(k.v); err != nil {
				p.add(k.key, "must be an e-mail address such as oncall@example.com when alert e-mails are configured, got %q", k.v)
			}
		}
		if _, port, err := net.SplitHostPort(c.Alerting.SMTPHost); err != nil || port == "" {
			p.add("alerting.smtpHost", "must be host:port such as smtp.example.com:587 when alert e-mails are configured, got %q", c.Alerting.SMTPHost)
		}
	}
	if c.Alerting.SMTPUsername != "" && !c.alertSMTPPassword.set {
		p.add("alertSmtpPassword", "is required with alerting.smtpUsername; run: pulumi config set --secret alertSmtpPassword <value>")
	}
	for _, k := range []struct{ key, v string }{{"alerting.groupWait", c.Alerting.GroupWait}, {"alerting.groupInterval", c.Alerting.GroupInterval}, {"alerting.repeatInterval", c.Alerting.RepeatInterval}} {
		if _, err := monitoring.ParseDuration(k.v); err != nil {
			p.add(k.key, "must be a duration such as 30s, 5m or 4h, got %q", k.v)
		}
	}
}

// dockerLogDrivers are the log drivers built into the Docker engine on
// Linux; anything else is a plugin, named repository/name[:tag].
var dockerLogDrivers = []string{"json-file", "local", "none", "syslog", "journald", "gelf", "fluentd", "awslogs", "splunk", "gcplogs", "logentries"}

var logPlugin = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)+(:[A-Za-z0-9._-]+)?$`)

// validateLogDriver refuses a typo before anything is created: Docker
// would refuse it only when it creates the first container, mid-update.
func validateLogDriver(p *problems, driver string) {
	if slices.Contains(dockerLogDrivers, driver) || logPlugin.MatchString(driver) {
		return
	}
	best, bestDist := "", 4
	for _, d := range dockerLogDrivers {
		if dist := editDistance(driver, d); dist < bestDist {
			best, bestDist = d, dist
		}
	}
	hint := ""
	if best != "" {
		hint = fmt.Sprintf(" (did you mean %s?)", best)
	}
	p.add("logging.driver", "%q is not a Docker log driver%s; built in: %s; a plugin is named repository/name[:tag], e.g. grafana/loki-docker-driver:3.4",
		driver, hint, strings.Join(dockerLogDrivers, ", "))
}
