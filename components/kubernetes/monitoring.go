package kubernetes

import (
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/monitoring"
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
			"endpoints": []any{map[string]any{"port": "http", "path": "/metrics", "interval": "30s"}},
		}},
	}, b.opts(pulumi.DependsOn([]pulumi.Resource{b.service}))...); err != nil {
		return err
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
	return err
}
