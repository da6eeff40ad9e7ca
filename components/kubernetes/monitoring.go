package kubernetes

import (
	"cmp"
	"path"
	"strings"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/monitoring"
	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// Monitoring says how Prometheus finds the service.
type Monitoring struct {
	// Operator: the cluster runs the Prometheus Operator, so a
	// ServiceMonitor and a PrometheusRule are created; otherwise the pods
	// carry the conventional prometheus.io annotations.
	Operator bool
	// Namespace of Prometheus, admitted by the NetworkPolicy to the app port.
	Namespace string
	// Rules are the alerts (components/monitoring).
	Rules monitoring.Group
	// Interval is the ServiceMonitor's scrape interval; default 30s.
	Interval string
	// PostgresExporterImage, with an in-cluster database, runs
	// postgres_exporter in the database's pod (job
	// monitoring.PostgresJob, for monitoring.DatabaseAlerts).
	PostgresExporterImage string
	// Alerting, with the Operator and at least one receiver, adds an
	// AlertmanagerConfig that the cluster's Alertmanager merges: the
	// stack's receivers, routes by severity and inhibitions, with the
	// receivers' URLs and password in a Secret.
	Alerting *Alerting
}

// Alerting is where the service's alerts go.
type Alerting struct {
	Receivers monitoring.Receivers
	Routing   monitoring.Routing
}

// scrapeAnnotations are the prometheus.io conventions that annotation-based
// scrape configs (the Prometheus Helm chart's kubernetes-pods job) follow.
func (b *builder) scrapeAnnotations() pulumi.StringMap {
	m := b.args.Monitoring
	if m == nil || m.Operator {
		return nil
	}
	return pulumi.StringMap{
		"prometheus.io/scrape": pulumi.String("true"),
		"prometheus.io/port":   pulumi.Sprintf("%d", b.args.Service.Port),
		"prometheus.io/path":   pulumi.String("/metrics"),
	}
}

// databaseExporter says whether postgres_exporter runs in the in-cluster
// database's pod.
func (b *builder) databaseExporter() bool {
	m := b.args.Monitoring
	return m != nil && m.PostgresExporterImage != "" && b.args.Service.Database.Mode == service.DatabaseInCluster
}

// exporterSidecar is postgres_exporter in the database's pod: it reaches
// the server over the pod's loopback as service.MonitorUser (pg_monitor,
// made by the roles sidecar), with that role's password file alone (a
// volume of the Secret's one key, 0400 to the pod's user), and the backup
// query from a ConfigMap. It returns the container and the
// volumes it adds to the pod.
func (b *builder) exporterSidecar(sc *corev1.SecurityContextArgs, passwordMount corev1.VolumeMountArgs) (corev1.ContainerArgs, corev1.VolumeArray, error) {
	db := b.args.Service.Database
	e := monitoring.PostgresExporter{Host: "127.0.0.1", Port: db.Port, User: service.MonitorUser,
		PasswordFile: exporterSecretsDir + "/" + monitorPasswordFile, Backups: db.Backup.Schedule != ""}
	env := corev1.EnvVarArray{}
	for _, kv := range e.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env = append(env, corev1.EnvVarArgs{Name: pulumi.String(k), Value: pulumi.String(v)})
	}
	mounts := corev1.VolumeMountArray{passwordMount}
	var volumes corev1.VolumeArray
	if e.Backups {
		queries, err := corev1.NewConfigMap(b.ctx, b.name+"-db-exporter", &corev1.ConfigMapArgs{
			Metadata: b.autoNamed("database"),
			Data:     pulumi.StringMap{path.Base(monitoring.QueriesFile): pulumi.String(e.Queries())},
		}, b.opts()...)
		if err != nil {
			return corev1.ContainerArgs{}, nil, err
		}
		volumes = append(volumes, corev1.VolumeArgs{Name: pulumi.String("exporter-queries"), ConfigMap: corev1.ConfigMapVolumeSourceArgs{Name: queries.Metadata.Name()}})
		mounts = append(mounts, corev1.VolumeMountArgs{Name: pulumi.String("exporter-queries"), MountPath: pulumi.String(monitoring.QueriesDir), ReadOnly: pulumi.Bool(true)})
	}
	small := pulumi.StringMap{"cpu": pulumi.String("100m"), "memory": pulumi.String("64Mi"), "ephemeral-storage": pulumi.String("16Mi")}
	return corev1.ContainerArgs{
		Name:            pulumi.String("exporter"),
		Image:           pulumi.String(b.args.Monitoring.PostgresExporterImage),
		Args:            pulumi.ToStringArray(e.Args()),
		Env:             env,
		Ports:           corev1.ContainerPortArray{corev1.ContainerPortArgs{Name: pulumi.String("metrics"), ContainerPort: pulumi.Int(monitoring.PostgresExporterPort)}},
		Resources:       corev1.ResourceRequirementsArgs{Requests: small, Limits: small},
		SecurityContext: sc,
		LivenessProbe:   corev1.ProbeArgs{HttpGet: corev1.HTTPGetActionArgs{Path: pulumi.String("/"), Port: pulumi.String("metrics")}, PeriodSeconds: pulumi.Int(20)},
		VolumeMounts:    mounts,
	}, volumes, nil
}

