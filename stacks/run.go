package stacks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	k8s "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/kubernetes"
	"github.com/fastapi-infra/fastapi-infra/components/monitoring"
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
	ctx.Export("architecture", pulumi.String(string(c.Architecture)))
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
	case c.RenderYAMLTo != "":
		// Rendering never contacts a cluster, and the provider rejects a
		// kubeconfig beside renderYamlToDirectory: a stack that deploys can
		// still render by setting this one key.
		provArgs.RenderYamlToDirectory = pulumi.String(c.RenderYAMLTo)
	default:
		if c.Kubeconfig != "" {
			provArgs.Kubeconfig = pulumi.String(c.Kubeconfig)
		}
		if c.kubeconfigContent.set {
			provArgs.Kubeconfig = c.kubeconfigContent.output()
		}
		if c.KubeContext != "" {
			provArgs.Context = pulumi.String(c.KubeContext)
		}
	}
	prov, err := k8s.NewProvider(ctx, "kubernetes", provArgs)
	if err != nil {
		return err
	}
	spec := c.Spec()
	if c.RenderYAMLTo != "" {
		// The provider writes Secrets to disk in plain text.
		spec = spec.Redacted()
	}
	args := &kubernetes.Args{
		Service:             spec,
		Namespace:           c.Namespace,
		CreateNamespace:     c.CreateNamespace,
		IngressClass:        c.IngressClass,
		IngressNamespace:    c.IngressNamespace,
		ImagePullPolicy:     c.ImagePullPolicy,
		NodeSelector:        c.NodeSelector,
		TrustedProxies:      c.TrustedProxies,
		BodyLimit:           c.BodyLimit,
		PodDisruptionBudget: c.PDB,
		NetworkPolicy:       c.NetworkPolicy,
	}
	if c.HPA {
		args.Autoscaling = &kubernetes.Autoscaling{MinReplicas: c.HPAMin, MaxReplicas: c.HPAMax, CPUTarget: c.HPACPUTarget}
	}
	if c.Monitoring {
		rules, exporter := c.serviceAndDatabaseAlerts("in-cluster")
		// The Service's name is the scrape job's name (ServiceMonitor).
		args.Monitoring = &kubernetes.Monitoring{
			Operator:  c.PrometheusOperator,
			Namespace: c.MonitoringNamespace,
			// The cluster's Prometheus has its own external labels: the
			// stack's go on the rules.
			Rules:                 rules.WithLabels(c.alertLabels()),
			Interval:              c.MonitoringInterval,
			PostgresExporterImage: exporter,
			Alerting:              &kubernetes.Alerting{Receivers: c.Receivers(), Routing: c.Routing()},
		}
	}
	svc, err := kubernetes.New(ctx, c.AppName, args, pulumi.Providers(prov))
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
	prov, err := docker.NewProvider(ctx, "docker", &docker.ProviderArgs{Host: pulumi.String(c.DockerHost)})
	if err != nil {
		return err
	}
	var mon *singleserver.Monitoring
	if c.Monitoring {
		rules, exporter := c.serviceAndDatabaseAlerts("container")
		mon = &singleserver.Monitoring{Image: c.PrometheusImage, Retention: c.Retention, LocalPort: c.LocalPort,
			Rules: rules, Interval: c.MonitoringInterval, ExternalLabels: c.alertLabels(), PostgresExporterImage: exporter,
			Alertmanager: &singleserver.Alertmanager{Image: c.AlertmanagerImage, LocalPort: c.AlertmanagerPort,
				Receivers: c.Receivers(), Routing: c.Routing()}}
	}
	srv, err := singleserver.New(ctx, c.AppName, &singleserver.Args{
		Service:       c.Spec(),
		Subnet:        c.dockerSubnet(),
		NamePrefix:    c.dockerNamePrefix(),
		RefreshImages: c.RefreshImages,
		Proxy:         singleserver.ProxyKind(c.ProxyKind),
		ProxyImage:    c.ProxyImage,
		TraefikImage:  c.TraefikImage,
		HTTPPort:      c.HTTPPort,
		HTTPSPort:     c.HTTPSPort,
		BodyLimit:     c.BodyLimit,
		RateLimit:     c.RateLimit,
		ConnLimit:     c.ConnLimit,
		SecretsDigest: c.secretsDigest(),
		LogDriver:     c.LogDriver,
		LogOptions:    c.LogOptions,
		Logs:          c.logStore(),
		Monitoring:    mon,
	}, pulumi.Providers(prov))
	if err != nil {
		return err
	}
	ctx.Export("url", srv.URL)
	ctx.Export("network", srv.Network)
	ctx.Export("containers", srv.ContainerNames)
	ctx.Export("volumes", srv.Volumes)
	monitoringOut, alertingOut := "off (monitoring.enabled false)", "off (monitoring.enabled false)"
	if c.Monitoring {
		monitoringOut = fmt.Sprintf("Prometheus on http://127.0.0.1:%d of the Docker host (alerts: /alerts), scraping job %s", c.LocalPort, c.AppName)
		alertingOut = fmt.Sprintf("Alertmanager on http://127.0.0.1:%d of the Docker host (alerts, silences); %s", c.AlertmanagerPort, deliveryOutput(c))
	}
	ctx.Export("monitoring", pulumi.String(monitoringOut))
	ctx.Export("alerting", pulumi.String(alertingOut))
	logsOut := fmt.Sprintf("each container's %s log (docker logs <name>); logging.aggregate puts them in one place", c.LogDriver)
	if c.LogAggregate {
		logsOut = fmt.Sprintf("VictoriaLogs on http://127.0.0.1:%d of the Docker host (UI: /select/vmui, LogsQL: /select/logsql/query), every container's lines for %s; docker logs works too", c.LogLocalPort, c.LogRetention)
	}
	ctx.Export("logs", pulumi.String(logsOut))
	return nil
}

