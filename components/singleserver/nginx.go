package singleserver

import (
	"bytes"
	_ "embed"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/service"
)

//go:embed nginx.conf.tmpl
var nginxTemplate string

//go:embed proxy-entrypoint.sh
var proxyEntrypoint string

var nginxConf = template.Must(template.New("nginx.conf").Option("missingkey=error").
	Funcs(template.FuncMap{"mul": func(a, b int) int { return a * b }}).Parse(nginxTemplate))

// NginxConfig is the data of the generated nginx.conf.
type NginxConfig struct {
	ServerName string
	// Upstream is host:port of the replicas' shared alias.
	Upstream string
	// HTTPSPortSuffix is ":8443" when HTTPS is published on another port
	// than 443, for the redirect; empty otherwise.
	HTTPSPortSuffix   string
	CertFile, KeyFile string
	BodyLimit         string
	// RateLimit is requests a second per client address (bursts of twice
	// that pass at once), ConnLimit its concurrent connections; 0: none.
	RateLimit, ConnLimit int
	// MaintenanceDir holds the maintenance page and its "on" switch
	// (MaintenanceDir, the constant).
	MaintenanceDir string
}

// MaintenanceDir is where ./infra maintenance writes the proxy's
// maintenance pages (page.html, page.json) and its switch (on), inside the
// nginx container. Not a volume: a replaced proxy starts without
// maintenance, as the up that replaced it means to serve.
const MaintenanceDir = "/var/lib/fastapi-infra/maintenance"

// RenderNginx renders the proxy's nginx.conf. Every field but
// HTTPSPortSuffix is needed: an empty one would render a config that nginx
// takes but that serves nothing (server_name ""), or that it refuses only
// when the container starts.
func RenderNginx(c NginxConfig) (string, error) {
	var missing []string
	for name, v := range map[string]string{"ServerName": c.ServerName, "Upstream": c.Upstream, "CertFile": c.CertFile, "KeyFile": c.KeyFile, "BodyLimit": c.BodyLimit, "MaintenanceDir": c.MaintenanceDir} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return "", fmt.Errorf("rendering nginx.conf: %s not set", strings.Join(missing, ", "))
	}
	return render(nginxConf, c)
}

// render executes one of the embedded config templates.
func render(t *template.Template, data any) (string, error) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return "", fmt.Errorf("rendering %s: %w", t.Name(), err)
	}
	return buf.String(), nil
}

func httpsPortSuffix(port int) string {
	if port == 443 {
		return ""
	}
	return ":" + strconv.Itoa(port)
}

const (
	proxyDir = "/etc/nginx/fastapi-infra/"
	tlsDir   = "/etc/nginx/tls/"
)

// NginxConfigFor is the generated config of a service; exported for the
// golden test and the real-engine check.
func NginxConfigFor(s service.Spec, upstream string, httpsPort int, bodyLimit string) NginxConfig {
	cert, key := tlsDir+"tls.crt", tlsDir+"tls.key"
	if s.TLS.Mode == service.TLSProvided {
		cert, key = proxyDir+"tls.crt", proxyDir+"tls.key"
	}
	return NginxConfig{
		ServerName:      s.Domain,
		Upstream:        fmt.Sprintf("%s:%d", upstream, s.Port),
		HTTPSPortSuffix: httpsPortSuffix(httpsPort),
		CertFile:        cert,
		KeyFile:         key,
		BodyLimit:       bodyLimit,
		MaintenanceDir:  MaintenanceDir,
	}
}

func (b *builder) buildNginx() error {
	s := b.args.Service
	cfg := NginxConfigFor(s, b.upstreamHost(), b.args.HTTPSPort, b.args.BodyLimit)
	cfg.RateLimit, cfg.ConnLimit = b.args.RateLimit, b.args.ConnLimit
	conf, err := RenderNginx(cfg)
	if err != nil {
		return err
	}
	image, err := b.image("proxy", b.args.ProxyImage)
	if err != nil {
		return err
	}
	uploads := docker.ContainerUploadArray{
		docker.ContainerUploadArgs{File: pulumi.String(proxyDir + "nginx.conf"), Content: pulumi.String(conf)},
		docker.ContainerUploadArgs{File: pulumi.String(proxyDir + "entrypoint.sh"), Content: pulumi.String(proxyEntrypoint), Executable: pulumi.Bool(true)},
	}
	var volumes docker.ContainerVolumeArray
	switch s.TLS.Mode {
	case service.TLSProvided:
		uploads = append(uploads,
			docker.ContainerUploadArgs{File: pulumi.String(proxyDir + "tls.crt"), Content: s.TLS.Cert},
			docker.ContainerUploadArgs{File: pulumi.String(proxyDir + "tls.key"), Content: pulumi.ToSecret(s.TLS.Key).(pulumi.StringOutput), Permissions: pulumi.String("0400")},
		)
	default:
		// The self-signed certificate is made on first start and kept here,
		// so browsers see the same one after the proxy is replaced.
		certs, err := b.volume("tls")
		if err != nil {
			return err
		}
		volumes = docker.ContainerVolumeArray{docker.ContainerVolumeArgs{VolumeName: certs.Name, ContainerPath: pulumi.String(tlsDir)}}
	}
	return b.proxyContainer(&docker.ContainerArgs{
		Name:        pulumi.String(b.dockerName("proxy")),
		Image:       image,
		Entrypoints: pulumi.StringArray{pulumi.String("/bin/sh"), pulumi.String(proxyDir + "entrypoint.sh")},
		Envs: pulumi.ToStringArray([]string{
			"TLS_MODE=" + string(s.TLS.Mode), "DOMAIN=" + s.Domain, "UPSTREAM_HOST=" + b.upstreamHost(),
			"UPSTREAM_PORT=" + strconv.Itoa(s.Port),
		}),
		Uploads:     uploads,
		Volumes:     volumes,
		Healthcheck: b.healthcheck("/bin/sh", "-c", "kill -0 $(cat /run/nginx.pid)"),
		// The master binds 80 and 443 and runs its workers as www-data,
		// owning their temporary folders; nothing else.
		Capabilities: docker.ContainerCapabilitiesArgs{Drops: pulumi.StringArray{pulumi.String("ALL")},
			Adds: capabilities("CHOWN", "NET_BIND_SERVICE", "SETGID", "SETUID")},
	})
}
