package singleserver

import (
	"bytes"
	_ "embed"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/template"
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
}

// RenderNginx renders the proxy's nginx.conf. Every field but
// HTTPSPortSuffix is needed: an empty one would render a config that nginx
// takes but that serves nothing (server_name ""), or that it refuses only
// when the container starts.
func RenderNginx(c NginxConfig) (string, error) {
	var missing []string
	for name, v := range map[string]string{"ServerName": c.ServerName, "Upstream": c.Upstream, "CertFile": c.CertFile, "KeyFile": c.KeyFile, "BodyLimit": c.BodyLimit} {
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
