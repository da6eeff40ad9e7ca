package stacks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	k8s "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/kubernetes"
	"github.com/fastapi-infra/fastapi-infra/components/monitoring"
	"github.com/fastapi-infra/fastapi-infra/components/service"
	"github.com/fastapi-infra/fastapi-infra/components/singleserver"
)

// Run is the Pulumi program: config -> validated Config -> the component of
// the stack's architecture. main.go, the Automation API driver and the
// end-to-end tests all run this same function.
func Run(ctx *pulumi.Context) error {
	c, err := Load(ctx)
	if err != nil {
		return err
	}
	c.stack = ctx.Stack()
	if err := c.guardDatabaseMajor(ctx); err != nil {
		return err
	}
	ctx.Export("architecture", pulumi.String(string(c.Architecture)))
	if c.DB.Mode != service.DatabaseExternal {
		ctx.Export(databaseImageOutput, pulumi.String(c.DB.Image))
	}
	switch c.Architecture {
	case Kubernetes:
		return deployKubernetes(ctx, c)
	default:
		return deploySingleServer(ctx, c)
	}
}

func deployKubernetes(ctx *pulumi.Context, c *Config) error {
	if err := c.checkStorage(ctx.Context()); err != nil {
		return err
	}
	provArgs := &k8s.ProviderArgs{EnableServerSideApply: pulumi.Bool(true)}
	switch {
	case c.Kubernetes.RenderYAMLTo != "":
		// Rendering never contacts a cluster, and the provider rejects a
		// kubeconfig beside renderYamlToDirectory: a stack that deploys can
		// still render by setting this one key.
		provArgs.RenderYamlToDirectory = pulumi.String(c.Kubernetes.RenderYAMLTo)
	default:
		if c.Kubernetes.Kubeconfig != "" {
			provArgs.Kubeconfig = pulumi.String(c.Kubernetes.Kubeconfig)
		}
		if c.kubeconfigContent.set {
			provArgs.Kubeconfig = c.kubeconfigContent.output()
		}
		if c.Kubernetes.Context != "" {
			provArgs.Context = pulumi.String(c.Kubernetes.Context)
		}
	}
	prov, err := k8s.NewProvider(ctx, "kubernetes", provArgs)
	if err != nil {
		return err
	}
	spec := c.Spec()
	if c.Kubernetes.RenderYAMLTo != "" {
		// The provider writes Secrets to disk in plain text.
		spec = spec.Redacted()
	}
	args := &kubernetes.Args{
		Service:             spec,
		Rendered:            c.Kubernetes.RenderYAMLTo != "",
		Namespace:           c.Kubernetes.Namespace,
		CreateNamespace:     c.Kubernetes.CreateNamespace,
		IngressClass:        c.Kubernetes.IngressClass,
		IngressNamespace:    c.Kubernetes.IngressNamespace,
		ImagePullPolicy:     c.Kubernetes.ImagePullPolicy,
		NodeSelector:        c.Kubernetes.NodeSelector,
		TrustedProxies:      c.Kubernetes.TrustedProxies,
		BodyLimit:           c.Proxy.BodyLimit,
		PodDisruptionBudget: c.Kubernetes.PDB,
		NetworkPolicy:       c.Kubernetes.NetworkPolicy,
		DNSNamespace:        c.Kubernetes.DNSNamespace,
		DNSCIDRs:            c.Kubernetes.DNSCIDRs,
		DatabaseCIDRs:       c.Kubernetes.DatabaseCIDRs,
	}
	if c.Kubernetes.HPA {
		args.Autoscaling = &kubernetes.Autoscaling{MinReplicas: c.Kubernetes.HPAMin, MaxReplicas: c.Kubernetes.HPAMax, CPUTarget: c.Kubernetes.HPACPUTarget}
	}
	if c.Monitoring.Enabled {
		rules, exporter := c.serviceAndDatabaseAlerts(service.DatabaseInCluster)
		// The Service's name is the scrape job's name (ServiceMonitor).
		args.Monitoring = &kubernetes.Monitoring{
			Operator:  c.Monitoring.PrometheusOperator,
			Namespace: c.Monitoring.Namespace,
			// The cluster's Prometheus has its own external labels: the
			// stack's go on the rules.
			Rules:                 rules.WithLabels(c.alertLabels()),
			Interval:              c.Monitoring.Interval,
			PostgresExporterImage: exporter,
			Alerting:              &kubernetes.Alerting{Receivers: c.Receivers(), Routing: c.Routing()},
		}
	}
	svc, err := kubernetes.New(ctx, c.App.Name, args, pulumi.Providers(prov))
	if err != nil {
		return err
	}
	ctx.Export("url", svc.URL)
	ctx.Export("namespace", svc.Namespace)
	ctx.Export("service", svc.ServiceName)
	ctx.Export("ingressHost", svc.IngressHost)
	ctx.Export("monitoring", pulumi.String(kubernetesMonitoringOutput(c)))
	return nil
}

