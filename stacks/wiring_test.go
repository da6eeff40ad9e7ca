package stacks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/fastapi-infra/fastapi-infra/components/service"
	"github.com/fastapi-infra/fastapi-infra/internal/mocktest"
)

// The components' own tests start from Args; these check that the stack
// config reaches those Args: each key group lands on the resource that
// shows it.

// mustRun runs a stack with edited config and fails on an error.
func mustRun(t *testing.T, stack string, edit func(mocktest.Config) mocktest.Config) *mocktest.Recorder {
	t.Helper()
	c := stackConfig(t, stack)
	if edit != nil {
		c = edit(c)
	}
	rec, err := run(t, stack, c)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// holds checks that the value at path of r, printed, contains want.
func holds(t *testing.T, r mocktest.Resource, path, want string) {
	t.Helper()
	if got := fmt.Sprint(r.Get(t, path)); !strings.Contains(got, want) {
		t.Errorf("%s %s: %s = %s, want it to hold %q", r.Type, r.Name, path, got, want)
	}
}

// TestSingleServerKeysReachTheComponent: one edit of the dev stack per
// group of keys, and what the single server then registers.
func TestSingleServerKeysReachTheComponent(t *testing.T) {
	for _, tc := range []struct {
		keys, resource, path, want string
		edit                       func(mocktest.Config) mocktest.Config
	}{
		{"app.image", "fastapi-app-image", "name", "fastapi-infra-app:0.2.0", set("app.image", "fastapi-infra-app:0.2.0")},
		{"app.env", "fastapi-migrate", "envs", "LOG_LEVEL=debug", set("app.env.LOG_LEVEL", "debug")},
		{"app.testRoutes", "fastapi-migrate", "envs", "TEST_ROUTES=1", set("app.testRoutes", "true")},
		{"health.startTimeout", "fastapi-app-1", "waitTimeout", "45", set("health.startTimeout", "45")},
		{"proxy.httpsPort", "fastapi-proxy", "ports[1].external", "9443", set("proxy.httpsPort", "9443")},
		{"proxy.bodyLimit", "fastapi-proxy", "uploads[0].content", "client_max_body_size 25m;", set("proxy.bodyLimit", "25m")},
		{"proxy.rateLimit", "fastapi-proxy", "uploads[0].content", "rate=7r/s;", set("proxy.rateLimit", "7")},
		{"db.cpu", "fastapi-db", "cpus", "1.5", set("db.cpu", "1500m")},
		{"db.backup.keep", "fastapi-backup", "envs", "BACKUP_KEEP=3", set("db.backup.keep", "3")},
		{"logging.driver", "fastapi-db", "logDriver", "fluentd", func(c mocktest.Config) mocktest.Config {
			return c.Set(FullKey("logging.driver"), "fluentd").Set(FullKey("logging.options.fluentd-address"), "10.0.0.5:24224")
		}},
		{"logging.aggregate", "fastapi-logs", "ports[0].external", "9428", set("logging.aggregate", "true")},
		{"monitoring.enabled", "fastapi-prometheus", "uploads[0].content", `stack: "dev"`, set("monitoring.enabled", "true")},
		{"alerting.localPort", "fastapi-alertmanager", "ports[0].external", "9193", func(c mocktest.Config) mocktest.Config {
			return c.Set(FullKey("monitoring.enabled"), "true").Set(FullKey("alerting.localPort"), "9193")
		}},
		{"docker.refreshImages", "fastapi-db-image", "pullTriggers", "registry-digest-of-", set("docker.refreshImages", "true")},
		{"docker.certPath", "docker", "certPath", "/etc/docker-client", func(c mocktest.Config) mocktest.Config {
			return c.Set(FullKey("docker.host"), "tcp://10.0.0.5:2376").Set(FullKey("docker.certPath"), "/etc/docker-client")
		}},
		{"proxy.kind", "fastapi-proxy", "command", "--certificatesresolvers.letsencrypt.acme.email=ops@example.com", func(c mocktest.Config) mocktest.Config {
			return c.Set(FullKey("proxy.kind"), "traefik").Set(FullKey("tls.mode"), "acme").
				Set(FullKey("tls.acmeEmail"), "ops@example.com").Set(FullKey("domain"), "api.example.com")
		}},
	} {
		t.Run(tc.keys, func(t *testing.T) {
			rec := mustRun(t, "dev", tc.edit)
			name := tc.resource
			if name == "fastapi-migrate" || name == "fastapi-app-1" { // named after its release
				for _, c := range rec.ByType("docker:index/container:Container") {
					if strings.HasPrefix(c.Name, name+"-") {
						name = c.Name
					}
				}
			}
			holds(t, rec.Named(t, name), tc.path, tc.want)
		})
	}
}

// TestKubernetesKeysReachTheComponent: the same for the prod stack.
func TestKubernetesKeysReachTheComponent(t *testing.T) {
	for _, tc := range []struct {
		keys, typ, path, want string
		edit                  func(mocktest.Config) mocktest.Config
	}{
		{"kubernetes.trustedProxies", "kubernetes:apps/v1:Deployment", "spec.template.spec.containers[0].command", "10.244.0.0/16,192.0.2.10",
			set("kubernetes.trustedProxies", `["10.244.0.0/16", "192.0.2.10"]`)},
		{"proxy.bodyLimit", "kubernetes:networking.k8s.io/v1:Ingress", `metadata.annotations["nginx.ingress.kubernetes.io/proxy-body-size"]`, "25m", set("proxy.bodyLimit", "25m")},
		{"kubernetes.ingressClass", "kubernetes:networking.k8s.io/v1:Ingress", "spec.ingressClassName", "traefik", set("kubernetes.ingressClass", "traefik")},
		{"kubernetes.hpa.maxReplicas", "kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "spec.maxReplicas", "20", set("kubernetes.hpa.maxReplicas", "20")},
		{"kubernetes.nodeSelector", "kubernetes:apps/v1:Deployment", "spec.template.spec.nodeSelector", "example.com/pool:api", set("kubernetes.nodeSelector", `{"example.com/pool":"api"}`)},
		{"kubernetes.imagePullPolicy", "kubernetes:batch/v1:Job", "spec.template.spec.containers[0].imagePullPolicy", "IfNotPresent", set("kubernetes.imagePullPolicy", "IfNotPresent")},
		{"migration.strategy", "kubernetes:apps/v1:Deployment", "spec.template.spec.initContainers[0].name", "migrate", set("migration.strategy", "init-container")},
		{"monitoring.prometheusOperator", "kubernetes:apps/v1:Deployment", `spec.template.metadata.annotations["prometheus.io/scrape"]`, "true", set("monitoring.prometheusOperator", "false")},
		{"alerting.emailTo", "kubernetes:monitoring.coreos.com/v1alpha1:AlertmanagerConfig", "spec.receivers[0].emailConfigs[0].to", "oncall@example.com", func(c mocktest.Config) mocktest.Config {
			return c.Set(FullKey("alerting.emailTo"), "oncall@example.com").Set(FullKey("alerting.emailFrom"), "alerts@example.com").
				Set(FullKey("alerting.smtpHost"), "smtp.example.com:587")
		}},
		{"db.mode, db.cpu", "kubernetes:apps/v1:StatefulSet", "spec.template.spec.containers[0].resources.limits.cpu", "2", func(c mocktest.Config) mocktest.Config {
			return c.Set(FullKey("environment"), "development").Set(FullKey("db.mode"), "in-cluster").Without(FullKey("db.caCert")).Set(FullKey("db.cpu"), "2")
		}},
	} {
		t.Run(tc.keys, func(t *testing.T) {
			holds(t, mustRun(t, "prod", tc.edit).One(t, tc.typ), tc.path, tc.want)
		})
	}
}

// TestSecretsRollTheReplicas: the single server's release names change
// with the secrets that reach the app (through secretsDigest), and with
// the stack's rolloutKey, and show neither.
func TestSecretsRollTheReplicas(t *testing.T) {
	names := func(edit func(mocktest.Config) mocktest.Config) []string {
		var out []string
		for _, c := range mustRun(t, "dev", edit).ByType("docker:index/container:Container") {
			if strings.HasPrefix(c.Name, "fastapi-app-") {
				out = append(out, c.Name)
			}
		}
		slices.Sort(out)
		return out
	}
	first, same := names(nil), names(nil)
	if len(first) != 2 || !slices.Equal(first, same) {
		t.Fatalf("the same config gave %v, then %v", first, same)
	}
	for what, edit := range map[string]func(mocktest.Config) mocktest.Config{
		"dbPassword": func(c mocktest.Config) mocktest.Config { return c.Secret(FullKey("dbPassword"), "rotated-password") },
		"dbAppPassword": func(c mocktest.Config) mocktest.Config {
			return c.Secret(FullKey("dbAppPassword"), "rotated-app-password")
		},
		"secretEnv": func(c mocktest.Config) mocktest.Config { return c.Secret(FullKey("secretEnv"), `{"API_KEY":"k-123"}`) },
		// Not a function of public config and the secrets alone, or a
		// dictionary of passwords would find the password from the names.
		"rolloutKey": func(c mocktest.Config) mocktest.Config {
			return c.Secret(FullKey("rolloutKey"), "fedcba9876543210fedcba9876543210")
		},
	} {
		next := names(edit)
		if slices.Equal(first, next) {
			t.Errorf("a new %s kept the replicas %v", what, next)
		}
		for _, n := range next {
			if strings.Contains(n, "rotated") || strings.Contains(n, testPassword) || strings.Contains(n, "k-123") {
				t.Errorf("a container name shows a secret: %s", n)
			}
		}
	}
}

// TestAppRoleGetsItsOwnPassword: without dbAppPassword the app role's
// password is derived from dbPassword: long, and not dbPassword.
func TestAppRoleGetsItsOwnPassword(t *testing.T) {
	var carrier mocktest.Resource
	for _, c := range mustRun(t, "dev", nil).ByType("docker:index/container:Container") {
		if strings.HasPrefix(c.Name, "fastapi-secrets-") && strings.HasSuffix(c.Name, "-carrier") {
			carrier = c
		}
	}
	url := carrier.Str(t, "uploads[0].content")
	// As a login of app_rw's (one per rotation): app_rw_<10 hex>.
	login, pw, ok := strings.Cut(strings.TrimPrefix(url, "postgresql://"), ":")
	if !ok || !strings.HasPrefix(login, "app_rw_") || len(login) != len("app_rw_")+10 || strings.Index(pw, "@") < 43 || strings.Contains(url, testPassword) {
		t.Errorf("the replicas' DATABASE_URL is not the app role's with its own password: %s", url)
	}
}

// TestRenderedManifestsHoldNoSecret: renderYamlTo writes every object to
// disk, Secrets included, in plain text; the program renders them with
// their values redacted.
func TestRenderedManifestsHoldNoSecret(t *testing.T) {
	rec := mustRun(t, "prod", func(c mocktest.Config) mocktest.Config {
		return c.Set("fastapi-infra:kubernetes.renderYamlTo", "/tmp/rendered").
			Secret("fastapi-infra:secretEnv", `{"API_KEY":"k-123"}`).
			Set("fastapi-infra:tls.mode", "provided").Secret("fastapi-infra:tlsCert", "-----BEGIN CERTIFICATE-----\nCERT-PEM\n-----END CERTIFICATE-----\n").Secret("fastapi-infra:tlsKey", "-----BEGIN PRIVATE KEY-----\nKEY-PEM\n-----END PRIVATE KEY-----\n")
	})
	for _, r := range rec.All() {
		inputs := fmt.Sprint(r.Inputs)
		for _, secret := range []string{testPassword, mocktest.TestAppPassword, "k-123", "CERT-PEM", "KEY-PEM"} {
			if strings.Contains(inputs, secret) {
				t.Errorf("%s %s would be rendered with a secret value in it", r.Type, r.Name)
			}
		}
	}
	var found bool
	for _, s := range rec.ByType("kubernetes:core/v1:Secret") {
		if s.Name == "fastapi-env-secret" {
			found = strings.Contains(s.Str(t, "stringData.DATABASE_URL"), service.RedactedSecret) &&
				s.Str(t, "stringData.API_KEY") == service.RedactedSecret
		}
	}
	if !found {
		t.Error("the env Secret is not rendered with redacted values")
	}
}

// TestEngineVersionDecidesStartInterval: the program asks the stack's
// Docker engine for its API version and plans healthchecks it accepts:
// Docker 20.10 (1.41) refused a startInterval, which 1.44 (Docker 25) has;
// an engine that cannot be asked gets the oldest supported plan.
func TestEngineVersionDecidesStartInterval(t *testing.T) {
	defer func(saved func(context.Context, string, string) (string, error)) { EngineAPIVersion = saved }(EngineAPIVersion)
	for _, c := range []struct {
		answer string
		err    error
		want   bool
	}{{"1.41", nil, false}, {"1.44", nil, true}, {"1.51", nil, true}, {"", errors.New("connection refused"), false}} {
		var asked string
		EngineAPIVersion = func(_ context.Context, host, _ string) (string, error) { asked = host; return c.answer, c.err }
		db := mustRun(t, "dev", nil).Named(t, "fastapi-db")
		if asked != "unix:///var/run/docker.sock" {
			t.Errorf("asked %q, want the dev stack's docker.host", asked)
		}
		if got := db.Has("healthcheck.startInterval"); got != c.want {
			t.Errorf("engine API %q (%v): startInterval %v, want %v", c.answer, c.err, got, c.want)
		}
	}
}

// TestProductionProtectsTheData: in production the volumes that hold the
// database and its backups are protected, so `destroy` (or a change that
// would replace one) stops before it changes anything; in development
// only retained, so the dev stack stays easy to tear down.
func TestProductionProtectsTheData(t *testing.T) {
	protected := func(rec *mocktest.Recorder) []string {
		var names []string
		for _, r := range rec.All() {
			if r.Protect {
				names = append(names, r.Name)
			}
		}
		slices.Sort(names)
		return names
	}
	prod := mustRun(t, "prod", withRepository(func(c mocktest.Config) mocktest.Config {
		return c.Set(FullKey("architecture"), "single-server").Set(FullKey("db.mode"), "container").Without(FullKey("db.caCert")).Without(FullKey("db.host")).
			Set(FullKey("proxy.kind"), "traefik").Set(FullKey("tls.mode"), "acme").Set(FullKey("tls.acmeEmail"), "ops@example.com")
	}))
	if got, want := protected(prod), []string{"fastapi-backups", "fastapi-db-data"}; !slices.Equal(got, want) {
		t.Errorf("a production single server protects %v, want %v", got, want)
	}
	if got := protected(mustRun(t, "dev", nil)); len(got) != 0 {
		t.Errorf("the dev stack protects %v, want nothing (destroy must work)", got)
	}
}

// TestBackupRepositoryKeysReachTheDatabase: db.backup.s3.* and its secrets
// reach pgBackRest's configuration (a secret file), the database's WAL
// archiving and the /etc/hosts entry; the repository's folder defaults to
// the stack's own.
func TestBackupRepositoryKeysReachTheDatabase(t *testing.T) {
	rec := mustRun(t, "dev", withRepository(func(c mocktest.Config) mocktest.Config {
		return c.Set(FullKey("db.backup.s3.pathStyle"), "true").Set(FullKey("db.backup.archiveTimeout"), "30").
			Set(FullKey("db.backup.s3.hostAddress"), "10.1.2.3").Set(FullKey("db.backup.s3.region"), "eu-west-1")
	}))
	db := rec.Named(t, "fastapi-db")
	holds(t, db, "command", "archive_timeout=30")
	db.Equal(t, "hosts[0].host", "s3.eu-west-1.amazonaws.com")
	db.Equal(t, "hosts[0].ip", "10.1.2.3")
	var conf string
	for _, c := range rec.ByType("docker:index/container:Container") {
		if !strings.HasPrefix(c.Name, "fastapi-db-secrets-") {
			continue
		}
		for i := 0; c.Has(fmt.Sprintf("uploads[%d].file", i)); i++ {
			if c.Str(t, fmt.Sprintf("uploads[%d].file", i)) == "/run/secrets/REPOSITORY_CONF" {
				conf = c.Str(t, fmt.Sprintf("uploads[%d].content", i))
			}
		}
	}
	for _, want := range []string{"repo1-s3-endpoint=s3.eu-west-1.amazonaws.com\n", "repo1-storage-port=443\n", "repo1-s3-bucket=acme-db-backups\n",
		"repo1-s3-region=eu-west-1\n", "repo1-s3-uri-style=path\n", "repo1-s3-key=AKIAEXAMPLE\n", "repo1-s3-key-secret=hunter2-s3\n",
		"repo1-cipher-pass=hunter2-repository-passphrase\n", "repo1-path=/fastapi-infra/fastapi-dev\n", "repo1-retention-full=7\n"} {
		if !strings.Contains(conf, want) {
			t.Errorf("the repository's configuration lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "repo1-storage-ca-file") {
		t.Error("a CA file without db.backup.s3.caCert: the system roots verify a public store")
	}
}