// logStore is the single server's VictoriaLogs, with logging.aggregate.
func (c *Config) logStore() *singleserver.Logs {
	if !c.LogAggregate {
		return nil
	}
	return &singleserver.Logs{Image: c.VictoriaLogsImage, Retention: c.LogRetention, LocalPort: c.LogLocalPort, SyslogPort: c.LogSyslogPort}
}

// serviceAndDatabaseAlerts are the alert rules, with the database's when
// the stack runs its own (db.mode ownMode) and so its exporter, whose
// image it returns ("" otherwise).
func (c *Config) serviceAndDatabaseAlerts(ownMode string) (monitoring.Group, string) {
	rules := c.Alerts()
	if c.DBMode != ownMode || c.PostgresExporterImage == "" {
		return rules, ""
	}
	rules.Rules = append(rules.Rules, monitoring.DatabaseAlerts(c.AppName, c.backupMaxAge())...)
	return rules, c.PostgresExporterImage
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
	if c.DockerNamePrefix != "" {
		return c.DockerNamePrefix
	}
	return c.AppName + "-" + c.stack
}

// dockerSubnet is docker.subnet, or a /24 of 172.30.0.0/16 chosen by the
// name prefix: Docker refuses two networks on overlapping subnets.
func (c *Config) dockerSubnet() string {
	if c.DockerSubnet != "" {
		return c.DockerSubnet
	}
	sum := sha256.Sum256([]byte(c.dockerNamePrefix()))
	return fmt.Sprintf("172.30.%d.0/24", sum[0])
}

// kubernetesMonitoringOutput says where the metrics and alerts are.
func kubernetesMonitoringOutput(c *Config) string {
	switch {
	case !c.Monitoring:
		return "off (monitoring.enabled false)"
	case c.PrometheusOperator:
		return fmt.Sprintf("ServiceMonitor %[1]s and PrometheusRule %[1]s in namespace %[2]s: the cluster's Prometheus (namespace %[3]s) scrapes /metrics and evaluates the alerts", c.AppName, c.Namespace, c.MonitoringNamespace)
	default:
		return fmt.Sprintf("pods annotated prometheus.io/scrape on port %d; load the alert rules into your Prometheus (see the README)", c.Port)
	}
}
