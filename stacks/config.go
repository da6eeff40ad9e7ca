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

	"github.com/fastapi-infra/fastapi-infra/components/service"
	"github.com/fastapi-infra/fastapi-infra/components/singleserver"
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

// Config is the stack config as read, before it becomes a service.Spec: one
// field per key of keys.go, grouped as the keys are (app.*, tls.*, db.*,
// ...), with the secrets kept unexported.
type Config struct {
	Architecture      Architecture
	Environment       string
	Domain            string
	SecretEnv         map[string]string
	secretEnvIsSecret bool
	App               AppConfig
	TLS               TLSConfig
	DB                DBConfig
	Registry          RegistryConfig
	Docker            DockerConfig
	Proxy             ProxyConfig
	Kubernetes        KubernetesConfig
	Monitoring        MonitoringConfig
	Alerting          AlertingConfig
	Logging           LoggingConfig

	// Secrets are top-level keys; their values never leave the stacks package.
	tlsCert           secretValue
	tlsKey            secretValue
	dbPassword        secretValue
	dbAppPassword     secretValue
	registryPassword  secretValue
	rolloutKey        secretValue
	kubeconfigContent secretValue
	alertWebhookURL   secretValue
	alertSlackURL     secretValue
	alertSMTPPassword secretValue
	backupAccessKey   secretValue
	backupSecretKey   secretValue
	backupCipherKey   secretValue

	stack    string          // the stack's name, for names that must differ per stack
	unparsed map[string]bool // keys whose value did not parse (reported when read)
}

// AppConfig holds the keys app.* health.* migration.*: the service itself.
type AppConfig struct {
	Name                 string
	Image                string
	BuildContext         string
	Dockerfile           string
	Module               string
	Port                 int
	Workers              int
	Replicas             int
	CPU                  service.Quantity
	Memory               service.Quantity
	Env                  map[string]string
	ShutdownGraceSeconds int
	ProxyHeaders         bool
	TestRoutes           bool
	LivePath             string
	ReadyPath            string
	StartTimeout         int
	MigrationStrategy    service.MigrationStrategy
	MigrationCommand     []string
}

// TLSConfig holds the keys tls.*.
type TLSConfig struct {
	Mode          service.TLSMode
	ACMEEmail     string
	ACMEServer    string
	ACMECA        string
	SecretName    string
	ClusterIssuer string
}

// DBConfig holds the keys db.*.
type DBConfig struct {
	Mode           service.DatabaseMode
	Image          string
	Host           string
	Port           int
	Name           string
	User           string
	AppUser        string
	SSLMode        string
	CACert         string
	RetainOnDelete bool
	StorageSize    string
	CPU            service.Quantity
	StorageClass   string
	Memory         service.Quantity
	BackupSchedule string
	BackupKeep     int
	// Backup* are db.backup.*: the off-host repository and its limits.
	BackupS3             S3Config
	BackupArchiveTimeout int
	BackupSameHost       bool
}

// S3Config holds the keys db.backup.s3.*.
type S3Config struct {
	Endpoint, Bucket, Region, Path, CACert, HostAddress string
	PathStyle                                           bool
}

// RegistryConfig holds the keys registry.*.
type RegistryConfig struct {
	Server   string
	Username string
}

// DockerConfig holds the keys docker.*: the single server's engine.
type DockerConfig struct {
	Host          string
	CertPath      string
	Subnet        string
	RefreshImages bool
	NamePrefix    string
}

// ProxyConfig holds the keys proxy.*: the single server's proxy.
type ProxyConfig struct {
	Kind         singleserver.ProxyKind
	Image        string
	TraefikImage string
	HTTPPort     int
	HTTPSPort    int
	BodyLimit    string
	RateLimit    int
	ConnLimit    int
}

// KubernetesConfig holds the keys kubernetes.*.
type KubernetesConfig struct {
	Kubeconfig       string
	RenderYAMLTo     string
	Context          string
	Namespace        string
	CreateNamespace  bool
	IngressClass     string
	IngressNamespace string
	ImagePullPolicy  string
	NodeSelector     map[string]string
	TrustedProxies   []string
	PDB              bool
	HPA              bool
	HPAMin           int
	HPAMax           int
	HPACPUTarget     int
	NetworkPolicy    bool
	DNSNamespace     string
	DNSCIDRs         []string
	DatabaseCIDRs    []string
}

// MonitoringConfig holds the keys monitoring.*.
type MonitoringConfig struct {
	Enabled               bool
	PrometheusOperator    bool
	Namespace             string
	DownMinutes           int
	ErrorRatio            float64
	P95Seconds            float64
	RestartsPerHour       int
	PrometheusImage       string
	Retention             string
	LocalPort             int
	Interval              string
	PostgresExporterImage string
}