func deploySingleServer(ctx *pulumi.Context, c *Config) error {
	provArgs := &docker.ProviderArgs{Host: pulumi.String(c.Docker.Host)}
	if c.Docker.CertPath != "" {
		provArgs.CertPath = pulumi.String(c.Docker.CertPath)
	}
	prov, err := docker.NewProvider(ctx, "docker", provArgs)
	if err != nil {
		return err
	}
	var mon *singleserver.Monitoring
	if c.Monitoring.Enabled {
		rules, exporter := c.serviceAndDatabaseAlerts(service.DatabaseContainer)
		mon = &singleserver.Monitoring{Image: c.Monitoring.PrometheusImage, Retention: c.Monitoring.Retention, LocalPort: c.Monitoring.LocalPort,
			Rules: rules, Interval: c.Monitoring.Interval, ExternalLabels: c.alertLabels(), PostgresExporterImage: exporter,
			Alertmanager: &singleserver.Alertmanager{Image: c.Alerting.AlertmanagerImage, LocalPort: c.Alerting.LocalPort,
				Receivers: c.Receivers(), Routing: c.Routing()}}
	}
	srv, err := singleserver.New(ctx, c.App.Name, &singleserver.Args{
		Service:             c.Spec(),
		Subnet:              c.dockerSubnet(),
		NamePrefix:          c.dockerNamePrefix(),
		RefreshImages:       c.Docker.RefreshImages,
		Proxy:               c.Proxy.Kind,
		ProxyImage:          c.Proxy.Image,
		TraefikImage:        c.Proxy.TraefikImage,
		HTTPPort:            c.Proxy.HTTPPort,
		HTTPSPort:           c.Proxy.HTTPSPort,
		BodyLimit:           c.Proxy.BodyLimit,
		RateLimit:           c.Proxy.RateLimit,
		ConnLimit:           c.Proxy.ConnLimit,
		SecretsDigest:       c.secretsDigest(),
		LogDriver:           c.Logging.Driver,
		LogOptions:          c.Logging.Options,
		Logs:                c.logStore(),
		Monitoring:          mon,
		StartTimeoutSeconds: c.App.StartTimeout,
		// The engine's, so that a feature it lacks is never asked for.
		EngineAPIVersion: c.engineAPIVersion(ctx),
	}, pulumi.Providers(prov))
	if err != nil {
		return err
	}
	ctx.Export("url", srv.URL)
	ctx.Export("network", srv.Network)
	ctx.Export("containers", srv.ContainerNames)
	ctx.Export("volumes", srv.Volumes)
	monitoringOut, alertingOut := "off (monitoring.enabled false)", "off (monitoring.enabled false)"
	if c.Monitoring.Enabled {
		monitoringOut = fmt.Sprintf("Prometheus on http://127.0.0.1:%d of the Docker host (alerts: /alerts), scraping job %s", c.Monitoring.LocalPort, c.App.Name)
		alertingOut = fmt.Sprintf("Alertmanager on http://127.0.0.1:%d of the Docker host (alerts, silences); %s", c.Alerting.LocalPort, deliveryOutput(c))
	}
	ctx.Export("monitoring", pulumi.String(monitoringOut))
	ctx.Export("alerting", pulumi.String(alertingOut))
	logsOut := fmt.Sprintf("each container's %s log (docker logs <name>); logging.aggregate puts them in one place", c.Logging.Driver)
	if c.Logging.Aggregate {
		logsOut = fmt.Sprintf("VictoriaLogs on http://127.0.0.1:%d of the Docker host (UI: /select/vmui, LogsQL: /select/logsql/query), every container's lines for %s; docker logs works too", c.Logging.LocalPort, c.Logging.Retention)
	}
	ctx.Export("logs", pulumi.String(logsOut))
	return nil
}

