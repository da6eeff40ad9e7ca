package stacks

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

// Architecture names the deployment target of a stack.
type Architecture string

const (
	SingleServer Architecture = "single-server"
	Kubernetes   Architecture = "kubernetes"
)

// secretValue is a config value that must be a Pulumi secret. The plain text
// is kept only to validate it and to wrap it as a secret output; it is never
// logged, exported or put in an error.
type secretValue struct {
	plain    string
	set      bool // the stack sets it (or a default applies)
	isSecret bool // stored encrypted, as `pulumi config set --secret` does
}

// Config is the stack config as read, before it becomes a service.Spec: plain
// Go values, one field per key of keys.go.
type Config struct {
	Architecture Architecture
	Environment  string

	AppName, Image, BuildContext, Dockerfile, Module string
	Port, Workers, Replicas, ShutdownGraceSeconds    int
	CPU, Memory                                      string
	Env                                              map[string]string
	SecretEnv                                        map[string]string
	secretEnvIsSecret                                bool
	ProxyHeaders                                     bool

	LivePath, ReadyPath string

	MigrationStrategy string
	MigrationCommand  []string

	Domain                                                                           string
	TLSMode, TLSACMEEmail, TLSACMEServer, TLSACMECA, TLSSecretName, TLSClusterIssuer string
	tlsCert, tlsKey                                                                  secretValue

	DBMode, DBImage, DBHost, DBName, DBUser, DBSSLMode, DBStorageSize string
	DBAppUser, DBCACert                                               string
	DBCPU, DBMemory, DBStorageClass                                   string
	DBBackupSchedule                                                  string
	DBBackupKeep                                                      int
	DBPort                                                            int
	dbPassword, dbAppPassword                                         secretValue
	DBRetainOnDelete                                                  bool

	RegistryServer, RegistryUsername string
	registryPassword                 secretValue
	rolloutKey                       secretValue
	kubeconfigContent                secretValue

	DockerHost, DockerSubnet                       string
	RefreshImages                                  bool
	DockerNamePrefix                               string
	ProxyKind, ProxyImage, TraefikImage, BodyLimit string
	HTTPPort, HTTPSPort, RateLimit, ConnLimit      int

	Kubeconfig, KubeContext, RenderYAMLTo, Namespace, IngressClass, IngressNamespace, ImagePullPolicy string
	NodeSelector                                                                                      map[string]string
	TrustedProxies                                                                                    []string
	CreateNamespace, PDB, HPA, NetworkPolicy                                                          bool
	HPAMin, HPAMax, HPACPUTarget                                                                      int

	Monitoring, PrometheusOperator              bool
	MonitoringNamespace, ErrorRatio, P95Seconds string
	PrometheusImage, Retention                  string
	DownMinutes, RestartsPerHour, LocalPort     int
	MonitoringInterval, PostgresExporterImage   string
	LogDriver                                   string
	LogOptions                                  map[string]string
	LogAggregate                                bool
	VictoriaLogsImage, LogRetention             string
	LogLocalPort, LogSyslogPort                 int

	AlertmanagerImage                                        string
	AlertmanagerPort                                         int
	SlackChannel, EmailTo, EmailFrom, SMTPHost, SMTPUsername string
	GroupWait, GroupInterval, RepeatInterval                 string
	alertWebhookURL, alertSlackURL, alertSMTPPassword        secretValue

	stack string // the stack's name, for names that must differ per stack
}

// reader reads keys with the SDK's Try* functions, falls back to the key
// registry's default when a key is not set, and collects every error with
// its key instead of stopping at the first.
//
// A dotted key is a path, as Pulumi treats dotted project keys: app.replicas
// is the field replicas of the object fastapi-infra:app (what
// `pulumi config set --path app.replicas 3` writes), so stack files override
// single fields and the engine merges Pulumi.yaml's defaults into the rest.
type reader struct {
	ctx    *pulumi.Context
	groups map[string]json.RawMessage
	errs   []error
}

func (r *reader) fail(key, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("%s: %s", FullKey(key), fmt.Sprintf(format, args...)))
}