// AlertingConfig holds the keys alerting.*.
type AlertingConfig struct {
	AlertmanagerImage string
	LocalPort         int
	SlackChannel      string
	EmailTo           string
	EmailFrom         string
	SMTPHost          string
	SMTPUsername      string
	GroupWait         string
	GroupInterval     string
	RepeatInterval    string
}

// LoggingConfig holds the keys logging.*: the single server's container logs.
type LoggingConfig struct {
	Driver            string
	Options           map[string]string
	Aggregate         bool
	VictoriaLogsImage string
	Retention         string
	LocalPort         int
	SyslogPort        int
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
	// unparsed are the keys whose value did not parse (reported here):
	// validate does not check the range of what is not there.
	unparsed map[string]bool
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

// quantity reads a CPU or memory amount and parses it, once: a value that
// does not parse is reported on its key, and the Quantity keeps its text.
func (r *reader) quantity(key string, parse func(string) (service.Quantity, error)) service.Quantity {
	s := r.str(key)
	q, err := parse(s)
	if err != nil {
		r.fail(key, "%v", err)
		r.unparsed[key] = true
		return service.Quantity{Text: s}
	}
	return q
}

// number reads a decimal number; want says what it must be, for the error.
func (r *reader) number(key, want string) float64 {
	s := r.str(key)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		r.fail(key, "must be %s, got %q", want, s)
		r.unparsed[key] = true
	}
	return f
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
	r := &reader{ctx: ctx, groups: map[string]json.RawMessage{}, unparsed: map[string]bool{}}
	c := &Config{
		Architecture:      Architecture(r.str("architecture")),
		Environment:       r.str("environment"),
		Domain:            r.str("domain"),
		tlsCert:           r.secret("tlsCert"),
		tlsKey:            r.secret("tlsKey"),
		dbPassword:        r.secret("dbPassword"),
		dbAppPassword:     r.secret("dbAppPassword"),
		registryPassword:  r.secret("registryPassword"),
		rolloutKey:        r.secret("rolloutKey"),
		kubeconfigContent: r.secret("kubeconfig"),
		alertWebhookURL:   r.secret("alertWebhookUrl"),
		alertSlackURL:     r.secret("alertSlackUrl"),
		alertSMTPPassword: r.secret("alertSmtpPassword"),
		backupAccessKey:   r.secret("backupS3AccessKey"),
		backupSecretKey:   r.secret("backupS3SecretKey"),
		backupCipherKey:   r.secret("backupEncryptionKey"),
		App: AppConfig{
			Name:                 r.str("app.name"),
			Image:                r.str("app.image"),
			BuildContext:         r.str("app.buildContext"),
			Dockerfile:           r.str("app.dockerfile"),
			Module:               r.str("app.module"),
			Port:                 r.integer("app.port"),
			Workers:              r.integer("app.workers"),
			Replicas:             r.integer("app.replicas"),
			CPU:                  r.quantity("app.cpu", service.ParseCPU),
			Memory:               r.quantity("app.memory", service.ParseMemory),
			Env:                  r.stringMap("app.env"),
			ShutdownGraceSeconds: r.integer("app.shutdownGraceSeconds"),
			ProxyHeaders:         r.boolean("app.proxyHeaders"),
			TestRoutes:           r.boolean("app.testRoutes"),
			LivePath:             r.str("health.livePath"),
			ReadyPath:            r.str("health.readyPath"),
			StartTimeout:         r.integer("health.startTimeout"),
			MigrationStrategy:    service.MigrationStrategy(r.str("migration.strategy")),
			MigrationCommand:     r.stringList("migration.command"),
		},
		TLS: TLSConfig{
			Mode:          service.TLSMode(r.str("tls.mode")),
			ACMEEmail:     r.str("tls.acmeEmail"),
			ACMEServer:    r.str("tls.acmeServer"),
			ACMECA:        r.str("tls.acmeCA"),
			SecretName:    r.str("tls.secretName"),
			ClusterIssuer: r.str("tls.clusterIssuer"),
		},
		DB: DBConfig{
			Mode:           service.DatabaseMode(r.str("db.mode")),
			Image:          r.str("db.image"),
			Host:           r.str("db.host"),
			Port:           r.integer("db.port"),
			Name:           r.str("db.name"),
			User:           r.str("db.user"),
			AppUser:        r.str("db.appUser"),
			SSLMode:        r.str("db.sslmode"),
			CACert:         r.str("db.caCert"),
			RetainOnDelete: r.boolean("db.retainOnDelete"),
			StorageSize:    r.str("db.storageSize"),
			CPU:            r.quantity("db.cpu", service.ParseCPU),
			StorageClass:   r.str("db.storageClass"),
			Memory:         r.quantity("db.memory", service.ParseMemory),
			BackupSchedule: r.str("db.backup.schedule"),
			BackupKeep:     r.integer("db.backup.keep"),
			BackupS3: S3Config{
				Endpoint:    r.str("db.backup.s3.endpoint"),
				Bucket:      r.str("db.backup.s3.bucket"),
				Region:      r.str("db.backup.s3.region"),
				PathStyle:   r.boolean("db.backup.s3.pathStyle"),
				Path:        r.str("db.backup.s3.path"),
				CACert:      r.str("db.backup.s3.caCert"),
				HostAddress: r.str("db.backup.s3.hostAddress"),
			},
			BackupArchiveTimeout: r.integer("db.backup.archiveTimeout"),
			BackupSameHost:       r.boolean("db.backup.sameHost"),
		},
		Registry: RegistryConfig{
			Server:   r.str("registry.server"),
			Username: r.str("registry.username"),
		},
		Docker: DockerConfig{
			Host:          r.str("docker.host"),
			CertPath:      r.str("docker.certPath"),
			Subnet:        r.str("docker.subnet"),
			RefreshImages: r.boolean("docker.refreshImages"),
			NamePrefix:    r.str("docker.namePrefix"),
		},
		Proxy: ProxyConfig{
			Kind:         singleserver.ProxyKind(r.str("proxy.kind")),
			Image:        r.str("proxy.image"),
			TraefikImage: r.str("proxy.traefikImage"),
			HTTPPort:     r.integer("proxy.httpPort"),
			HTTPSPort:    r.integer("proxy.httpsPort"),
			BodyLimit:    r.str("proxy.bodyLimit"),
			RateLimit:    r.integer("proxy.rateLimit"),
			ConnLimit:    r.integer("proxy.connLimit"),
		},
		Kubernetes: KubernetesConfig{
			Kubeconfig:       r.str("kubernetes.kubeconfig"),
			RenderYAMLTo:     r.str("kubernetes.renderYamlTo"),
			Context:          r.str("kubernetes.context"),
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
			DNSNamespace:     r.str("kubernetes.dnsNamespace"),
			DNSCIDRs:         r.stringList("kubernetes.dnsCIDRs"),
			DatabaseCIDRs:    r.stringList("kubernetes.databaseCIDRs"),
		},
		Monitoring: MonitoringConfig{
			Enabled:               r.boolean("monitoring.enabled"),
			PrometheusOperator:    r.boolean("monitoring.prometheusOperator"),
			Namespace:             r.str("monitoring.namespace"),
			DownMinutes:           r.integer("monitoring.downMinutes"),
			ErrorRatio:            r.number("monitoring.errorRatio", errorRatioWant),
			P95Seconds:            r.number("monitoring.p95Seconds", p95Want),
			RestartsPerHour:       r.integer("monitoring.restartsPerHour"),
			PrometheusImage:       r.str("monitoring.prometheusImage"),
			Retention:             r.str("monitoring.retention"),
			LocalPort:             r.integer("monitoring.localPort"),
			Interval:              r.str("monitoring.interval"),
			PostgresExporterImage: r.str("monitoring.postgresExporterImage"),
		},
		Alerting: AlertingConfig{
			AlertmanagerImage: r.str("alerting.alertmanagerImage"),
			LocalPort:         r.integer("alerting.localPort"),
			SlackChannel:      r.str("alerting.slackChannel"),
			EmailTo:           r.str("alerting.emailTo"),
			EmailFrom:         r.str("alerting.emailFrom"),
			SMTPHost:          r.str("alerting.smtpHost"),
			SMTPUsername:      r.str("alerting.smtpUsername"),
			GroupWait:         r.str("alerting.groupWait"),
			GroupInterval:     r.str("alerting.groupInterval"),
			RepeatInterval:    r.str("alerting.repeatInterval"),
		},
		Logging: LoggingConfig{
			Driver:            r.str("logging.driver"),
			Options:           r.stringMap("logging.options"),
			Aggregate:         r.boolean("logging.aggregate"),
			VictoriaLogsImage: r.str("logging.victoriaLogsImage"),
			Retention:         r.str("logging.retention"),
			LocalPort:         r.integer("logging.localPort"),
			SyslogPort:        r.integer("logging.syslogPort"),
		},
	}
	c.SecretEnv, c.secretEnvIsSecret = r.secretMap("secretEnv")
	c.unparsed = r.unparsed
	applyDefaults(c)
	errs := append(append(envKeyProblems(), r.errs...), c.validate()...)
	errs = append(errs, stackFileProblems(ctx.Stack())...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid stack config (%d problems; nothing was changed):\n%w", len(errs), errors.Join(errs...))
	}
	return c, nil
}