// dbScrapeAnnotations: without the Operator, the database's pod carries
// the prometheus.io annotations for its exporter.
func (b *builder) dbScrapeAnnotations() pulumi.StringMap {
	if !b.databaseExporter() || b.args.Monitoring.Operator {
		return nil
	}
	return pulumi.StringMap{
		"prometheus.io/scrape": pulumi.String("true"),
		"prometheus.io/port":   pulumi.Sprintf("%d", monitoring.PostgresExporterPort),
		"prometheus.io/path":   pulumi.String("/metrics"),
	}
}

// buildMonitoring creates the ServiceMonitor and PrometheusRule custom
// resources for the Prometheus Operator. The ServiceMonitor scrapes the
// Service's http port, so the job label is the Service's name, which is what
// the rules select.
func (b *builder) buildMonitoring() error {
	m := b.args.Monitoring
	if m == nil || !m.Operator {
		return nil
	}
	s := b.args.Service
	if _, err := apiextensions.NewCustomResource(b.ctx, b.name+"-servicemonitor", &apiextensions.CustomResourceArgs{
		ApiVersion: pulumi.String("monitoring.coreos.com/v1"),
		Kind:       pulumi.String("ServiceMonitor"),
		Metadata:   b.meta(s.Name, "api"),
		OtherFields: kubernetes.UntypedArgs{"spec": map[string]any{
			"selector":  map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": s.Name, "app.kubernetes.io/component": "api"}},
			"endpoints": []any{map[string]any{"port": "http", "path": "/metrics", "interval": cmp.Or(m.Interval, "30s")}},
		}},
	}, b.opts(pulumi.DependsOn([]pulumi.Resource{b.service}))...); err != nil {
		return err
	}
	if b.databaseExporter() {
		// The database's headless Service's metrics port; the job is
		// named as the database rules select it.
		if _, err := apiextensions.NewCustomResource(b.ctx, b.name+"-db-servicemonitor", &apiextensions.CustomResourceArgs{
			ApiVersion: pulumi.String("monitoring.coreos.com/v1"),
			Kind:       pulumi.String("ServiceMonitor"),
			Metadata:   b.meta(s.Name+"-db", "database"),
			OtherFields: kubernetes.UntypedArgs{"spec": map[string]any{
				"selector": map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": s.Name, "app.kubernetes.io/component": "database"}},
				"endpoints": []any{map[string]any{"port": "metrics", "path": "/metrics", "interval": cmp.Or(m.Interval, "30s"),
					"relabelings": []any{map[string]any{"action": "replace", "targetLabel": "job", "replacement": monitoring.PostgresJob(s.Name)}}}},
			}},
		}, b.opts()...); err != nil {
			return err
		}
	}
	var rules []any
	for _, r := range m.Rules.Rules {
		rule := map[string]any{"alert": r.Alert, "expr": r.Expr, "labels": r.Labels, "annotations": r.Annotations}
		if r.For != "" {
			rule["for"] = r.For
		}
		rules = append(rules, rule)
	}
	_, err := apiextensions.NewCustomResource(b.ctx, b.name+"-prometheusrule", &apiextensions.CustomResourceArgs{
		ApiVersion: pulumi.String("monitoring.coreos.com/v1"),
		Kind:       pulumi.String("PrometheusRule"),
		Metadata:   b.meta(s.Name, "api"),
		OtherFields: kubernetes.UntypedArgs{"spec": map[string]any{
			"groups": []any{map[string]any{"name": m.Rules.Name, "rules": rules}},
		}},
	}, b.opts()...)
	if err != nil {
		return err
	}
	return b.buildAlertmanagerConfig()
}

// alertingSecretKeys name the receivers' secret values in the Secret.
const (
	webhookKey  = "webhook-url"
	slackKey    = "slack-url"
	smtpPassKey = "smtp-password"
)

