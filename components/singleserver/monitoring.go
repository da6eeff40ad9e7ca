package singleserver

import (
	_ "embed"
	"fmt"
	"maps"
	"slices"
	"text/template"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/monitoring"
	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// Monitoring runs a Prometheus of the service's own on the private network.
type Monitoring struct {
	// Image is the Prometheus image (required).
	Image string
	// Retention is how long samples are kept, e.g. 15d (required).
	Retention string
	// LocalPort publishes the UI on the host's 127.0.0.1 only.
	LocalPort int
	// Rules are the alerts (components/monitoring).
	Rules monitoring.Group
	// Interval is how often Prometheus scrapes the replicas and evaluates
	// the rules; default 15s.
	Interval string
	// ExternalLabels go on every series and alert that leaves Prometheus:
	// the stack and environment a notification comes from.
	ExternalLabels map[string]string
	// Alertmanager, when non-nil, delivers the alerts to people.
	Alertmanager *Alertmanager
	// PostgresExporterImage, with a container database, runs
	// postgres_exporter beside it (job monitoring.PostgresJob); the rules
	// for its metrics are monitoring.DatabaseAlerts. Empty: none.
	PostgresExporterImage string
}

// Alertmanager runs beside Prometheus and delivers its alerts.
type Alertmanager struct {
	// Image is the Alertmanager image (required).
	Image string
	// LocalPort publishes the UI and API (silences) on the host's
	// 127.0.0.1 only.
	LocalPort int
	// Receivers are the channels; their secret fields reach only the
	// rendered configuration, which is a secret.
	Receivers monitoring.Receivers
	// Routing is the grouping and repetition of notifications.
	Routing monitoring.Routing
}

//go:embed prometheus.yml.tmpl
var prometheusTemplate string

var prometheusConf = template.Must(template.New("prometheus.yml").Option("missingkey=error").Parse(prometheusTemplate))

// PrometheusConfig is the data of the generated prometheus.yml.
type PrometheusConfig struct {
	// Job is the scrape job, the label the alert rules select.
	Job string
	// Upstream is the replicas' shared alias; Docker's DNS answers it with
	// every replica, whatever its release.
	Upstream string
	Port     int
	RuleFile string
	Interval string
	// ExternalLabels are sorted name/value pairs.
	ExternalLabels [][2]string
	// Alertmanager is host:port of the Alertmanager; empty: none.
	Alertmanager string
	// PostgresJob and PostgresExporter (host:port) scrape the database's
	// exporter; empty: none.
	PostgresJob, PostgresExporter string
}

// RenderPrometheus renders prometheus.yml.
func RenderPrometheus(c PrometheusConfig) (string, error) { return render(prometheusConf, c) }

const prometheusDir = "/etc/prometheus/fastapi-infra/"

// unprivileged is what every monitoring container shares: none needs a
// capability or a new privilege; each restarts unless stopped by hand,
// logs like the rest of the service and has memoryMB MiB, no swap.
func (b *builder) unprivileged(memoryMB int, args *docker.ContainerArgs) *docker.ContainerArgs {
	limitMemory(args, memoryMB)
	args.Restart = pulumi.String("unless-stopped")
	args.Capabilities = docker.ContainerCapabilitiesArgs{Drops: pulumi.StringArray{pulumi.String("ALL")}}
	args.SecurityOpts = pulumi.StringArray{pulumi.String("no-new-privileges:true")}
	args.LogDriver = pulumi.String(b.logDriver())
	args.LogOpts = b.logOptions()
	return args
}

// buildPrometheus runs Prometheus beside the app: it finds the replicas
// through the private network's DNS, evaluates the alert rules, and keeps
// its samples on a volume that survives replacement and destroy.
func (b *builder) buildPrometheus() error {
	m := b.args.Monitoring
	if m == nil {
		return nil
	}
	s := b.args.Service
	pc := PrometheusConfig{Job: s.Name, Upstream: b.upstreamHost(), Port: s.Port, RuleFile: prometheusDir + "rules.yml", Interval: m.Interval}
	for _, k := range slices.Sorted(maps.Keys(m.ExternalLabels)) {
		pc.ExternalLabels = append(pc.ExternalLabels, [2]string{k, m.ExternalLabels[k]})
	}
	if b.alertmanager != nil {
		pc.Alertmanager = b.dockerName("alertmanager") + ":9093"
	}
	if b.pgExporter != nil {
		pc.PostgresJob, pc.PostgresExporter = monitoring.PostgresJob(s.Name), fmt.Sprintf("%s:%d", b.dockerName("postgres-exporter"), monitoring.PostgresExporterPort)
	}
	conf, err := RenderPrometheus(pc)
	if err != nil {
		return err
	}
	rules, err := monitoring.RuleFile(m.Rules)
	if err != nil {
		return err
	}
	image, err := b.image("prometheus", m.Image)
	if err != nil {
		return err
	}
	data, err := b.volume("prometheus-data", pulumi.RetainOnDelete(true))
	if err != nil {
		return err
	}
	deps := []pulumi.Resource{data}
	for _, c := range []*docker.Container{b.alertmanager, b.pgExporter} {
		if c != nil {
			deps = append(deps, c)
		}
	}
	b.prometheus, err = docker.NewContainer(b.ctx, b.name+"-prometheus", b.unprivileged(512, &docker.ContainerArgs{
		Name:  pulumi.String(b.dockerName("prometheus")),
		Image: image,
		Command: pulumi.ToStringArray([]string{
			"--config.file=" + prometheusDir + "prometheus.yml",
			"--storage.tsdb.path=/prometheus",
			"--storage.tsdb.retention.time=" + m.Retention,
			"--web.listen-address=:9090",
		}),
		Uploads: docker.ContainerUploadArray{
			docker.ContainerUploadArgs{File: pulumi.String(prometheusDir + "prometheus.yml"), Content: pulumi.String(conf)},
			docker.ContainerUploadArgs{File: pulumi.String(prometheusDir + "rules.yml"), Content: pulumi.String(rules)},
		},
		Volumes: docker.ContainerVolumeArray{docker.ContainerVolumeArgs{VolumeName: data.Name, ContainerPath: pulumi.String("/prometheus")}},
		// The private network to scrape; the edge network only to publish
		// the UI on the host's loopback.
		NetworksAdvanced: docker.ContainerNetworksAdvancedArray{
			docker.ContainerNetworksAdvancedArgs{Name: b.private.Name},
			docker.ContainerNetworksAdvancedArgs{Name: b.edge.Name},
		},
		Ports: docker.ContainerPortArray{docker.ContainerPortArgs{Internal: pulumi.Int(9090), External: pulumi.Int(m.LocalPort), Ip: pulumi.String("127.0.0.1")}},
	}), b.opts(pulumi.DependsOn(deps))...)
	return err
}

const alertmanagerDir = "/etc/alertmanager/fastapi-infra/"

// buildAlertmanager runs Alertmanager for Prometheus's alerts: the private
// network, where Prometheus reaches it by name, and the edge network, to
// reach webhooks, Slack and SMTP servers and to publish the UI on the
// host's loopback. Silences and notification state live on a volume that
// survives replacement and destroy, so an upgrade does not page again.
func (b *builder) buildAlertmanager() error {
	if b.args.Monitoring == nil || b.args.Monitoring.Alertmanager == nil {
		return nil
	}
	am := b.args.Monitoring.Alertmanager
	conf, err := monitoring.AlertmanagerConfig(am.Receivers, am.Routing)
	if err != nil {
		return err
	}
	image, err := b.image("alertmanager", am.Image)
	if err != nil {
		return err
	}
	data, err := b.volume("alertmanager-data", pulumi.RetainOnDelete(true))
	if err != nil {
		return err
	}
	b.alertmanager, err = docker.NewContainer(b.ctx, b.name+"-alertmanager", b.unprivileged(128, &docker.ContainerArgs{
		Name:  pulumi.String(b.dockerName("alertmanager")),
		Image: image,
		Command: pulumi.ToStringArray([]string{
			"--config.file=" + alertmanagerDir + "alertmanager.yml",
			"--storage.path=/alertmanager",
			"--web.listen-address=:9093",
			"--web.external-url=" + fmt.Sprintf("http://127.0.0.1:%d/", am.LocalPort),
			// One instance: no gossip port to open or to secure.
			"--cluster.listen-address=",
		}),
		Uploads: docker.ContainerUploadArray{docker.ContainerUploadArgs{
			File: pulumi.String(alertmanagerDir + "alertmanager.yml"),
			// Receiver URLs carry tokens, the SMTP password is one: the
			// whole file is a secret in the state.
			Content:     pulumi.ToSecret(pulumi.String(conf)).(pulumi.StringOutput),
			Permissions: pulumi.String("0444"),
		}},
		Volumes: docker.ContainerVolumeArray{docker.ContainerVolumeArgs{VolumeName: data.Name, ContainerPath: pulumi.String("/alertmanager")}},
		NetworksAdvanced: docker.ContainerNetworksAdvancedArray{
			docker.ContainerNetworksAdvancedArgs{Name: b.private.Name},
			docker.ContainerNetworksAdvancedArgs{Name: b.edge.Name},
		},
		Ports: docker.ContainerPortArray{docker.ContainerPortArgs{Internal: pulumi.Int(9093), External: pulumi.Int(am.LocalPort), Ip: pulumi.String("127.0.0.1")}},
	}), b.opts(pulumi.DependsOn([]pulumi.Resource{data}))...)
	return err
}

// buildPostgresExporter runs postgres_exporter beside a container
// database: it connects to the postgres database as service.MonitorUser
// (pg_monitor, made by the roles step), its password read from a secrets
// volume of its own that holds nothing else (never the environment, never
// the owner's password), and answers Prometheus on the private network
// only.
func (b *builder) buildPostgresExporter() error {
	m := b.args.Monitoring
	db := b.args.Service.Database
	if m == nil || m.PostgresExporterImage == "" || db.Mode == service.DatabaseExternal {
		return nil
	}
	image, err := b.image("postgres-exporter", m.PostgresExporterImage)
	if err != nil {
		return err
	}
	secrets, err := b.secretVolume("exporter-secrets", "exporter-secrets-"+b.secretsID(),
		map[string]pulumi.StringOutput{monitorPasswordFile: db.MonitorPassword()})
	if err != nil {
		return err
	}
	exporter := monitoring.PostgresExporter{Host: b.databaseHost(), Port: db.Port, User: service.MonitorUser,
		PasswordFile: secretsDir + monitorPasswordFile, Backups: db.Backup.Schedule != ""}
	var uploads docker.ContainerUploadArray
	if exporter.Backups {
		uploads = docker.ContainerUploadArray{docker.ContainerUploadArgs{File: pulumi.String(monitoring.QueriesFile), Content: pulumi.String(exporter.Queries())}}
	}
	deps := []pulumi.Resource{b.database, secrets.carrier}
	if b.rolesSet != nil {
		deps = append(deps, b.rolesSet)
	}
	b.pgExporter, err = docker.NewContainer(b.ctx, b.name+"-postgres-exporter", b.unprivileged(64, &docker.ContainerArgs{
		Name:             pulumi.String(b.dockerName("postgres-exporter")),
		Image:            image,
		Command:          pulumi.ToStringArray(exporter.Args()),
		Envs:             pulumi.ToStringArray(exporter.Env()),
		Uploads:          uploads,
		Volumes:          docker.ContainerVolumeArray{secrets.mount},
		Labels:           docker.ContainerLabelArray{b.secretsLabel()},
		NetworksAdvanced: b.privateNetwork(),
		User:             pulumi.String("65534:65534"),
	}), b.opts(pulumi.DependsOn(deps))...)
	return err
}
