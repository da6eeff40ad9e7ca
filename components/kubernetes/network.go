package kubernetes

import (
	"fmt"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"net"

	"github.com/fastapi-infra/fastapi-infra/components/monitoring"
	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// servicePort is what the Ingress targets; the Service maps it to the
// container's named port.
const servicePort = 80

func (b *builder) buildService() error {
	svc, err := corev1.NewService(b.ctx, b.name+"-service", &corev1.ServiceArgs{
		Metadata: b.meta(b.args.Service.Name, "api"),
		Spec: corev1.ServiceSpecArgs{
			Type:     pulumi.String("ClusterIP"),
			Selector: b.selector("api"),
			Ports: corev1.ServicePortArray{corev1.ServicePortArgs{
				Name: pulumi.String("http"), Port: pulumi.Int(servicePort), TargetPort: pulumi.String("http"), Protocol: pulumi.String("TCP"),
			}},
		},
	}, b.opts(pulumi.DependsOn([]pulumi.Resource{b.deployment}))...)
	b.service = svc
	return err
}

// ingressAnnotations redirect HTTP to HTTPS on the common controllers and
// ask cert-manager for the certificate when it issues it.
func (b *builder) ingressAnnotations() pulumi.StringMap {
	a := pulumi.StringMap{}
	switch b.args.IngressClass {
	case "nginx":
		a["nginx.ingress.kubernetes.io/ssl-redirect"] = pulumi.String("true")
		a["nginx.ingress.kubernetes.io/force-ssl-redirect"] = pulumi.String("true")
		a["nginx.ingress.kubernetes.io/proxy-body-size"] = pulumi.String(b.args.BodyLimit)
	case "traefik":
		// Traefik redirects on its web entrypoint (--entrypoints.web.http.
		// redirections.entrypoint.to=websecure); the route itself is TLS only.
		a["traefik.ingress.kubernetes.io/router.entrypoints"] = pulumi.String("websecure")
		a["traefik.ingress.kubernetes.io/router.tls"] = pulumi.String("true")
	}
	if t := b.args.Service.TLS; t.Mode == service.TLSCertManager {
		a["cert-manager.io/cluster-issuer"] = pulumi.String(t.ClusterIssuer)
	}
	return a
}

func (b *builder) buildIngress() error {
	s := b.args.Service
	if s.TLS.Mode == service.TLSProvided {
		if _, err := corev1.NewSecret(b.ctx, b.name+"-tls", &corev1.SecretArgs{
			Metadata: b.meta(s.TLS.SecretName, "api"),
			Type:     pulumi.String("kubernetes.io/tls"),
			StringData: pulumi.StringMap{
				"tls.crt": pulumi.ToSecret(s.TLS.Cert).(pulumi.StringOutput),
				"tls.key": pulumi.ToSecret(s.TLS.Key).(pulumi.StringOutput),
			},
		}, b.opts()...); err != nil {
			return err
		}
	}
	meta := b.meta(s.Name, "api")
	meta.Annotations = b.ingressAnnotations()
	_, err := networkingv1.NewIngress(b.ctx, b.name+"-ingress", &networkingv1.IngressArgs{
		Metadata: meta,
		Spec: networkingv1.IngressSpecArgs{
			IngressClassName: pulumi.String(b.args.IngressClass),
			Tls: networkingv1.IngressTLSArray{networkingv1.IngressTLSArgs{
				Hosts:      pulumi.StringArray{pulumi.String(s.Domain)},
				SecretName: pulumi.String(s.TLS.SecretName),
			}},
			Rules: networkingv1.IngressRuleArray{networkingv1.IngressRuleArgs{
				Host: pulumi.String(s.Domain),
				Http: networkingv1.HTTPIngressRuleValueArgs{Paths: networkingv1.HTTPIngressPathArray{networkingv1.HTTPIngressPathArgs{
					Path:     pulumi.String("/"),
					PathType: pulumi.String("Prefix"),
					Backend: networkingv1.IngressBackendArgs{Service: networkingv1.IngressServiceBackendArgs{
						Name: b.service.Metadata.Name().Elem(),
						Port: networkingv1.ServiceBackendPortArgs{Number: pulumi.Int(servicePort)},
					}},
				}}},
			}},
		},
	}, b.opts()...)
	return err
}

// buildNetworkPolicies denies everything the service does not need: the
// app pods take traffic only from the ingress controller's namespace on the
// app port, and reach only DNS and the database. Migration and backup pods
// share the egress rules; the in-cluster database takes traffic only from
// them.
func (b *builder) buildNetworkPolicies() error {
	if !b.args.NetworkPolicy {
		return nil
	}
	s := b.args.Service
	tcp, udp := pulumi.String("TCP"), pulumi.String("UDP")
	// DNS: the cluster's DNS pods' namespace (and the resolvers named
	// outside it), not every namespace: a pod of any namespace could
	// answer on port 53 and carry data out.
	dnsPeers := networkingv1.NetworkPolicyPeerArray{networkingv1.NetworkPolicyPeerArgs{NamespaceSelector: metav1.LabelSelectorArgs{
		MatchLabels: pulumi.StringMap{"kubernetes.io/metadata.name": pulumi.String(b.args.DNSNamespace)},
	}}}
	for _, cidr := range b.args.DNSCIDRs {
		dnsPeers = append(dnsPeers, networkingv1.NetworkPolicyPeerArgs{IpBlock: networkingv1.IPBlockArgs{Cidr: pulumi.String(cidr)}})
	}
	dns := networkingv1.NetworkPolicyEgressRuleArgs{
		To: dnsPeers,
		Ports: networkingv1.NetworkPolicyPortArray{
			networkingv1.NetworkPolicyPortArgs{Protocol: udp, Port: pulumi.Int(53)},
			networkingv1.NetworkPolicyPortArgs{Protocol: tcp, Port: pulumi.Int(53)},
		},
	}
	database := networkingv1.NetworkPolicyEgressRuleArgs{
		Ports: networkingv1.NetworkPolicyPortArray{networkingv1.NetworkPolicyPortArgs{Protocol: tcp, Port: pulumi.Int(s.Database.Port)}},
	}
	if s.Database.Mode == service.DatabaseInCluster {
		database.To = networkingv1.NetworkPolicyPeerArray{networkingv1.NetworkPolicyPeerArgs{PodSelector: metav1.LabelSelectorArgs{MatchLabels: b.selector("database")}}}
	} else {
		// A managed database is known by name, which a policy cannot
		// name: its addresses as the stack gives them, its host when that
		// is an address, else its port to any address and nothing else
		// (production refuses that).
		cidrs := b.args.DatabaseCIDRs
		if ip := net.ParseIP(s.Database.Host); len(cidrs) == 0 && ip != nil {
			bits := 32
			if ip.To4() == nil {
				bits = 128
			}
			cidrs = []string{fmt.Sprintf("%s/%d", ip, bits)}
		}
		if len(cidrs) == 0 {
			cidrs = []string{"0.0.0.0/0"}
		}
		var peers networkingv1.NetworkPolicyPeerArray
		for _, cidr := range cidrs {
			peers = append(peers, networkingv1.NetworkPolicyPeerArgs{IpBlock: networkingv1.IPBlockArgs{Cidr: pulumi.String(cidr)}})
		}
		database.To = peers
	}
	egress := networkingv1.NetworkPolicyEgressRuleArray{dns, database}

	fromIngress := networkingv1.NetworkPolicyIngressRuleArgs{
		From: networkingv1.NetworkPolicyPeerArray{networkingv1.NetworkPolicyPeerArgs{NamespaceSelector: metav1.LabelSelectorArgs{
			MatchLabels: pulumi.StringMap{"kubernetes.io/metadata.name": pulumi.String(b.args.IngressNamespace)},
		}}},
		Ports: networkingv1.NetworkPolicyPortArray{networkingv1.NetworkPolicyPortArgs{Protocol: tcp, Port: pulumi.Int(s.Port)}},
	}
	apiIngress := networkingv1.NetworkPolicyIngressRuleArray{fromIngress}
	if m := b.args.Monitoring; m != nil {
		// Prometheus scrapes /metrics on the app port.
		apiIngress = append(apiIngress, networkingv1.NetworkPolicyIngressRuleArgs{
			From: networkingv1.NetworkPolicyPeerArray{networkingv1.NetworkPolicyPeerArgs{NamespaceSelector: metav1.LabelSelectorArgs{
				MatchLabels: pulumi.StringMap{"kubernetes.io/metadata.name": pulumi.String(m.Namespace)},
			}}},
			Ports: networkingv1.NetworkPolicyPortArray{networkingv1.NetworkPolicyPortArgs{Protocol: tcp, Port: pulumi.Int(s.Port)}},
		})
	}
	policies := []struct {
		role    string
		ingress networkingv1.NetworkPolicyIngressRuleArray
	}{
		{"api", apiIngress},
		{"migration", nil}, // takes no traffic at all
		{"backup", nil},
	}
	backups := s.Database.Mode == service.DatabaseInCluster && s.Database.Backup.Schedule != ""
	for _, p := range policies {
		if p.role == "migration" && s.Migration.Strategy != service.MigrationJob || p.role == "backup" && !backups {
			continue
		}
		if err := b.networkPolicy(p.role, p.ingress, egress); err != nil {
			return err
		}
	}
	if s.Database.Mode != service.DatabaseInCluster {
		return nil
	}
	ingress := networkingv1.NetworkPolicyIngressRuleArray{networkingv1.NetworkPolicyIngressRuleArgs{
		From: networkingv1.NetworkPolicyPeerArray{
			networkingv1.NetworkPolicyPeerArgs{PodSelector: metav1.LabelSelectorArgs{MatchLabels: b.selector("api")}},
			networkingv1.NetworkPolicyPeerArgs{PodSelector: metav1.LabelSelectorArgs{MatchLabels: b.selector("migration")}},
			networkingv1.NetworkPolicyPeerArgs{PodSelector: metav1.LabelSelectorArgs{MatchLabels: b.selector("backup")}},
		},
		Ports: networkingv1.NetworkPolicyPortArray{networkingv1.NetworkPolicyPortArgs{Protocol: tcp, Port: pulumi.Int(s.Database.Port)}},
	}}
	if b.databaseExporter() && b.args.Monitoring.Namespace != "" {
		// Prometheus scrapes the exporter; PostgreSQL stays closed to it.
		ingress = append(ingress, networkingv1.NetworkPolicyIngressRuleArgs{
			From: networkingv1.NetworkPolicyPeerArray{networkingv1.NetworkPolicyPeerArgs{NamespaceSelector: metav1.LabelSelectorArgs{
				MatchLabels: pulumi.StringMap{"kubernetes.io/metadata.name": pulumi.String(b.args.Monitoring.Namespace)},
			}}},
			Ports: networkingv1.NetworkPolicyPortArray{networkingv1.NetworkPolicyPortArgs{Protocol: tcp, Port: pulumi.Int(monitoring.PostgresExporterPort)}},
		})
	}
	return b.networkPolicy("database", ingress, networkingv1.NetworkPolicyEgressRuleArray{dns})
}

// networkPolicy admits exactly ingress and egress to the pods of a role;
// everything else is denied (both policy types are set, so empty rules
// mean none).
func (b *builder) networkPolicy(role string, ingress networkingv1.NetworkPolicyIngressRuleArray, egress networkingv1.NetworkPolicyEgressRuleArray) error {
	_, err := networkingv1.NewNetworkPolicy(b.ctx, b.name+"-"+role+"-netpol", &networkingv1.NetworkPolicyArgs{
		Metadata: b.meta(b.args.Service.Name+"-"+role, role),
		Spec: networkingv1.NetworkPolicySpecArgs{
			PodSelector: metav1.LabelSelectorArgs{MatchLabels: b.selector(role)},
			PolicyTypes: pulumi.StringArray{pulumi.String("Ingress"), pulumi.String("Egress")},
			Ingress:     ingress,
			Egress:      egress,
		},
	}, b.opts()...)
	return err
}