// buildAlertmanagerConfig renders the shared routing (components/monitoring)
// as an AlertmanagerConfig. The Operator scopes its routes to the
// namespace, so it only ever sees this service's alerts.
func (b *builder) buildAlertmanagerConfig() error {
	m := b.args.Monitoring
	if m.Alerting == nil || !m.Alerting.Receivers.Any() {
		return nil
	}
	r, rt := m.Alerting.Receivers, m.Alerting.Routing
	severities, err := monitoring.SeverityRoutes(rt)
	if err != nil {
		return err
	}
	data := pulumi.StringMap{}
	for key, v := range map[string]string{webhookKey: r.WebhookURL, slackKey: r.SlackURL, smtpPassKey: r.SMTPPassword} {
		if v != "" {
			data[key] = pulumi.String(v)
		}
	}
	secret, err := corev1.NewSecret(b.ctx, b.name+"-alerting-secret", &corev1.SecretArgs{
		Metadata:   b.autoNamed("alerting"),
		Type:       pulumi.String("Opaque"),
		StringData: pulumi.ToSecret(data).(pulumi.StringMapOutput),
	}, b.opts()...)
	if err != nil {
		return err
	}
	type obj = map[string]any
	ref := func(key string) pulumi.Map {
		return pulumi.Map{"name": secret.Metadata.Name().Elem(), "key": pulumi.String(key)}
	}
	receiver := func(name string) pulumi.Map {
		rec := pulumi.Map{"name": pulumi.String(name)}
		if r.WebhookURL != "" {
			rec["webhookConfigs"] = pulumi.Array{pulumi.Map{"urlSecret": ref(webhookKey), "sendResolved": pulumi.Bool(true)}}
		}
		if r.SlackURL != "" {
			slack := pulumi.Map{"apiURL": ref(slackKey), "sendResolved": pulumi.Bool(true)}
			if r.SlackChannel != "" {
				slack["channel"] = pulumi.String(r.SlackChannel)
			}
			rec["slackConfigs"] = pulumi.Array{slack}
		}
		if r.EmailTo != "" {
			email := pulumi.Map{"to": pulumi.String(r.EmailTo), "from": pulumi.String(r.EmailFrom), "smarthost": pulumi.String(r.SMTPHost),
				"requireTLS": pulumi.Bool(true), "sendResolved": pulumi.Bool(true)}
			if r.SMTPUser != "" {
				email["authUsername"] = pulumi.String(r.SMTPUser)
				email["authPassword"] = ref(smtpPassKey)
			}
			rec["emailConfigs"] = pulumi.Array{email}
		}
		return rec
	}
	matchers := func(ms []monitoring.Matcher) []any {
		var out []any
		for _, x := range ms {
			out = append(out, obj{"name": x.Name, "matchType": x.Op, "value": x.Value})
		}
		return out
	}
	var routes []any
	for _, sr := range severities {
		route := obj{"receiver": sr.Receiver, "matchers": matchers([]monitoring.Matcher{{Name: "severity", Op: "=", Value: sr.Severity}})}
		if sr.Repeat != "" {
			route["repeatInterval"] = sr.Repeat
		}
		routes = append(routes, route)
	}
	var inhibit []any
	for _, i := range monitoring.Inhibitions() {
		inhibit = append(inhibit, obj{"sourceMatch": matchers(i.Source), "targetMatch": matchers(i.Target), "equal": i.Equal})
	}
	_, err = apiextensions.NewCustomResource(b.ctx, b.name+"-alertmanagerconfig", &apiextensions.CustomResourceArgs{
		ApiVersion: pulumi.String("monitoring.coreos.com/v1alpha1"),
		Kind:       pulumi.String("AlertmanagerConfig"),
		Metadata:   b.meta(b.args.Service.Name, "api"),
		OtherFields: kubernetes.UntypedArgs{"spec": pulumi.Map{
			"route": pulumi.ToMap(obj{
				"receiver":       monitoring.CriticalReceiver,
				"groupBy":        monitoring.GroupBy,
				"groupWait":      rt.GroupWait,
				"groupInterval":  rt.GroupInterval,
				"repeatInterval": rt.RepeatInterval,
				"routes":         routes,
			}),
			"inhibitRules": pulumi.ToArray(inhibit),
			"receivers":    pulumi.Array{receiver(monitoring.CriticalReceiver), receiver(monitoring.WarningReceiver)},
		}},
	}, b.opts()...)
	return err
}
