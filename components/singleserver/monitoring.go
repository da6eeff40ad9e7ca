package singleserver

import (
	_ "embed"
	"text/template"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/monitoring"
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
}

// RenderPrometheus renders prometheus.yml.
func RenderPrometheus(c PrometheusConfig) (string, error) { return render(prometheusConf, c) }

const prometheusDir = "/etc/prometheus/fastapi-infra/"

// buildPrometheus runs Prometheus beside the app: it finds the replicas
// through the private network's DNS, evaluates the alert rules, and keeps
// its samples on a volume that survives replacement and destroy.
func (b *builder) buildPrometheus() error {
	m := b.args.Monitoring
	if m == nil {
		return nil
	}
	s := b.args.Service
	conf, err := RenderPrometheus(PrometheusConfig{Job: s.Name, Upstream: b.upstreamHost(), Port: s.Port, RuleFile: prometheusDir + "rules.yml"})
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
	data, err := b.volume("prometheus-data", true)
	if err != nil {
		return err
	}
	b.prometheus, err = docker.NewContainer(b.ctx, b.name+"-prometheus", &docker.ContainerArgs{
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
		Ports:   docker.ContainerPortArray{docker.ContainerPortArgs{Internal: pulumi.Int(9090), External: pulumi.Int(m.LocalPort), Ip: pulumi.String("127.0.0.1")}},
		Restart: pulumi.String("unless-stopped"),
		// Prometheus needs no privilege at all.
		Capabilities: docker.ContainerCapabilitiesArgs{Drops: pulumi.StringArray{pulumi.String("ALL")}},
		SecurityOpts: pulumi.StringArray{pulumi.String("no-new-privileges:true")},
		Memory:       pulumi.Int(512),
		LogDriver:    pulumi.String(b.logDriver()),
		LogOpts:      b.logOptions(),
	}, b.opts(pulumi.DependsOn([]pulumi.Resource{data}))...)
	return err
}
