package singleserver

import (
	"bytes"
	_ "embed"
	"fmt"
	"strconv"
	"text/template"
)

//go:embed nginx.conf.tmpl
var nginxTemplate string

//go:embed proxy-entrypoint.sh
var proxyEntrypoint string

var nginxConf = template.Must(template.New("nginx.conf").Option("missingkey=error").Parse(nginxTemplate))

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
}

// RenderNginx renders the proxy's nginx.conf.
func RenderNginx(c NginxConfig) (string, error) { return render(nginxConf, c) }

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