// lookup returns the JSON value at a key, if the stack (or Pulumi.yaml's
// default, merged by the engine) sets it.
func (r *reader) lookup(key string) (json.RawMessage, bool) {
	group, path, nested := strings.Cut(key, ".")
	if !nested {
		v, err := config.Try(r.ctx, key)
		if err != nil {
			return nil, false // config.ErrMissingVar: the default applies
		}
		raw, _ := json.Marshal(v)
		return raw, true
	}
	obj, ok := r.groups[group]
	if !ok {
		if _, err := r.tryObject(group, &obj); err != nil {
			r.fail(group, "must be an object of settings; set one with: pulumi config set --path %s.<name> <value>", group)
		}
		r.groups[group] = obj
	}
	for _, step := range strings.Split(path, ".") {
		var fields map[string]json.RawMessage
		if json.Unmarshal(obj, &fields) != nil {
			return nil, false
		}
		if obj, ok = fields[step]; !ok {
			return nil, false
		}
	}
	return obj, len(obj) > 0 && string(obj) != "null"
}

// text is a scalar as the user wrote it: a string's content, or the JSON
// text of a number or boolean.
func text(raw json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var scalar any
	if json.Unmarshal(raw, &scalar) == nil {
		switch scalar.(type) {
		case float64, bool:
			return string(raw), true
		}
	}
	return string(raw), false
}

func (r *reader) str(key string) string {
	raw, ok := r.lookup(key)
	if !ok {
		d, _ := defaultOf(key).(string)
		return d
	}
	if s, ok := text(raw); ok {
		return s
	}
	r.fail(key, "must be a string, got %s", raw)
	return ""
}

func (r *reader) integer(key string) int {
	raw, ok := r.lookup(key)
	if !ok {
		d, _ := defaultOf(key).(int)
		return d
	}
	s, _ := text(raw)
	n, err := strconv.Atoi(s)
	if err != nil {
		r.fail(key, "must be a whole number, got %q", s)
	}
	return n
}

func (r *reader) boolean(key string) bool {
	raw, ok := r.lookup(key)
	if !ok {
		d, _ := defaultOf(key).(bool)
		return d
	}
	s, _ := text(raw)
	b, err := strconv.ParseBool(s)
	if err != nil {
		r.fail(key, "must be true or false, got %q", s)
	}
	return b
}

func (r *reader) stringList(key string) []string {
	var v []string
	raw, ok := r.lookup(key)
	if !ok {
		for _, s := range defaultOf(key).([]any) {
			v = append(v, s.(string))
		}
		return v
	}
	if json.Unmarshal(raw, &v) != nil {
		r.fail(key, `must be a list of strings such as ["alembic", "upgrade", "head"], got %s`, raw)
	}
	return v
}

func (r *reader) stringMap(key string) map[string]string {
	out := map[string]string{}
	raw, ok := r.lookup(key)
	if !ok {
		return out
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		r.fail(key, "must be an object of NAME: value, got %s", raw)
		return out
	}
	for name, v := range fields {
		s, ok := text(v)
		if !ok {
			r.fail(key, "%s must be a string, got %s", name, v)
		}
		out[name] = s
	}
	return out
}

// secretMap reads a top-level object of secret values (secretEnv).
func (r *reader) secretMap(key string) (map[string]string, bool) {
	out := map[string]string{}
	secret, err := r.tryObject(key, &out)
	if err != nil {
		r.fail(key, "must be an object of NAME: value; set one with: pulumi config set --secret --path %s.NAME <value>", key)
	}
	return out, secret
}

// tryObject reads a top-level object key into out with the SDK's
// TryObject, or TrySecretObject when the stack stores any part of it
// encrypted (TryObject would warn). A key that is not set is no error.
func (r *reader) tryObject(key string, out any) (secret bool, err error) {
	secret = r.ctx.IsConfigSecret(FullKey(key))
	if secret {
		_, err = config.TrySecretObject(r.ctx, key, out)
	} else {
		err = config.TryObject(r.ctx, key, out)
	}
	if errors.Is(err, config.ErrMissingVar) {
		err = nil
	}
	return secret, err
}

func defaultOf(key string) any {
	k, ok := LookupKey(key)
	if !ok {
		panic("stacks: reading undeclared key " + key) // a programming error, caught by the tests
	}
	return k.Default
}

// secret reads a key whose value must be a Pulumi secret, without ever
// letting its text reach an error. It reads the context directly: config.Try
// would log a "use TrySecret" warning, and TrySecret returns an output whose
// text cannot be validated before resources are registered.
func (r *reader) secret(key string) secretValue {
	v, ok := r.ctx.GetConfig(FullKey(key))
	return secretValue{plain: v, set: ok && v != "", isSecret: r.ctx.IsConfigSecret(FullKey(key))}
}

