package stacks

import (
	"strings"
	"testing"

	"github.com/fastapi-infra/fastapi-infra/components/service"
	"github.com/fastapi-infra/fastapi-infra/internal/mocktest"
)

func TestShippedStackFilesValidate(t *testing.T) {
	for _, stack := range []string{"dev", "prod"} {
		t.Run(stack, func(t *testing.T) {
			if _, err := run(t, stack, stackConfig(t, stack)); err != nil {
				t.Fatalf("Pulumi.%s.yaml does not validate:\n%v", stack, err)
			}
		})
	}
}

// TestInvalidConfig runs the program on one bad value at a time and expects
// the exact message, naming the full key, and not a single resource.
func TestInvalidConfig(t *testing.T) {
	const tlsCert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	cases := []struct {
		name, stack string
		edit        func(mocktest.Config) mocktest.Config
		want        string
	}{
		{"unknown architecture", "dev", set("architecture", "swarm"),
			`fastapi-infra:architecture: must be one of single-server, kubernetes, got "swarm"`},
		{"zero replicas", "dev", set("app.replicas", "0"),
			`fastapi-infra:app.replicas: must be between 1 and 100, got 0`},
		{"negative replicas", "prod", set("app.replicas", "-2"),
			`fastapi-infra:app.replicas: must be between 1 and 100, got -2`},
		{"huge replicas", "dev", set("app.replicas", "5000"),
			`fastapi-infra:app.replicas: must be between 1 and 100, got 5000`},
		{"replicas beyond int", "dev", set("app.replicas", "99999999999999999999"),
			`fastapi-infra:app.replicas: must be a whole number, got "99999999999999999999"`},
		{"replicas not a number", "dev", set("app.replicas", "three"),
			`fastapi-infra:app.replicas: must be a whole number, got "three"`},
		{"too many workers", "dev", set("app.workers", "65"),
			`fastapi-infra:app.workers: must be between 1 and 64, got 65`},
		{"malformed cpu", "dev", set("app.cpu", "half"),
			`fastapi-infra:app.cpu: must be a CPU quantity such as 500m, 0.5 or 2, got "half"`},
		{"zero cpu", "prod", set("app.cpu", "0"),
			`fastapi-infra:app.cpu: must be between 10m and 64 cores, got "0"`},
		{"malformed memory", "prod", set("app.memory", "512MB"),
			`fastapi-infra:app.memory: must be a memory quantity such as 512Mi, 1Gi or 512M, got "512MB"`},
		{"tiny memory", "dev", set("app.memory", "1Mi"),
			`fastapi-infra:app.memory: must be at least 32Mi for a Python process, got "1Mi"`},
		{"storage class with capitals", "prod", func(c mocktest.Config) mocktest.Config {
			return c.Set(FullKey("environment"), "development").Set(FullKey("db.mode"), "in-cluster").Without(FullKey("db.caCert")).Set(FullKey("db.storageClass"), "Fast_SSD")
		},
			`fastapi-infra:db.storageClass: must be a StorageClass name (lower-case letters, digits, '-' and '.'), or empty for the cluster's default, got "Fast_SSD"`},
		{"tiny database memory", "dev", set("db.memory", "64Mi"),
			`fastapi-infra:db.memory: must be at least 128Mi for PostgreSQL's shared buffers and a few connections, got "64Mi"`},
		{"backup schedule with four fields", "dev", set("db.backup.schedule", "30 3 * *"),
			`fastapi-infra:db.backup.schedule: must be a cron expression of 5 fields (minute hour day-of-month month day-of-week, UTC) such as "30 3 * * *", got "30 3 * *"; or empty for no backups`},
		{"backup schedule out of range", "dev", set("db.backup.schedule", "0 24 * * *"),
			`fastapi-infra:db.backup.schedule: field 2 (hour, 0-23) of "0 24 * * *": "24" is outside 0-23; or empty for no backups`},
		{"no backup kept", "dev", set("db.backup.keep", "0"),
			`fastapi-infra:db.backup.keep: must be between 1 and 1000, got 0`},
		{"malformed database cpu", "dev", set("db.cpu", "two"),
			`fastapi-infra:db.cpu: must be a CPU quantity such as 500m, 0.5 or 2, got "two"`},
		{"domain with scheme", "prod", set("domain", "https://api.example.com"),
			`fastapi-infra:domain: must be a host name such as api.example.com (letters, digits, '-' and '.'; no scheme, port or path), got "https://api.example.com"`},
		{"domain with bad label", "dev", set("domain", "-api.example.com"),
			`fastapi-infra:domain: must be a host name such as api.example.com (letters, digits, '-' and '.'; no scheme, port or path), got "-api.example.com"`},
		{"localhost in production", "prod", set("domain", "localhost"),
			`fastapi-infra:domain: must be a public host name in production, got "localhost"`},
		{"image without tag", "dev", set("app.image", "ghcr.io/acme/api"),
			`fastapi-infra:app.image: must pin a tag or digest (repository:tag or repository@sha256:<digest>, e.g. ghcr.io/acme/api:1.4.2), got "ghcr.io/acme/api"`},
		{"image with bad digest", "prod", set("app.image", "ghcr.io/acme/api@sha256:1234"),
			`fastapi-infra:app.image: has a malformed digest (repository:tag or repository@sha256:<digest>, e.g. ghcr.io/acme/api:1.4.2), got "ghcr.io/acme/api@sha256:1234"`},
		{"latest in production", "prod", set("app.image", "ghcr.io/acme/api:latest"),
			`fastapi-infra:app.image: must not use :latest in production (it changes under a running release); pin a version or digest, got "ghcr.io/acme/api:latest"`},
		{"relative health path", "dev", set("health.livePath", "health/live"),
			`fastapi-infra:health.livePath: must be an absolute URL path starting with '/', got "health/live"`},
		{"port out of range", "prod", set("app.port", "70000"),
			`fastapi-infra:app.port: must be between 1 and 65535, got 70000`},
		{"zero port", "dev", set("app.port", "0"),
			`fastapi-infra:app.port: must be between 1 and 65535, got 0`},
		{"password in plain text", "dev", func(c mocktest.Config) mocktest.Config { return c.Set(FullKey("dbPassword"), "hunter2") },
			`fastapi-infra:dbPassword: is stored in plain text in the stack file; store it encrypted instead: pulumi config set --secret dbPassword <value>`},
		{"password missing", "prod", func(c mocktest.Config) mocktest.Config { return c.Without(FullKey("dbPassword")) },
			`fastapi-infra:dbPassword: is required and not set; run: pulumi config set --secret dbPassword <value>`},
		{"tls key in plain text", "dev", func(c mocktest.Config) mocktest.Config {
			return c.Set(FullKey("tls.mode"), "provided").Secret(FullKey("tlsCert"), tlsCert).Set(FullKey("tlsKey"), "-----BEGIN PRIVATE KEY-----")
		}, `fastapi-infra:tlsKey: is stored in plain text in the stack file; store it encrypted instead: pulumi config set --secret tlsKey <value>`},
		{"secret env in plain text", "dev", set("secretEnv", `{"API_KEY":"abc"}`),
			`fastapi-infra:secretEnv: is stored in plain text in the stack file; store each value encrypted: pulumi config set --secret --path 'secretEnv.NAME' <value>`},
		{"reserved env", "dev", set("app.env", `{"DATABASE_URL":"postgres://x"}`),
			`fastapi-infra:app.env: DATABASE_URL is set by the program from the db.* keys; remove it here`},
		{"unknown key", "dev", set("app.replica", "3"),
			"fastapi-infra:app.replica: unknown key (did you mean app.replicas?); `pulumi config rm --path app.replica` removes it, docs/configuration.md lists every key"},
		{"unknown top-level key", "dev", set("archtecture", "kubernetes"),
			"fastapi-infra:archtecture: unknown key (did you mean architecture?); `pulumi config rm archtecture` removes it, docs/configuration.md lists every key"},
		{"flat dotted key", "dev", func(c mocktest.Config) mocktest.Config { return c.SetFlat(FullKey("app.replicas"), "3") },
			"fastapi-infra:app.replicas: is a flat key, but dotted keys are paths; the program reads it from fastapi-infra:app. Move it: pulumi config rm app.replicas && pulumi config set --path app.replicas <value>"},
		{"init container on a single server", "dev", set("migration.strategy", "init-container"),
			`fastapi-infra:migration.strategy: init-container is for Kubernetes; a single server runs job (a one-shot container before the app)`},
		{"empty migration command", "dev", set("migration.command", `[]`),
			`fastapi-infra:migration.command: must be a non-empty exec-form list such as ["alembic", "upgrade", "head"], or set migration.strategy to none`},
		{"hpa bounds crossed", "prod", set("kubernetes.hpa.minReplicas", "20"),
			`fastapi-infra:kubernetes.hpa.minReplicas: must not exceed kubernetes.hpa.maxReplicas (12), got 20`},
		{"single server without a rollout key", "dev", func(c mocktest.Config) mocktest.Config { return c.Without(FullKey("rolloutKey")) },
			`fastapi-infra:rolloutKey: is required for a single server and not set; ./infra generates it, or run: pulumi config set --secret rolloutKey "$(openssl rand -hex 32)"`},
		{"rollout key in plain text", "dev", func(c mocktest.Config) mocktest.Config {
			return c.Set(FullKey("rolloutKey"), "0123456789abcdef0123456789abcdef")
		}, `fastapi-infra:rolloutKey: is stored in plain text in the stack file; store it encrypted instead: pulumi config set --secret rolloutKey "$(openssl rand -hex 32)"`},
		{"short rollout key", "dev", func(c mocktest.Config) mocktest.Config { return c.Secret(FullKey("rolloutKey"), "abc") },
			`fastapi-infra:rolloutKey: must be a random value of at least 32 characters; run: pulumi config set --secret rolloutKey "$(openssl rand -hex 32)"`},
		{"kubeconfig content in the plain key", "prod", set("kubernetes.kubeconfig", "apiVersion: v1\nkind: Config\nusers: [...]"),
			`fastapi-infra:kubernetes.kubeconfig: holds kubeconfig content, with its credentials, in plain text; give a file path here, or store the content encrypted instead: pulumi config rm --path kubernetes.kubeconfig && pulumi config set --secret kubeconfig < ~/.kube/config`},
		{"kubeconfig path and content", "prod", func(c mocktest.Config) mocktest.Config {
			return c.Set(FullKey("kubernetes.kubeconfig"), "/home/ci/.kube/config").Secret(FullKey("kubeconfig"), "apiVersion: v1")
		}, `fastapi-infra:kubernetes.kubeconfig: and kubeconfig are both set; keep one: a path here, or the content in the secret kubeconfig`},
		{"kubeconfig content not encrypted", "prod", set("kubeconfig", "apiVersion: v1"),
			`fastapi-infra:kubeconfig: is stored in plain text in the stack file; store it encrypted instead: pulumi config set --secret kubeconfig <value>`},
		{"loopback database host on Kubernetes", "prod", set("db.host", "127.0.0.1"),
			`fastapi-infra:db.host: "127.0.0.1" is the loopback address: in a pod it is the pod itself, not the database; give the database's host name or address as the pods reach it`},
		{"localhost database host on Kubernetes", "prod", set("db.host", "localhost"),
			`fastapi-infra:db.host: "localhost" is the loopback address: in a pod it is the pod itself, not the database; give the database's host name or address as the pods reach it`},
		{"log driver typo", "dev", set("logging.driver", "jsonfile"),
			`fastapi-infra:logging.driver: "jsonfile" is not a Docker log driver (did you mean json-file?); built in: json-file, local, none, syslog, journald, gelf, fluentd, awslogs, splunk, gcplogs, logentries; a plugin is named repository/name[:tag], e.g. grafana/loki-docker-driver:3.4`},
		{"trusted proxy not an address", "prod", set("kubernetes.trustedProxies", `["10.0.0.0/33"]`),
			`fastapi-infra:kubernetes.trustedProxies: "10.0.0.0/33" is neither an IP address nor a CIDR such as 10.244.0.0/16`},
		{"every peer trusted", "prod", set("kubernetes.trustedProxies", `["*"]`),
			`fastapi-infra:kubernetes.trustedProxies: "*" trusts every peer, so any pod (and, behind some controllers, any client) could forge X-Forwarded-For; name the ingress controller's addresses`},
		{"negative rate limit", "dev", set("proxy.rateLimit", "-1"),
			`fastapi-infra:proxy.rateLimit: must be between 0 and 1000000, got -1`},
		{"node selector with a bad key", "prod", set("kubernetes.nodeSelector", `{"pool name": "api"}`),
			`fastapi-infra:kubernetes.nodeSelector: "pool name" is not a label key ([prefix/]name, name up to 63 letters, digits, '-', '_', '.')`},
		{"node selector with a bad value", "prod", set("kubernetes.nodeSelector", `{"example.com/pool": "api pool"}`),
			`fastapi-infra:kubernetes.nodeSelector: example.com/pool: "api pool" is not a label value (up to 63 letters, digits, '-', '_', '.')`},
		{"self-signed in production", "prod", func(c mocktest.Config) mocktest.Config {
			return c.Set(FullKey("architecture"), "single-server").Set(FullKey("tls.mode"), "self-signed").Set(FullKey("db.mode"), "container")
		}, `fastapi-infra:tls.mode: self-signed certificates are for development; use provided or acme in production`},
		{"production single server without a TLS choice", "prod", func(c mocktest.Config) mocktest.Config {
			return c.Set(FullKey("architecture"), "single-server").Without(FullKey("tls.mode")).Set(FullKey("db.mode"), "container")
		}, `fastapi-infra:tls.mode: must be chosen for a production single server: provided (tlsCert/tlsKey) or acme (with proxy.kind traefik)`},
		{"in-cluster database in production", "prod", set("db.mode", "in-cluster"),
			`fastapi-infra:db.mode: in-cluster PostgreSQL is for non-production clusters; use external (a managed database) in production`},
		{"tls mode of the other architecture", "prod", set("tls.mode", "self-signed"),
			`fastapi-infra:tls.mode: must be one of secret, cert-manager, provided, got "self-signed"`},
		{"acme without traefik", "dev", func(c mocktest.Config) mocktest.Config {
			return c.Set(FullKey("tls.mode"), "acme").Set(FullKey("tls.acmeEmail"), "ops@example.com").Set(FullKey("domain"), "api.example.com")
		}, `fastapi-infra:tls.mode: acme needs proxy.kind traefik (it runs the ACME client), got proxy.kind "nginx"`},
		{"acme server not https", "dev", func(c mocktest.Config) mocktest.Config {
			return c.Set(FullKey("tls.mode"), "acme").Set(FullKey("proxy.kind"), "traefik").Set(FullKey("tls.acmeEmail"), "ops@example.com").
				Set(FullKey("domain"), "api.example.com").Set(FullKey("tls.acmeServer"), "http://ca.internal/directory")
		}, `fastapi-infra:tls.acmeServer: must be the https:// URL of an ACME directory, e.g. https://acme-staging-v02.api.letsencrypt.org/directory, got "http://ca.internal/directory"`},
		{"acme CA not PEM", "dev", func(c mocktest.Config) mocktest.Config {
			return c.Set(FullKey("tls.mode"), "acme").Set(FullKey("proxy.kind"), "traefik").Set(FullKey("tls.acmeEmail"), "ops@example.com").
				Set(FullKey("domain"), "api.example.com").Set(FullKey("tls.acmeCA"), "/etc/ssl/ca.pem")
		}, `fastapi-infra:tls.acmeCA: must be PEM CA certificate(s) (-----BEGIN CERTIFICATE-----), or empty for the system roots`},
		{"bad subnet", "dev", set("docker.subnet", "10.0.0.0/8"),
			`fastapi-infra:docker.subnet: must be an IPv4 network of /16 to /28 such as 172.30.57.0/24, got "10.0.0.0/8"`},
		{"docker host on plain tcp", "dev", set("docker.host", "tcp://10.0.0.5:2375"),
			`fastapi-infra:docker.host: is tcp://10.0.0.5:2375 without TLS: the Engine API on a plain TCP port is root on the host for whoever reaches it; set docker.certPath to the folder with ca.pem, cert.pem and key.pem (the engine started with --tlsverify), or use ssh://user@host`},
		{"docker certificate for a socket", "dev", set("docker.certPath", "/etc/docker-client"),
			`fastapi-infra:docker.certPath: is set, but docker.host is unix:///var/run/docker.sock: the certificate is for a tcp:// host; remove docker.certPath`},
		{"bad docker host", "dev", set("docker.host", "/var/run/docker.sock"),
			`fastapi-infra:docker.host: must be unix:///path/to/docker.sock, ssh://user@host or tcp://host:port, got "/var/run/docker.sock"`},
		{"not a boolean", "prod", set("kubernetes.pdb", "yes please"),
			`fastapi-infra:kubernetes.pdb: must be true or false, got "yes please"`},
		{"error ratio out of range", "prod", set("monitoring.errorRatio", "5%"),
			`fastapi-infra:monitoring.errorRatio: must be a share between 0 and 1 such as 0.05, got "5%"`},
		{"bad retention", "dev", func(c mocktest.Config) mocktest.Config {
			return c.Set(FullKey("monitoring.enabled"), "true").Set(FullKey("monitoring.retention"), "forever")
		}, `fastapi-infra:monitoring.retention: must be a Prometheus duration such as 15d, 12h or 4w, got "forever"`},
		{"webhook URL in plain text", "dev", set("alertWebhookUrl", "https://hooks.example.com/hunter2"),
			`fastapi-infra:alertWebhookUrl: is stored in plain text in the stack file; store it encrypted instead: pulumi config set --secret alertWebhookUrl <value>`},
		{"webhook URL not a URL", "dev", func(c mocktest.Config) mocktest.Config {
			return c.Secret(FullKey("alertSlackUrl"), "hooks.slack.com/hunter2")
		}, `fastapi-infra:alertSlackUrl: must be an http(s) URL such as https://hooks.example.com/...; the value is not shown because it is a secret`},
		{"alert e-mail without a server", "prod", set("alerting.emailTo", "oncall@example.com"),
			`fastapi-infra:alerting.smtpHost: must be host:port such as smtp.example.com:587 when alert e-mails are configured, got ""`},
		{"SMTP login without password", "prod", func(c mocktest.Config) mocktest.Config {
			return c.Set(FullKey("alerting.emailTo"), "oncall@example.com").Set(FullKey("alerting.emailFrom"), "alerts@example.com").
				Set(FullKey("alerting.smtpHost"), "smtp.example.com:587").Set(FullKey("alerting.smtpUsername"), "alerts")
		}, `fastapi-infra:alertSmtpPassword: is required with alerting.smtpUsername; run: pulumi config set --secret alertSmtpPassword <value>`},
		{"bad repeat interval", "prod", set("alerting.repeatInterval", "hourly"),
			`fastapi-infra:alerting.repeatInterval: must be a duration such as 30s, 5m or 4h, got "hourly"`},
		{"bad scrape interval", "dev", set("monitoring.interval", "often"),
			`fastapi-infra:monitoring.interval: must be a Prometheus duration such as 15s or 1m: "often" is not a duration such as 30s, 5m or 4h`},
		{"Alertmanager on Prometheus's port", "dev", func(c mocktest.Config) mocktest.Config {
			return c.Set(FullKey("monitoring.enabled"), "true").Set(FullKey("alerting.localPort"), "9090")
		}, `fastapi-infra:alerting.localPort: must differ from monitoring.localPort (9090): Prometheus publishes its UI there`},
		{"external database without host", "prod", set("db.host", ""),
			`fastapi-infra:db.host: is required for db.mode external (the managed database's host name)`},
		{"app role that owns the database", "dev", set("db.appUser", "app"),
			`fastapi-infra:db.appUser: is db.user ("app"): the app must not connect as the role that owns the database and runs the migrations; give another role, or leave it empty`},
		{"app role too long for its logins", "dev", set("db.appUser", strings.Repeat("a", 53)),
			`fastapi-infra:db.appUser: is 53 characters ("` + strings.Repeat("a", 53) + `", <db.user>_rw when not set); a single server's app logs in as it plus an 11-character suffix, and PostgreSQL names have at most 63: give one of at most 52`},
		{"app role not an identifier", "dev", set("db.appUser", "app-rw"),
			`fastapi-infra:db.appUser: must be a PostgreSQL identifier (letters, digits, '_', not starting with a digit); or empty for <db.user>_rw, got "app-rw"`},
		{"external app role without its password", "prod", func(c mocktest.Config) mocktest.Config { return c.Without(FullKey("dbAppPassword")) },
			`fastapi-infra:dbAppPassword: is required and not set; run: pulumi config set --secret dbAppPassword <value>`},
		{"test routes in production", "prod", set("app.testRoutes", "true"),
			`fastapi-infra:app.testRoutes: test routes are refused in production (the example app's /_meta/slow holds a worker thread up to 30 s, and 40 such requests per worker make the replicas unready): remove app.testRoutes and app.env.TEST_ROUTES`},
		{"test routes through app.env in production", "prod", set("app.env.TEST_ROUTES", "1"),
			`fastapi-infra:app.testRoutes: test routes are refused in production (the example app's /_meta/slow holds a worker thread up to 30 s, and 40 such requests per worker make the replicas unready): remove app.testRoutes and app.env.TEST_ROUTES`},
		{"production policy without the database's addresses", "prod", func(c mocktest.Config) mocktest.Config {
			return c.Without(FullKey("kubernetes.databaseCIDRs"))
		}, `fastapi-infra:kubernetes.databaseCIDRs: is required in production with kubernetes.networkPolicy: a NetworkPolicy cannot name db.host (postgres.prod.example.internal), and without the database's addresses the app may reach port 5432 anywhere; give the ranges your provider's database resolves to, e.g. ["10.20.0.0/16"]`},
		{"a database range that is no CIDR", "prod", set("kubernetes.databaseCIDRs", `["10.20.0.0"]`),
			`fastapi-infra:kubernetes.databaseCIDRs: "10.20.0.0" is not a CIDR such as 10.20.0.0/16 (one address: 10.20.0.5/32)`},
		{"production app on the owner's role", "prod", func(c mocktest.Config) mocktest.Config {
			return c.Without(FullKey("db.appUser")).Without(FullKey("dbAppPassword"))
		}, `fastapi-infra:db.appUser: must name the app's own role for an external database in production (without it the app connects as db.user, which owns the schema): create a role that may only read and write rows, set db.appUser to it and dbAppPassword to its password`},
		{"app password in plain text", "dev", set("dbAppPassword", "hunter2"),
			`fastapi-infra:dbAppPassword: is stored in plain text in the stack file; store it encrypted instead: pulumi config set --secret dbAppPassword <value>`},
		{"production database not verified", "prod", func(c mocktest.Config) mocktest.Config {
			return c.Set(FullKey("db.sslmode"), "require").Without(FullKey("db.caCert"))
		}, `fastapi-infra:db.sslmode: is require: in production the app must verify the database server; set verify-full (the production default) and db.caCert to your provider's CA bundle`},
		{"verify-full without a CA", "prod", func(c mocktest.Config) mocktest.Config { return c.Without(FullKey("db.caCert")) },
			`fastapi-infra:db.caCert: is required with db.sslmode verify-full: the PEM of the CA that signed the database's certificate (your provider publishes it); set it with: pulumi config set --path db.caCert -- "$(cat ca.pem)"`},
		{"CA that is not PEM", "prod", set("db.caCert", "/etc/ssl/rds-ca.pem"),
			`fastapi-infra:db.caCert: must be PEM CA certificate(s) (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)`},
		{"CA that does not parse", "prod", set("db.caCert", tlsCert),
			`fastapi-infra:db.caCert: certificate 1 does not parse: x509: malformed certificate`},
		{"CA beside a private key", "prod", func(c mocktest.Config) mocktest.Config {
			ca := testCA(t)
			return c.Set(FullKey("db.caCert"), string(ca.CertPEM)+string(ca.KeyPEM))
		}, `fastapi-infra:db.caCert: must hold only PEM certificates, found a "PRIVATE KEY" block`},
		{"CA that nothing verifies with", "dev", func(c mocktest.Config) mocktest.Config {
			return c.Set(FullKey("db.mode"), "external").Set(FullKey("db.host"), "db.example.com").Set(FullKey("db.caCert"), string(testCA(t).CertPEM))
		}, `fastapi-infra:db.caCert: is set but db.sslmode is prefer, which does not verify the server: set db.sslmode verify-full, or remove db.caCert`},
		{"log store on Kubernetes", "prod", set("logging.aggregate", "true"),
			`fastapi-infra:logging.aggregate: is for a single server; on Kubernetes the pods write JSON lines to stdout for the cluster's collector (Fluent Bit, Vector, Promtail), see docs/monitoring.md`},
		{"log store and another log driver", "dev", func(c mocktest.Config) mocktest.Config {
			return c.Set(FullKey("logging.aggregate"), "true").Set(FullKey("logging.driver"), "fluentd")
		}, `fastapi-infra:logging.aggregate: sends every container's lines to VictoriaLogs through the syslog driver, but logging.driver is "fluentd" (options map[]): set one of them`},
		{"log retention not a duration", "dev", func(c mocktest.Config) mocktest.Config {
			return c.Set(FullKey("logging.aggregate"), "true").Set(FullKey("logging.retention"), "a week")
		}, `fastapi-infra:logging.retention: must be a duration such as 7d, 12h, 4w or 1y, got "a week"`},
		{"log API on the proxy's port", "dev", func(c mocktest.Config) mocktest.Config {
			return c.Set(FullKey("logging.aggregate"), "true").Set(FullKey("logging.localPort"), "8443")
		}, `fastapi-infra:logging.localPort: must differ from proxy.httpsPort (8443), which publishes on the same host`},
		{"backup endpoint without scheme", "dev", withRepository(set("db.backup.s3.endpoint", "s3.example.com")),
			`fastapi-infra:db.backup.s3.endpoint: must be https://host[:port] of the S3 API such as https://s3.eu-west-1.amazonaws.com (TLS is required and verified; no path), got "s3.example.com"`},
		{"backup endpoint over plain HTTP", "dev", withRepository(set("db.backup.s3.endpoint", "http://s3.example.com")),
			`fastapi-infra:db.backup.s3.endpoint: must be https://host[:port] of the S3 API such as https://s3.eu-west-1.amazonaws.com (TLS is required and verified; no path), got "http://s3.example.com"`},
		{"backup endpoint by address", "dev", withRepository(set("db.backup.s3.endpoint", "https://10.0.0.5:9000")),
			`fastapi-infra:db.backup.s3.endpoint: must name the store's host, not its address: pgBackRest verifies the certificate by name only. Put the address in db.backup.s3.hostAddress, got "https://10.0.0.5:9000"`},
		{"backup bucket that cannot be one", "dev", withRepository(set("db.backup.s3.bucket", "My_Backups")),
			`fastapi-infra:db.backup.s3.bucket: must be an S3 bucket name: 3-63 lower-case letters, digits, '.' and '-', starting and ending with a letter or digit, no '..', not an IP address, got "My_Backups"`},
		{"backup bucket that is an address", "dev", withRepository(set("db.backup.s3.bucket", "192.168.1.10")),
			`fastapi-infra:db.backup.s3.bucket: must be an S3 bucket name: 3-63 lower-case letters, digits, '.' and '-', starting and ending with a letter or digit, no '..', not an IP address, got "192.168.1.10"`},
		{"backup key in plain text", "dev", func(c mocktest.Config) mocktest.Config {
			return withRepository(nil)(c).Set(FullKey("backupS3SecretKey"), "plain-secret-key")
		}, `fastapi-infra:backupS3SecretKey: is stored in plain text in the stack file; store it encrypted instead: pulumi config set --secret backupS3SecretKey <value>`},
		{"backup without its encryption key", "dev", func(c mocktest.Config) mocktest.Config {
			return withRepository(nil)(c).Without(FullKey("backupEncryptionKey"))
		}, `fastapi-infra:backupEncryptionKey: is required and not set; run: pulumi config set --secret backupEncryptionKey <value>`},
		{"backup encryption key too short", "dev", func(c mocktest.Config) mocktest.Config {
			return withRepository(nil)(c).Secret(FullKey("backupEncryptionKey"), "short")
		}, `fastapi-infra:backupEncryptionKey: must be at least 20 characters (it guards every backup in the repository): pulumi config set --secret backupEncryptionKey "$(openssl rand -base64 32)"`},
		{"backup host address that is a name", "dev", withRepository(set("db.backup.s3.hostAddress", "objects.internal")),
			`fastapi-infra:db.backup.s3.hostAddress: must be an IP address such as 10.0.0.5 (the endpoint's host name is written into the database's /etc/hosts with it), got "objects.internal"`},
		{"backup keys without an endpoint", "dev", set("db.backup.s3.bucket", "db-backups"),
			`fastapi-infra:db.backup.s3.bucket: is set but db.backup.s3.endpoint is not: set the endpoint (https://host[:port] of the S3 API), or remove db.backup.s3.bucket`},
		{"archive timeout beyond a minute", "dev", withRepository(set("db.backup.archiveTimeout", "300")),
			`fastapi-infra:db.backup.archiveTimeout: must be between 1 and 60, got 300`},
		{"backup repository for an external database", "prod", withRepository(nil),
			`fastapi-infra:db.backup.s3.endpoint: is for the stack's own database; an external (managed) database is backed up by its provider, point-in-time recovery included: remove db.backup.s3.*`},
		{"production single server with backups on its host", "prod", func(c mocktest.Config) mocktest.Config {
			return c.Set(FullKey("architecture"), "single-server").Set(FullKey("db.mode"), "container")
		}, `fastapi-infra:db.backup.s3.endpoint: is required for a production single server: its backups must survive the loss of the host. Set db.backup.s3.endpoint, db.backup.s3.bucket and the secrets backupS3AccessKey, backupS3SecretKey and backupEncryptionKey; or set db.backup.sameHost true to keep them on this host knowingly`},
		{"TLS to the stack's own database", "dev", set("db.sslmode", "verify-full"),
			`fastapi-infra:db.sslmode: verify-full needs a server with TLS; the stack's own database (db.mode container) serves none and is reached on its private network only: use prefer, or an external database`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := run(t, tc.stack, tc.edit(stackConfig(t, tc.stack)))
			if err == nil {
				t.Fatalf("accepted; want error %q", tc.want)
			}
			if !containsLine(err.Error(), tc.want) {
				t.Fatalf("error does not say\n  %s\ngot:\n%v", tc.want, err)
			}
			if strings.Contains(err.Error(), testPassword) || strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error shows a secret:\n%v", err)
			}
			if all := rec.All(); len(all) != 0 {
				t.Fatalf("bad config still registered %d resources, first %s %s", len(all), all[0].Type, all[0].Name)
			}
		})
	}
}

