package stacks

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"

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

	Domain                                                 string
	TLSMode, TLSACMEEmail, TLSSecretName, TLSClusterIssuer string
	tlsCert, tlsKey                                        secretValue

	DBMode, DBImage, DBHost, DBName, DBUser, DBSSLMode, DBStorageSize string
	DBPort                                                            int
	dbPassword                                                        secretValue
	DBRetainOnDelete                                                  bool

	RegistryServer, RegistryUsername string
	registryPassword                 secretValue

	DockerHost, DockerSubnet                       string
	ProxyKind, ProxyImage, TraefikImage, BodyLimit string
	HTTPPort, HTTPSPort                            int

	Kubeconfig, KubeContext, RenderYAMLTo, Namespace, IngressClass, IngressNamespace, ImagePullPolicy string
	CreateNamespace, PDB, HPA, NetworkPolicy                                                          bool
	HPAMin, HPAMax, HPACPUTarget                                                                      int
}

// reader reads keys with the SDK's Try* functions, falls back to the key
// registry's default when a key is not set, and collects every error with
// its key instead of stopping at the first.
type reader struct {
	ctx  *pulumi.Context
	errs []error
}

func (r *reader) fail(key, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("%s: %s", FullKey(key), fmt.Sprintf(format, args...)))
}

// missing reports whether err means "not set", in which case the caller
// takes the default; any other error is recorded against the key.
func (r *reader) missing(key string, err error, want string) bool {
	if errors.Is(err, config.ErrMissingVar) {
		return true
	}
	raw, _ := r.ctx.GetConfig(FullKey(key))
	if k, _ := keyIndex(key); k.Secret || r.ctx.IsConfigSecret(FullKey(key)) {
		raw = "[secret]"
	}
	r.fail(key, "must be %s, got %q", want, raw)
	return false
}

func defaultOf(key string) any {
	k, ok := keyIndex(key)
	if !ok {
		panic("stacks: reading undeclared key " + key) // a programming error, caught by the tests
	}
	return k.Default
}

func (r *reader) str(key string) string {
	v, err := config.Try(r.ctx, key)
	if err == nil {
		return v
	}
	if r.missing(key, err, "a string") {
		d, _ := defaultOf(key).(string)
		return d
	}
	return ""
}

func (r *reader) integer(key string) int {
	v, err := config.TryInt(r.ctx, key)
	if err == nil {
		return v
	}
	if r.missing(key, err, "a whole number") {
		d, _ := defaultOf(key).(int)
		return d
	}
	return 0
}

func (r *reader) boolean(key string) bool {
	v, err := config.TryBool(r.ctx, key)
	if err == nil {
		return v
	}
	if r.missing(key, err, "true or false") {
		d, _ := defaultOf(key).(bool)
		return d
	}
	return false
}

func (r *reader) stringList(key string) []string {
	var v []string
	err := config.TryObject(r.ctx, key, &v)
	if err == nil {
		return v
	}
	if r.missing(key, err, `a list of strings such as ["alembic", "upgrade", "head"]`) {
		for _, s := range defaultOf(key).([]any) {
			v = append(v, s.(string))
		}
	}
	return v
}

func (r *reader) stringMap(key string) map[string]string {
	v := map[string]string{}
	var err error
	if r.ctx.IsConfigSecret(FullKey(key)) {
		_, err = config.TrySecretObject(r.ctx, key, &v)
	} else {
		err = config.TryObject(r.ctx, key, &v)
	}
	if err == nil || r.missing(key, err, "an object of string values (NAME: value)") {
		return v
	}
	return map[string]string{}
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

// envKeyProblems rejects unknown keys when the engine passes the whole
// config in the environment (the Go language host and the mock tests do);
// the Automation API driver runs CheckKnownKeys on the stack's config itself.
func envKeyProblems() []error {
	var all map[string]string
	if err := json.Unmarshal([]byte(os.Getenv(pulumi.EnvConfig)), &all); err != nil {
		return nil // unset, or not ours to judge: the SDK reads it the same way
	}
	return unknownKeys(slices.Collect(maps.Keys(all)))
}

// Load reads, defaults and validates the stack config. The error lists every
// problem, each on its own line, naming the key.
func Load(ctx *pulumi.Context) (*Config, error) {
	r := &reader{ctx: ctx}
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
		SecretEnv:            r.stringMap("app.secretEnv"),
		secretEnvIsSecret:    ctx.IsConfigSecret(FullKey("app.secretEnv")),
		ShutdownGraceSeconds: r.integer("app.shutdownGraceSeconds"),
		ProxyHeaders:         r.boolean("app.proxyHeaders"),

		LivePath:  r.str("health.livePath"),
		ReadyPath: r.str("health.readyPath"),

		MigrationStrategy: r.str("migration.strategy"),
		MigrationCommand:  r.stringList("migration.command"),

		Domain:           r.str("domain"),
		TLSMode:          r.str("tls.mode"),
		tlsCert:          r.secret("tls.cert"),
		tlsKey:           r.secret("tls.key"),
		TLSACMEEmail:     r.str("tls.acmeEmail"),
		TLSSecretName:    r.str("tls.secretName"),
		TLSClusterIssuer: r.str("tls.clusterIssuer"),

		DBMode:           r.str("db.mode"),
		DBImage:          r.str("db.image"),
		DBHost:           r.str("db.host"),
		DBPort:           r.integer("db.port"),
		DBName:           r.str("db.name"),
		DBUser:           r.str("db.user"),
		dbPassword:       r.secret("db.password"),
		DBSSLMode:        r.str("db.sslmode"),
		DBRetainOnDelete: r.boolean("db.retainOnDelete"),
		DBStorageSize:    r.str("db.storageSize"),

		RegistryServer:   r.str("registry.server"),
		RegistryUsername: r.str("registry.username"),
		registryPassword: r.secret("registry.password"),

		DockerHost:   r.str("docker.host"),
		DockerSubnet: r.str("docker.subnet"),
		ProxyKind:    r.str("proxy.kind"),
		ProxyImage:   r.str("proxy.image"),
		TraefikImage: r.str("proxy.traefikImage"),
		HTTPPort:     r.integer("proxy.httpPort"),
		HTTPSPort:    r.integer("proxy.httpsPort"),
		BodyLimit:    r.str("proxy.bodyLimit"),

		Kubeconfig:       r.str("kubernetes.kubeconfig"),
		RenderYAMLTo:     r.str("kubernetes.renderYamlTo"),
		KubeContext:      r.str("kubernetes.context"),
		Namespace:        r.str("kubernetes.namespace"),
		CreateNamespace:  r.boolean("kubernetes.createNamespace"),
		IngressClass:     r.str("kubernetes.ingressClass"),
		IngressNamespace: r.str("kubernetes.ingressNamespace"),
		ImagePullPolicy:  r.str("kubernetes.imagePullPolicy"),
		PDB:              r.boolean("kubernetes.pdb"),
		HPA:              r.boolean("kubernetes.hpa.enabled"),
		HPAMin:           r.integer("kubernetes.hpa.minReplicas"),
		HPAMax:           r.integer("kubernetes.hpa.maxReplicas"),
		HPACPUTarget:     r.integer("kubernetes.hpa.cpuTarget"),
		NetworkPolicy:    r.boolean("kubernetes.networkPolicy"),
	}
	applyDefaults(c)
	errs := append(append(envKeyProblems(), r.errs...), c.validate()...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid stack config (%d problems; nothing was changed):\n%w", len(errs), errors.Join(errs...))
	}
	return c, nil
}