// output wraps the value as a secret output, as config.TrySecret does.
func (s secretValue) output() pulumi.StringOutput {
	return pulumi.ToSecret(pulumi.String(s.plain)).(pulumi.StringOutput)
}

// stackFileProblems checks each field of the secret keys in the stack file,
// when the program runs in the project folder (the Go language host does;
// the driver checks the file itself before the engine runs).
func stackFileProblems(stack string) []error {
	raw, err := os.ReadFile("Pulumi." + stack + ".yaml")
	if err != nil {
		return nil
	}
	if err := CheckStackFileSecrets(raw); err != nil {
		return []error{err}
	}
	return nil
}

// envKeyProblems rejects unknown keys when the engine passes the whole
// config in the environment (the Go language host and the mock tests do);
// the Automation API driver runs CheckKnownKeys on the stack's config itself.
func envKeyProblems() []error {
	var all map[string]string
	if err := json.Unmarshal([]byte(os.Getenv(pulumi.EnvConfig)), &all); err != nil {
		return nil // unset, or not ours to judge: the SDK reads it the same way
	}
	return unknownKeys(all)
}

// Load reads, defaults and validates the stack config. The error lists every
// problem, each on its own line, naming the key.
func Load(ctx *pulumi.Context) (*Config, error) {
	r := &reader{ctx: ctx, groups: map[string]json.RawMessage{}}
	c := &Config{
		Architecture: Architecture(r.str("architecture")),
		Environment:  r.str("environment"),

		AppName:              r.str("app.name"),
		Image:                r.str("app.image"),
		BuildContext:         r.str("app.buildContext"),
		Dockerfile:           r.str("app.dockerfile"),
		Module:               r.str("app.module"),
		Port:                 r.integer("app.port"),
		Workers:              r.integer("app.workers"),
		Replicas:             r.integer("app.replicas"),
		CPU:                  r.str("app.cpu"),
		Memory:               r.str("app.memory"),
		Env:                  r.stringMap("app.env"),
		ShutdownGraceSeconds: r.integer("app.shutdownGraceSeconds"),
		ProxyHeaders:         r.boolean("app.proxyHeaders"),

		LivePath:  r.str("health.livePath"),
		ReadyPath: r.str("health.readyPath"),

		MigrationStrategy: r.str("migration.strategy"),
		MigrationCommand:  r.stringList("migration.command"),

		Domain:           r.str("domain"),
		TLSMode:          r.str("tls.mode"),
		tlsCert:          r.secret("tlsCert"),
		tlsKey:           r.secret("tlsKey"),
		TLSACMEEmail:     r.str("tls.acmeEmail"),
		TLSACMEServer:    r.str("tls.acmeServer"),
		TLSACMECA:        r.str("tls.acmeCA"),
		TLSSecretName:    r.str("tls.secretName"),
		TLSClusterIssuer: r.str("tls.clusterIssuer"),

		DBMode:           r.str("db.mode"),
		DBImage:          r.str("db.image"),
		DBHost:           r.str("db.host"),
		DBPort:           r.integer("db.port"),
		DBName:           r.str("db.name"),
		DBUser:           r.str("db.user"),
		dbPassword:       r.secret("dbPassword"),
		DBAppUser:        r.str("db.appUser"),
		dbAppPassword:    r.secret("dbAppPassword"),
		DBSSLMode:        r.str("db.sslmode"),
		DBCACert:         r.str("db.caCert"),
		DBRetainOnDelete: r.boolean("db.retainOnDelete"),
		DBStorageSize:    r.str("db.storageSize"),
		DBCPU:            r.str("db.cpu"),
		DBStorageClass:   r.str("db.storageClass"),
		DBMemory:         r.str("db.memory"),
		DBBackupSchedule: r.str("db.backup.schedule"),
		DBBackupKeep:     r.integer("db.backup.keep"),

		RegistryServer:    r.str("registry.server"),
		RegistryUsername:  r.str("registry.username"),
		registryPassword:  r.secret("registryPassword"),
		rolloutKey:        r.secret("rolloutKey"),
		kubeconfigContent: r.secret("kubeconfig"),

		DockerHost:       r.str("docker.host"),
		DockerSubnet:     r.str("docker.subnet"),
		RefreshImages:    r.boolean("docker.refreshImages"),
		DockerNamePrefix: r.str("docker.namePrefix"),
		ProxyKind:        r.str("proxy.kind"),
		ProxyImage:       r.str("proxy.image"),
		TraefikImage:     r.str("proxy.traefikImage"),
		HTTPPort:         r.integer("proxy.httpPort"),
		HTTPSPort:        r.integer("proxy.httpsPort"),
		BodyLimit:        r.str("proxy.bodyLimit"),
		RateLimit:        r.integer("proxy.rateLimit"),
		ConnLimit:        r.integer("proxy.connLimit"),

		Kubeconfig:       r.str("kubernetes.kubeconfig"),
		RenderYAMLTo:     r.str("kubernetes.renderYamlTo"),
		KubeContext:      r.str("kubernetes.context"),
		Namespace:        r.str("kubernetes.namespace"),
		CreateNamespace:  r.boolean("kubernetes.createNamespace"),
		IngressClass:     r.str("kubernetes.ingressClass"),
		IngressNamespace: r.str("kubernetes.ingressNamespace"),
		ImagePullPolicy:  r.str("kubernetes.imagePullPolicy"),
		NodeSelector:     r.stringMap("kubernetes.nodeSelector"),
		TrustedProxies:   r.stringList("kubernetes.trustedProxies"),
		PDB:              r.boolean("kubernetes.pdb"),
		HPA:              r.boolean("kubernetes.hpa.enabled"),
		HPAMin:           r.integer("kubernetes.hpa.minReplicas"),
		HPAMax:           r.integer("kubernetes.hpa.maxReplicas"),
		HPACPUTarget:     r.integer("kubernetes.hpa.cpuTarget"),
		NetworkPolicy:    r.boolean("kubernetes.networkPolicy"),

		Monitoring:            r.boolean("monitoring.enabled"),
		PrometheusOperator:    r.boolean("monitoring.prometheusOperator"),
		MonitoringNamespace:   r.str("monitoring.namespace"),
		DownMinutes:           r.integer("monitoring.downMinutes"),
		ErrorRatio:            r.str("monitoring.errorRatio"),
		P95Seconds:            r.str("monitoring.p95Seconds"),
		RestartsPerHour:       r.integer("monitoring.restartsPerHour"),
		PrometheusImage:       r.str("monitoring.prometheusImage"),
		Retention:             r.str("monitoring.retention"),
		LocalPort:             r.integer("monitoring.localPort"),
		MonitoringInterval:    r.str("monitoring.interval"),
		PostgresExporterImage: r.str("monitoring.postgresExporterImage"),
		AlertmanagerImage:     r.str("alerting.alertmanagerImage"),
		AlertmanagerPort:      r.integer("alerting.localPort"),
		SlackChannel:          r.str("alerting.slackChannel"),
		EmailTo:               r.str("alerting.emailTo"),
		EmailFrom:             r.str("alerting.emailFrom"),
		SMTPHost:              r.str("alerting.smtpHost"),
		SMTPUsername:          r.str("alerting.smtpUsername"),
		GroupWait:             r.str("alerting.groupWait"),
		GroupInterval:         r.str("alerting.groupInterval"),
		RepeatInterval:        r.str("alerting.repeatInterval"),
		alertWebhookURL:       r.secret("alertWebhookUrl"),
		alertSlackURL:         r.secret("alertSlackUrl"),
		alertSMTPPassword:     r.secret("alertSmtpPassword"),
		LogDriver:             r.str("logging.driver"),
		LogOptions:            r.stringMap("logging.options"),
		LogAggregate:          r.boolean("logging.aggregate"),
		VictoriaLogsImage:     r.str("logging.victoriaLogsImage"),
		LogRetention:          r.str("logging.retention"),
		LogLocalPort:          r.integer("logging.localPort"),
		LogSyslogPort:         r.integer("logging.syslogPort"),
	}
	c.SecretEnv, c.secretEnvIsSecret = r.secretMap("secretEnv")
	applyDefaults(c)
	errs := append(append(envKeyProblems(), r.errs...), c.validate()...)
	errs = append(errs, stackFileProblems(ctx.Stack())...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid stack config (%d problems; nothing was changed):\n%w", len(errs), errors.Join(errs...))
	}
	return c, nil
}