// TestArchitectureDefaults: a stack that only says "kubernetes" (as the
// README's staging example) gets a TLS Secret and an in-cluster database in
// development, a managed database in production.
func TestArchitectureDefaults(t *testing.T) {
	staging := mocktest.Config{Values: map[string]string{
		FullKey("architecture"): "kubernetes",
		FullKey("domain"):       "staging.example.com",
		FullKey("app"):          `{"image": "ghcr.io/acme/fastapi-app:1.4.2"}`,
	}}.Secret(FullKey("dbPassword"), testPassword)
	rec, err := run(t, "staging", staging)
	if err != nil {
		t.Fatalf("the README's staging example does not validate:\n%v", err)
	}
	rec.One(t, "kubernetes:apps/v1:StatefulSet") // in-cluster PostgreSQL
	rec.One(t, "kubernetes:networking.k8s.io/v1:Ingress").Equal(t, "spec.tls[0].secretName", "fastapi-tls")

	prod := staging.Set(FullKey("environment"), "production").Set(FullKey("db.host"), "db.internal")
	if _, err := run(t, "prod", prod); err == nil || !strings.Contains(err.Error(), FullKey("db.caCert")+": is required with db.sslmode verify-full") {
		t.Errorf("production verifies an external database by default, so it needs db.caCert; got %v", err)
	}
	rec, err = run(t, "prod", prod.Set(FullKey("db.caCert"), string(testCA(t).CertPEM)).Set(FullKey("db.appUser"), "app_runtime").Secret(FullKey("dbAppPassword"), testPassword+"-app"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(rec.ByType("kubernetes:apps/v1:StatefulSet")); n != 0 {
		t.Errorf("production defaulted to an in-cluster database")
	}
	if url := rec.Named(t, "fastapi-env-secret").Str(t, "stringData.DATABASE_URL"); !strings.HasSuffix(url, "?sslmode=verify-full&sslrootcert=/run/secrets/DB_CA_CERT") {
		t.Errorf("production's DATABASE_URL does not verify the server: %s", url)
	}
	// The stack's own database: its app role, derived password, no TLS.
	rec, _ = run(t, "staging", staging)
	if url := rec.Named(t, "fastapi-env-secret").Str(t, "stringData.DATABASE_URL"); !strings.HasPrefix(url, "postgresql://app_rw:") || !strings.HasSuffix(url, "?sslmode=prefer") {
		t.Errorf("staging's app does not connect as app_rw over its private network: %s", url)
	}
}

func TestAllProblemsAreReportedAtOnce(t *testing.T) {
	c := stackConfig(t, "prod").
		Set(FullKey("app.replicas"), "0").
		Set(FullKey("app.port"), "0").
		Set(FullKey("app.cpu"), "lots").
		Set(FullKey("health.readyPath"), "ready").
		Set(FullKey("dbPassword"), "plain")
	_, err := run(t, "prod", c)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, key := range []string{"app.replicas", "app.port", "app.cpu", "health.readyPath", "dbPassword"} {
		if !strings.Contains(err.Error(), FullKey(key)+":") {
			t.Errorf("the error does not mention %s:\n%v", key, err)
		}
	}
	if !strings.Contains(err.Error(), "(5 problems; nothing was changed)") {
		t.Errorf("want the count of problems in the error, got:\n%v", err)
	}
}

func TestDefaultWorkers(t *testing.T) {
	cases := []struct {
		arch Architecture
		cpu  string
		want int
	}{
		{SingleServer, "500m", 3}, // 2 x 1 (0.5 rounded up) + 1
		{SingleServer, "2", 5},
		{SingleServer, "1.5", 5},
		{Kubernetes, "2", 1}, // one process per pod; replicas scale
	}
	for _, tc := range cases {
		cpu, err := service.ParseCPU(tc.cpu)
		if err != nil {
			t.Fatal(err)
		}
		if got := defaultWorkers(tc.arch, cpu); got != tc.want {
			t.Errorf("defaultWorkers(%s, %s) = %d, want %d", tc.arch, tc.cpu, got, tc.want)
		}
	}
}

// withRepository gives a stack a complete off-host backup repository,
// then applies edit (nil: none).
func withRepository(edit func(mocktest.Config) mocktest.Config) func(mocktest.Config) mocktest.Config {
	return func(c mocktest.Config) mocktest.Config {
		c = c.Set(FullKey("db.backup.s3.endpoint"), "https://s3.eu-west-1.amazonaws.com").Set(FullKey("db.backup.s3.bucket"), "acme-db-backups").
			Secret(FullKey("backupS3AccessKey"), "AKIAEXAMPLE").Secret(FullKey("backupS3SecretKey"), "hunter2-s3").
			Secret(FullKey("backupEncryptionKey"), "hunter2-repository-passphrase")
		if edit != nil {
			c = edit(c)
		}
		return c
	}
}

func set(key, value string) func(mocktest.Config) mocktest.Config {
	return func(c mocktest.Config) mocktest.Config { return c.Set(FullKey(key), value) }
}

func containsLine(text, line string) bool {
	for _, l := range strings.Split(text, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

// TestAcceptedVariations: values near the refused ones that are fine.
func TestAcceptedVariations(t *testing.T) {
	for name, edit := range map[string]func(mocktest.Config) mocktest.Config{
		"a built-in log driver":        set("logging.driver", "local"),
		"a log driver plugin":          set("logging.driver", "grafana/loki-docker-driver:3.4"),
		"an external database by name": set("db.host", "db.internal.example.com"),
		"a loopback database on a host": func(c mocktest.Config) mocktest.Config {
			return c.Set(FullKey("db.mode"), "external").Set(FullKey("db.host"), "127.0.0.1")
		},
	} {
		t.Run(name, func(t *testing.T) {
			stack := "prod"
			if name != "an external database by name" {
				stack = "dev"
			}
			if _, err := run(t, stack, edit(stackConfig(t, stack))); err != nil {
				t.Fatal(err)
			}
		})
	}
}
