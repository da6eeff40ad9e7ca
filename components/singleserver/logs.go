package singleserver

import (
	"fmt"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Logs runs VictoriaLogs, the one place to search every container's logs
// (logging.aggregate): each container's log driver sends its lines there
// by syslog, and its LogsQL API answers on the host's loopback only.
type Logs struct {
	// Image is a VictoriaLogs image (images/build.sh logs makes one).
	Image string
	// Retention is how long lines are kept, e.g. 7d (-retentionPeriod).
	Retention string
	// LocalPort publishes the query API and UI on 127.0.0.1.
	LocalPort int
	// SyslogPort is where the log driver (dockerd, on the host) sends
	// lines: UDP on 127.0.0.1.
	SyslogPort int
}

const (
	logsAPIPort    = 9428
	logsSyslogPort = 5140
	logsDataDir    = "/victoria-logs-data"
)

// buildLogs runs VictoriaLogs before every other container, which then
// logs to it. Why syslog over UDP: dockerd dials the log driver's address
// when it starts a container, and a TCP dial that fails fails the start,
// so after a host reboot a container started before the log store would
// stay down; a UDP "dial" cannot fail, and a line sent while the store is
// down is lost there but stays in `docker logs`, which Docker's dual
// logging keeps for every driver. The store keeps its lines on a retained
// volume.
func (b *builder) buildLogs() error {
	l := b.args.Logs
	if l == nil {
		return nil
	}
	image, err := b.image("logs", l.Image)
	if err != nil {
		return err
	}
	data, err := b.volume("logs-data", pulumi.RetainOnDelete(true))
	if err != nil {
		return err
	}
	b.logs, err = docker.NewContainer(b.ctx, b.name+"-logs", &docker.ContainerArgs{
		Name:  pulumi.String(b.dockerName("logs")),
		Image: image,
		Command: pulumi.ToStringArray([]string{
			"-storageDataPath=" + logsDataDir,
			"-retentionPeriod=" + l.Retention,
			fmt.Sprintf("-httpListenAddr=:%d", logsAPIPort),
			fmt.Sprintf("-syslog.listenAddr.udp=:%d", logsSyslogPort),
		}),
		Volumes: docker.ContainerVolumeArray{docker.ContainerVolumeArgs{VolumeName: data.Name, ContainerPath: pulumi.String(logsDataDir)}},
		// Published on the host's loopback only: the API to people
		// (through an SSH tunnel), the syslog port to dockerd.
		NetworksAdvanced: docker.ContainerNetworksAdvancedArray{docker.ContainerNetworksAdvancedArgs{Name: b.edge.Name}},
		Ports: docker.ContainerPortArray{
			docker.ContainerPortArgs{Internal: pulumi.Int(logsAPIPort), External: pulumi.Int(l.LocalPort), Ip: pulumi.String("127.0.0.1")},
			docker.ContainerPortArgs{Internal: pulumi.Int(logsSyslogPort), External: pulumi.Int(l.SyslogPort), Ip: pulumi.String("127.0.0.1"), Protocol: pulumi.String("udp")},
		},
		// The image's own user: the official image runs as root (with
		// none of root's capabilities here) and its new data volume is
		// root's; another user could not write it.
		Restart:      pulumi.String("unless-stopped"),
		Capabilities: docker.ContainerCapabilitiesArgs{Drops: pulumi.StringArray{pulumi.String("ALL")}},
		SecurityOpts: pulumi.StringArray{pulumi.String("no-new-privileges:true")},
		ReadOnly:     pulumi.Bool(true),
		Memory:       pulumi.Int(512),
		MemorySwap:   pulumi.Int(512),
		// Its own lines cannot go to itself.
		LogDriver: pulumi.String("json-file"),
		LogOpts:   pulumi.StringMap{"max-size": pulumi.String("10m"), "max-file": pulumi.String("3")},
		// No healthcheck: the official image is distroless (no shell, no
		// HTTP client), so Docker has nothing to probe with, and waiting
		// for a health that never comes would fail every `up`. The others
		// start once it runs; it listens within a second, and a line sent
		// before is lost only here (UDP), not from `docker logs`.
		StopTimeout: pulumi.Int(30),
	}, b.opts(pulumi.DependsOn([]pulumi.Resource{data}))...)
	return err
}

// logsDriver is the log driver that sends a container's lines to the log
// store, each tagged with the container's name (syslog's APP-NAME, a field
// of its own in VictoriaLogs).
func (b *builder) logsDriver() (string, pulumi.StringMap) {
	return "syslog", pulumi.StringMap{
		"syslog-address": pulumi.Sprintf("udp://127.0.0.1:%d", b.args.Logs.SyslogPort),
		"syslog-format":  pulumi.String("rfc5424micro"),
		"tag":            pulumi.String("{{.Name}}"),
	}
}
