package stacks

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/fastapi-infra/fastapi-infra/components/kubernetes"
	"github.com/fastapi-infra/fastapi-infra/components/service"
	"github.com/fastapi-infra/fastapi-infra/components/singleserver"
)

// Namespace is the project name, the namespace of every key of this program.
const Namespace = "fastapi-infra"

// Key declares one config key: Pulumi.yaml declares the same keys with the
// same types and defaults (a test holds the two together), and docs/configuration.md's
// config reference lists them.
type Key struct {
	Name string
	// Type is a Pulumi project config type: string, integer, boolean, array, object.
	Type string
	// Default applies when a stack does not set the key; nil means required.
	Default any
	// Secret keys must be set with `pulumi config set --secret` (every
	// field of an object). Pulumi.yaml declares only the required ones
	// secret (DeclaredSecret): the engine would require the others too.
	Secret      bool
	Description string
}

// Keys is every key the program reads.
var Keys = []Key{
	{"architecture", "string", "single-server", false, "single-server (pulumi-docker, one host) or kubernetes (pulumi-kubernetes)"},
	{"environment", "string", "development", false, "development or production; production forbids :latest images, self-signed TLS, localhost and in-cluster databases"},

	{"app.name", "string", "fastapi", false, "DNS-1123 label naming every resource of the service"},
	{"app.image", "string", "fastapi-infra-app:dev", false, "image reference with a tag or digest (repository:tag or repository@sha256:...); the default is the example app images/build.sh makes"},
	{"app.buildContext", "string", "", false, "single server: a folder with a Dockerfile to build app.image from locally (no push); empty: use app.image as it is"},
	{"app.dockerfile", "string", "Dockerfile", false, "the Dockerfile, relative to app.buildContext"},
	{"app.module", "string", "app.main:app", false, "the ASGI application uvicorn serves"},
	{"app.port", "integer", 8000, false, "container port of the app"},
	{"app.workers", "integer", 0, false, "uvicorn workers per container; 0: 2 x CPU + 1 on a single server (CPU = app.cpu rounded up), 1 on Kubernetes"},
	{"app.replicas", "integer", 2, false, "app containers (single server) or pods (Kubernetes; the HPA's start)"},
	{"app.cpu", "string", "500m", false, "CPU limit per container: cores (0.5) or millicores (500m)"},
	{"app.memory", "string", "512Mi", false, "memory limit per container: 512Mi, 1Gi, 512M ..."},
	{"app.env", "object", map[string]any{}, false, "plain environment variables (name: value)"},
	{"app.shutdownGraceSeconds", "integer", 30, false, "seconds between SIGTERM and SIGKILL for in-flight requests to finish"},
	{"app.proxyHeaders", "boolean", true, false, "trust X-Forwarded-* from the proxy (single server: its network only)"},
	{"app.testRoutes", "boolean", false, false, "the example app's /_meta test routes (TEST_ROUTES=1 in its environment), which the lab's tests use: a slow one holds a worker thread up to 30 s; refused in production"},

	{"health.livePath", "string", "/health/live", false, "liveness endpoint: Kubernetes restarts a pod when it fails (a single server restarts a container when it exits)"},
	{"health.readyPath", "string", "/health/ready", false, "readiness endpoint: no traffic while it fails; a release waits for it (single server: the containers' Docker healthcheck)"},
	{"health.startTimeout", "integer", 120, false, "single server: seconds up waits for each new replica to turn ready before the release fails (./infra up then shows its last probes and log lines)"},

	{"migration.strategy", "string", "job", false, "job (one run per release, gates the app), init-container (Kubernetes, every pod) or none"},
	{"migration.command", "array", []any{"alembic", "upgrade", "head"}, false, "exec-form migration command"},

	{"domain", "string", "localhost", false, "public host name"},
	{"tls.mode", "string", "", false, "self-signed (single server), provided (tlsCert/tlsKey), acme (Traefik + Let's Encrypt), secret (existing Kubernetes TLS Secret) or cert-manager; empty: self-signed on a development single server, secret on Kubernetes"},
	{"tls.acmeEmail", "string", "", false, "Let's Encrypt account e-mail for tls.mode acme"},
	{"tls.acmeServer", "string", "https://acme-v02.api.letsencrypt.org/directory", false, "ACME directory URL for tls.mode acme: Let's Encrypt production; https://acme-staging-v02.api.letsencrypt.org/directory for trials, or a private ACME CA"},
	{"tls.acmeCA", "string", "", false, "PEM CA certificate(s) a private tls.acmeServer's HTTPS certificate chains to (added to the system roots); empty: system roots only"},
	{"tls.secretName", "string", "", false, "Kubernetes TLS Secret for tls.mode secret or cert-manager; empty: <app.name>-tls"},
	{"tls.clusterIssuer", "string", "", false, "cert-manager ClusterIssuer for tls.mode cert-manager"},

	{"db.mode", "string", "", false, "container (single server), in-cluster (Kubernetes, non-production) or external (managed, at db.host); empty: container on a single server, in-cluster on a development cluster, external in production"},
	{"db.image", "string", "postgres:15", false, "PostgreSQL image for container and in-cluster"},
	{"db.host", "string", "", false, "database host for db.mode external"},
	{"db.port", "integer", 5432, false, "database port"},
	{"db.name", "string", "app", false, "database name"},
	{"db.user", "string", "app", false, "the role that owns the database and runs the migrations"},
	{"db.appUser", "string", "", false, "the role the app's replicas connect as: no superuser, owns nothing, may only read and write rows. container/in-cluster: the stack creates and grants it; empty: <db.user>_rw. external: a role you made, required in production; empty (development only): the app connects as db.user"},
	{"db.sslmode", "string", "", false, "libpq sslmode in DATABASE_URL: disable, allow, prefer, require, verify-ca, verify-full; empty: verify-full for an external database in production (which requires verify-ca or verify-full), prefer otherwise (the stack's own database is reached on its private network only)"},
	{"db.caCert", "string", "", false, "PEM CA certificate(s) an external database's server certificate chains to (your provider's bundle); required with db.sslmode verify-ca or verify-full. Reaches the app and migrations as a file that DATABASE_URL's sslrootcert names"},
	{"db.retainOnDelete", "boolean", true, false, "keep the database volume through replacement and pulumi destroy; false lets destroy delete the data"},
	{"db.storageSize", "string", "10Gi", false, "in-cluster database volume size"},
	{"db.storageClass", "string", "", false, "StorageClass of the in-cluster database's volume; empty: the cluster's default. Checked against the cluster before anything is created"},
	{"db.cpu", "string", "1", false, "CPU limit of the database container (container and in-cluster): cores (1) or millicores (1000m)"},
	{"db.backup.schedule", "string", "30 3 * * *", false, "when the container database is dumped (pg_dump, custom format) into a retained volume (single server: a backup container) or claim (in-cluster: a CronJob): a cron expression in UTC; empty: no backups"},
	{"db.backup.keep", "integer", 7, false, "how many of the newest backups stay; older ones are deleted after each successful backup"},
	{"db.backup.s3.endpoint", "string", "", false, "container database: an off-host backup repository, https://host[:port] of an S3-compatible store. pgBackRest (in db.image) then archives every WAL segment there and takes the full backups of db.backup.schedule, encrypted with the secret backupEncryptionKey; restore to any second with ./infra restore --to-time. Empty: pg_dump into a volume on the same host"},
	{"db.backup.s3.bucket", "string", "", false, "the repository's bucket (S3 naming rules: 3-63 lower-case letters, digits, '-' and '.'); its keys are the secrets backupS3AccessKey and backupS3SecretKey"},
	{"db.backup.s3.region", "string", "us-east-1", false, "the bucket's region"},
	{"db.backup.s3.pathStyle", "boolean", false, false, "address the bucket in the URL's path (most self-hosted stores) instead of its host name (AWS)"},
	{"db.backup.s3.path", "string", "", false, "the folder of this stack's repository in the bucket; empty: /fastapi-infra/<app.name>-<stack>"},
	{"db.backup.s3.hostAddress", "string", "", false, "the IP address of the endpoint's host name when DNS does not know it (a store on a private network): written into the database's /etc/hosts. pgBackRest verifies the certificate by name, so the endpoint is always a name"},
	{"db.backup.s3.caCert", "string", "", false, "PEM CA certificate(s) the endpoint's certificate chains to (a private store); empty: the system roots. The certificate is always verified"},
	{"db.backup.archiveTimeout", "integer", 60, false, "with db.backup.s3.*: seconds after which a WAL segment is archived even if not full (PostgreSQL's archive_timeout): the most writes a host loss takes with it"},
	{"db.backup.sameHost", "boolean", false, false, "production single server: keep the backups only on the database's own host (pg_dump into a volume) knowingly; without it production needs db.backup.s3.*"},
	{"db.memory", "string", "1Gi", false, "memory limit of the database container (container and in-cluster); PostgreSQL's shared_buffers must fit well inside it"},

	{"registry.server", "string", "", false, "registry of app.image that needs credentials; empty: none"},
	{"registry.username", "string", "", false, "registry user"},

	{"docker.host", "string", "unix:///var/run/docker.sock", false, "single server: the Docker engine (unix://, ssh://user@host or tcp://)"},
	{"docker.certPath", "string", "", false, "single server: for a tcp:// docker.host, the folder with the TLS client certificate and the CA (ca.pem, cert.pem, key.pem, as docker --tlsverify reads them); a tcp:// host is refused without it"},
	{"docker.refreshImages", "boolean", true, false, "single server: on every up, look up each image's digest in its registry and pull again when its tag points to a new build; false for images that exist only on the host (the dev stack's local images)"},
	{"docker.subnet", "string", "", false, "single server: the private network (an IPv4 /16 to /28); the proxy takes its last address, the only one the app trusts for X-Forwarded-*; empty: a /24 in 172.30.0.0/16 chosen by the name prefix, so that stacks share a host"},
	{"docker.namePrefix", "string", "", false, "single server: what every container, network and volume name starts with; empty: <app.name>-<stack>, so that two stacks share a Docker host (a stack made before this key used <app.name>: set that to keep its containers and data volume)"},
	{"proxy.kind", "string", string(singleserver.Nginx), false, "single server: nginx (generated config) or traefik (ACME)"},
	{"proxy.image", "string", singleserver.DefaultNginxImage, false, "single server: nginx image (1.30: nginx's stable line)"},
	{"proxy.traefikImage", "string", singleserver.DefaultTraefikImage, false, "single server: Traefik image (v3.6 or later: the ACME CA options)"},
	{"proxy.httpPort", "integer", singleserver.DefaultHTTPPort, false, "single server: published HTTP port (redirects to HTTPS)"},
	{"proxy.httpsPort", "integer", singleserver.DefaultHTTPSPort, false, "single server: published HTTPS port"},
	{"proxy.rateLimit", "integer", 100, false, "single server: requests a second each client address may send through nginx (bursts of twice that pass); beyond it 429; 0: no limit"},
	{"proxy.connLimit", "integer", 100, false, "single server: concurrent connections per client address at nginx; beyond it 429; 0: no limit"},
	{"proxy.bodyLimit", "string", service.DefaultBodyLimit, false, "largest request body (nginx size: 512k, 10m, 1g): the single server's proxy, and the Ingress on the nginx class"},

	{"kubernetes.kubeconfig", "string", "", false, "kubeconfig file path; empty: $KUBECONFIG or ~/.kube/config (content goes in the secret kubeconfig)"},
	{"kubernetes.renderYamlTo", "string", "", false, "render manifests into this folder instead of deploying (the provider's renderYamlToDirectory), for review and kube-score"},
	{"kubernetes.context", "string", "", false, "kubeconfig context; empty: the current one"},
	{"kubernetes.namespace", "string", "fastapi", false, "namespace of every object"},
	{"kubernetes.createNamespace", "boolean", true, false, "create the namespace; false: it exists already"},
	{"kubernetes.ingressClass", "string", "nginx", false, "ingressClassName (nginx or traefik get an HTTP -> HTTPS redirect annotation)"},
	{"kubernetes.ingressNamespace", "string", kubernetes.DefaultIngressNamespace, false, "namespace of the ingress controller, the only source the NetworkPolicy admits"},
	{"kubernetes.trustedProxies", "array", []any{}, false, "addresses or CIDRs of the ingress controller's pods, the only peers whose X-Forwarded-* the app believes (uvicorn 0.30+ takes CIDRs, older only addresses); empty: only 127.0.0.1 (a sidecar)"},
	{"kubernetes.imagePullPolicy", "string", kubernetes.DefaultImagePullPolicy, false, "IfNotPresent, Always or Never"},
	{"kubernetes.nodeSelector", "object", map[string]any{}, false, "node labels every pod must match (label: value), e.g. a dedicated node pool; empty: any node"},
	{"kubernetes.pdb", "boolean", false, false, "create a PodDisruptionBudget"},
	{"kubernetes.hpa.enabled", "boolean", false, false, "create a HorizontalPodAutoscaler"},
	{"kubernetes.hpa.minReplicas", "integer", 2, false, "HPA lower bound"},
	{"kubernetes.hpa.maxReplicas", "integer", 10, false, "HPA upper bound"},
	{"kubernetes.hpa.cpuTarget", "integer", 70, false, "HPA target CPU utilization, percent of requests"},
	{"kubernetes.networkPolicy", "boolean", false, false, "default-deny NetworkPolicy: ingress only from kubernetes.ingressNamespace, egress only DNS and the database"},
	{"kubernetes.dnsNamespace", "string", "kube-system", false, "namespace of the cluster's DNS pods, the only DNS the NetworkPolicy admits"},
	{"kubernetes.dnsCIDRs", "array", []any{}, false, "resolvers outside kubernetes.dnsNamespace the NetworkPolicy admits on port 53, e.g. node-local DNS [\"169.254.20.10/32\"]"},
	{"kubernetes.databaseCIDRs", "array", []any{}, false, "an external database's addresses (CIDRs) the NetworkPolicy admits on db.port (it cannot name db.host); empty: db.host when it is an IP address, else any address, which production refuses with kubernetes.networkPolicy"},

	{"monitoring.enabled", "boolean", false, false, "scrape /metrics and ship the alert rules (Kubernetes: annotations or ServiceMonitor + PrometheusRule)"},
	{"monitoring.prometheusOperator", "boolean", false, false, "Kubernetes: the cluster runs the Prometheus Operator; create a ServiceMonitor and a PrometheusRule instead of prometheus.io annotations"},
	{"monitoring.namespace", "string", "monitoring", false, "Kubernetes: namespace of Prometheus, which the NetworkPolicy admits to the app port"},
	{"monitoring.downMinutes", "integer", 3, false, "alert FastAPIServiceDown after this many minutes without a healthy target"},
	{"monitoring.errorRatio", "string", "0.05", false, "alert FastAPIHighErrorRatio above this share of 5xx responses (0 to 1)"},
	{"monitoring.p95Seconds", "string", "0.5", false, "alert FastAPIHighLatencyP95 above this p95 latency in seconds"},
	{"monitoring.restartsPerHour", "integer", 3, false, "alert FastAPIRestartLoop above this many process restarts in an hour"},
	{"monitoring.prometheusImage", "string", "prom/prometheus:v3.13.2", false, "single server: the Prometheus image (monitoring.enabled runs it beside the app)"},
	{"monitoring.retention", "string", "15d", false, "single server: how long Prometheus keeps samples (its volume is retained on delete)"},
	{"monitoring.localPort", "integer", 9090, false, "single server: Prometheus's UI and API on the host's 127.0.0.1 only (reach it through an SSH tunnel)"},
	{"monitoring.postgresExporterImage", "string", "quay.io/prometheuscommunity/postgres-exporter:v0.17.1", false, "the postgres_exporter image, run beside the stack's own database (single server: a container; Kubernetes: a sidecar in the in-cluster database's pod) for the database down, connections and backup age alerts; empty (Kubernetes): none"},
	{"monitoring.interval", "string", singleserver.DefaultScrapeInterval, false, "how often Prometheus scrapes the app and evaluates the alerts (single server; Kubernetes: the ServiceMonitor's interval)"},
	{"alerting.alertmanagerImage", "string", "prom/alertmanager:v0.28.1", false, "single server: the Alertmanager image, run beside Prometheus (monitoring.enabled) to deliver the alerts"},
	{"alerting.localPort", "integer", 9093, false, "single server: Alertmanager's UI and API (alerts, silences) on the host's 127.0.0.1 only"},
	{"alerting.slackChannel", "string", "", false, "Slack channel for alertSlackUrl, e.g. #oncall; empty: the incoming webhook's own channel"},
	{"alerting.emailTo", "string", "", false, "e-mail alerts to this address (needs alerting.emailFrom and alerting.smtpHost)"},
	{"alerting.emailFrom", "string", "", false, "sender address of alert e-mails"},
	{"alerting.smtpHost", "string", "", false, "SMTP server as host:port for alert e-mails (STARTTLS required)"},
	{"alerting.smtpUsername", "string", "", false, "SMTP login for alert e-mails; its password is the secret alertSmtpPassword; empty: no login"},
	{"alerting.groupWait", "string", "30s", false, "how long a new alert waits for others of its group before the first notification"},
	{"alerting.groupInterval", "string", "5m", false, "how long before a changed group (a new or a resolved alert) is notified again"},
	{"alerting.repeatInterval", "string", "1h", false, "critical alerts that still fire are sent again this often; warnings three times as seldom"},
	{"logging.driver", "string", singleserver.DefaultLogDriver, false, "single server: Docker log driver (json-file rotates at 10m x 3; fluentd, gelf, syslog ... forward)"},
	{"logging.options", "object", map[string]any{}, false, "single server: log driver options, e.g. fluentd-address: 10.0.0.5:24224; empty for json-file means max-size 10m, max-file 3"},
	{"logging.aggregate", "boolean", false, false, "single server: run VictoriaLogs and send every container's lines to it (syslog), to search them in one place by service, container and request id; docker logs keeps working. Instead of logging.driver"},
	{"logging.victoriaLogsImage", "string", "victoriametrics/victoria-logs:v1.52.1", false, "single server: the VictoriaLogs image for logging.aggregate (images/build.sh logs makes a local one)"},
	{"logging.retention", "string", "7d", false, "single server: how long logging.aggregate keeps lines, e.g. 7d, 4w, 1y"},
	{"logging.localPort", "integer", 9428, false, "single server: VictoriaLogs' query API and UI on the Docker host's 127.0.0.1"},
	{"logging.syslogPort", "integer", 5140, false, "single server: the UDP port on the Docker host's 127.0.0.1 where the log driver sends lines to VictoriaLogs"},

	// Secrets are top-level keys, so that each one's encryption is known on
	// its own (a secret field makes its whole object secret).
	{"secretEnv", "object", map[string]any{}, true, "secret environment variables (name: value); set with --secret --path, e.g. pulumi config set --secret --path 'secretEnv.API_KEY' ..."},
	{"tlsCert", "string", "", true, "PEM certificate chain for tls.mode provided (secret)"},
	{"tlsKey", "string", "", true, "PEM private key for tls.mode provided (secret)"},
	{"dbPassword", "string", nil, true, "database password (required, secret): pulumi config set --secret dbPassword <value>"},
	{"dbAppPassword", "string", "", true, "password of db.appUser (secret). Empty for the stack's own database: derived from dbPassword (HMAC), so rotating dbPassword rotates both. Required for an external database with db.appUser"},
	{"registryPassword", "string", "", true, "registry password or token (secret)"},
	{"kubeconfig", "string", "", true, "kubeconfig content (secret), instead of a path in kubernetes.kubeconfig: pulumi config set --secret kubeconfig < ~/.kube/config"},
	{"alertWebhookUrl", "string", "", true, "alerts as Alertmanager's JSON to this URL (secret: such URLs carry tokens), e.g. an on-call tool's integration URL"},
	{"alertSlackUrl", "string", "", true, "Slack incoming-webhook URL for alerts (secret)"},
	{"alertSmtpPassword", "string", "", true, "SMTP password of alerting.smtpUsername (secret)"},
	{"backupS3AccessKey", "string", "", true, "access key of db.backup.s3.bucket (secret)"},
	{"backupS3SecretKey", "string", "", true, "secret key of backupS3AccessKey (secret)"},
	{"backupEncryptionKey", "string", "", true, "passphrase the backup repository is encrypted with (secret, at least 20 characters; keep a copy off the stack: a restore after losing the stack's state needs it)"},
	{"rolloutKey", "string", "", true, "single server: a random key (secret) that the app containers' names are derived from together with the secrets, so that a secret change rolls the replicas while the names say nothing about the secrets; ./infra generates it once per stack"},
}