// logStore is the single server's VictoriaLogs, with logging.aggregate.
func (c *Config) logStore() *singleserver.Logs {
	if !c.Logging.Aggregate {
		return nil
	}
	return &singleserver.Logs{Image: c.Logging.VictoriaLogsImage, Retention: c.Logging.Retention, LocalPort: c.Logging.LocalPort, SyslogPort: c.Logging.SyslogPort}
}

// serviceAndDatabaseAlerts are the alert rules, with the database's when
// the stack runs its own (db.mode ownMode) and so its exporter, whose
// image it returns ("" otherwise).
func (c *Config) serviceAndDatabaseAlerts(ownMode service.DatabaseMode) (monitoring.Group, string) {
	rules := c.Alerts()
	if c.DB.Mode != ownMode || c.Monitoring.PostgresExporterImage == "" {
		return rules, ""
	}
	var stall time.Duration
	if c.DB.BackupS3.Endpoint != "" {
		stall = monitoring.ArchiveStall
	}
	rules.Rules = append(rules.Rules, monitoring.DatabaseAlerts(c.App.Name, c.backupMaxAge(), stall)...)
	return rules, c.Monitoring.PostgresExporterImage
}

// deliveryOutput says who alerts reach, naming the channels, never a URL.
func deliveryOutput(c *Config) string {
	r := c.Receivers()
	if !r.Any() {
		return "no receiver: alerts reach no one until alertWebhookUrl, alertSlackUrl or alerting.emailTo is set"
	}
	return "delivers to " + strings.Join(r.Channels(), ", ")
}

// secretsDigest changes when a secret that reaches the app containers
// changes, so that the single server rolls them like a new release. It is
// an HMAC keyed with the stack's random rolloutKey, cut to 40 bits: without
// the key the names it goes into (URNs, docker ps, outputs, PR comments)
// say nothing about the secrets, where a hash salted with the public stack
// name would let a dictionary find a human-chosen password.
func (c *Config) secretsDigest() string {
	h := hmac.New(sha256.New, []byte(c.rolloutKey.plain))
	h.Write([]byte(c.dbPassword.plain + "\x00" + c.dbAppPassword.plain + "\x00"))
	for _, k := range slices.Sorted(maps.Keys(c.SecretEnv)) {
		h.Write([]byte(k + "=" + c.SecretEnv[k] + "\x00"))
	}
	return hex.EncodeToString(h.Sum(nil))[:10]
}

// dockerNamePrefix names a single server's Docker objects: docker.namePrefix,
// or <app.name>-<stack>, so that two stacks on one host never share a name.
func (c *Config) dockerNamePrefix() string {
	if c.Docker.NamePrefix != "" {
		return c.Docker.NamePrefix
	}
	return c.App.Name + "-" + c.stack
}

// dockerSubnet is docker.subnet, or a /24 of 172.30.0.0/16 chosen by the
// name prefix: Docker refuses two networks on overlapping subnets.
func (c *Config) dockerSubnet() string {
	if c.Docker.Subnet != "" {
		return c.Docker.Subnet
	}
	sum := sha256.Sum256([]byte(c.dockerNamePrefix()))
	return fmt.Sprintf("172.30.%d.0/24", sum[0])
}

// kubernetesMonitoringOutput says where the metrics and alerts are.
func kubernetesMonitoringOutput(c *Config) string {
	switch {
	case !c.Monitoring.Enabled:
		return "off (monitoring.enabled false)"
	case c.Monitoring.PrometheusOperator:
		return fmt.Sprintf("ServiceMonitor %[1]s and PrometheusRule %[1]s in namespace %[2]s: the cluster's Prometheus (namespace %[3]s) scrapes /metrics and evaluates the alerts", c.App.Name, c.Kubernetes.Namespace, c.Monitoring.Namespace)
	default:
		return fmt.Sprintf("pods annotated prometheus.io/scrape on port %d; load the alert rules into your Prometheus (see docs/monitoring.md)", c.App.Port)
	}
}