// DeclaredSecret says whether Pulumi.yaml declares the key secret: only a
// required secret can be, as the engine requires every declared secret.
func (k Key) DeclaredSecret() bool { return k.Secret && k.Default == nil }

// LookupKey finds a declared key.
func LookupKey(name string) (Key, bool) {
	i := slices.IndexFunc(Keys, func(k Key) bool { return k.Name == name })
	if i < 0 {
		return Key{}, false
	}
	return Keys[i], true
}

// FullKey is the namespaced key as users see it in errors and stack files.
func FullKey(name string) string { return Namespace + ":" + name }

// CheckKnownKeys reports every key in the project namespace that the program
// does not read: a typo such as app.replica must not pass silently. config
// maps full keys (namespace:name) to their values, objects as JSON, as the
// engine passes them; keys of other namespaces (providers) pass.
func CheckKnownKeys(config map[string]string) error {
	return errors.Join(unknownKeys(config)...)
}

func unknownKeys(config map[string]string) []error {
	var errs []error
	for _, full := range slices.Sorted(maps.Keys(config)) {
		name, ok := strings.CutPrefix(full, Namespace+":")
		if !ok {
			continue
		}
		// The engine hands path-set values over as their top-level object,
		// so a dotted name here is a flat key that the program never reads.
		if _, declared := LookupKey(name); declared && strings.Contains(name, ".") {
			errs = append(errs, fmt.Errorf("%s: is a flat key, but dotted keys are paths; the program reads it from %s. Move it: pulumi config rm %s && pulumi config set --path %s <value>",
				full, FullKey(strings.Split(name, ".")[0]), name, name))
			continue
		}
		errs = append(errs, unknownPaths(name, json.RawMessage(config[full]))...)
	}
	return errs
}

// unknownPaths checks one key, descending into objects whose fields are
// declared keys (app -> app.replicas), but not into declared objects
// (app.env holds the user's own names).
func unknownPaths(path string, value json.RawMessage) []error {
	if _, declared := LookupKey(path); declared {
		return nil
	}
	isGroup := slices.ContainsFunc(Keys, func(k Key) bool { return strings.HasPrefix(k.Name, path+".") })
	var fields map[string]json.RawMessage
	if isGroup && json.Unmarshal(value, &fields) == nil {
		var errs []error
		for _, f := range slices.Sorted(maps.Keys(fields)) {
			errs = append(errs, unknownPaths(path+"."+f, fields[f])...)
		}
		return errs
	}
	rm := "pulumi config rm " + path
	if strings.Contains(path, ".") {
		rm = "pulumi config rm --path " + path
	}
	return []error{fmt.Errorf("%s: unknown key%s; `%s` removes it, docs/configuration.md lists every key", FullKey(path), suggest(path), rm)}
}

// suggest names the declared key closest to a typo, if any is close.
func suggest(name string) string {
	best, bestDist := "", 4
	for _, k := range Keys {
		if d := editDistance(name, k.Name); d < bestDist {
			best, bestDist = k.Name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
