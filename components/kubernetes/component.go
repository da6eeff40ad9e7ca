package kubernetes

import (
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// Args configures a KubernetesService. Service is required; the rest are
// plain values because they decide which resources exist.
type Args struct {
	// Service is the neutral spec (required).
	Service service.Spec
	// Namespace holds every object (required).
	Namespace string
	// CreateNamespace creates Namespace; false uses an existing one.
	CreateNamespace bool
	// IngressClass is the ingressClassName (required), e.g. nginx or traefik.
	IngressClass string
	// IngressNamespace is where the ingress controller runs: the only
	// source the NetworkPolicy admits to the app port.
	IngressNamespace string
	// BodyLimit is the largest request body the ingress passes on (nginx
	// class), an nginx size; default 10m.
	BodyLimit string
	// ImagePullPolicy of the app and migration containers; default IfNotPresent.
	ImagePullPolicy string
	// TrustedProxies are the addresses or CIDRs whose X-Forwarded-* uvicorn
	// believes: the ingress controller's pods. Default: 127.0.0.1 only.
	TrustedProxies []string
	// NodeSelector, when not empty, restricts every pod (app, migration,
	// database) to nodes with these labels.
	NodeSelector map[string]string
	// PodDisruptionBudget creates a PDB derived from replicas.
	PodDisruptionBudget bool
	// Autoscaling, when non-nil, creates an HPA and leaves spec.replicas to it.
	Autoscaling *Autoscaling
	// NetworkPolicy creates default-deny policies with the few allowed paths.
	NetworkPolicy bool
	// DNSNamespace is where the cluster's DNS pods run, the only DNS the
	// policies admit; default kube-system. DNSCIDRs are resolvers outside
	// it (node-local DNS).
	DNSNamespace string
	DNSCIDRs     []string
	// DatabaseCIDRs are an external database's addresses, the only ones
	// the policies admit on its port; empty: its host when that is an IP
	// address, else any address.
	DatabaseCIDRs []string
	// Monitoring, when non-nil, makes Prometheus scrape the app and ships
	// the alert rules.
	Monitoring *Monitoring
	// Rendered says the manifests are written for another tool to apply
	// (kubernetes.renderYamlTo), which knows no ignoreChanges: with an HPA
	// the Deployment then leaves spec.replicas out.
	Rendered bool
}

// Autoscaling bounds the HorizontalPodAutoscaler.
type Autoscaling struct {
	MinReplicas, MaxReplicas int
	// CPUTarget is the average utilization in percent of requests.
	CPUTarget int
}

// KubernetesService is the component: its important children and outputs
// are fields so that callers and tests can reach them.
type KubernetesService struct {
	pulumi.ResourceState

	Namespace    pulumi.StringOutput `pulumi:"namespace"`
	ServiceName  pulumi.StringOutput `pulumi:"serviceName"`
	IngressHost  pulumi.StringOutput `pulumi:"ingressHost"`
	URL          pulumi.StringOutput `pulumi:"url"`
	Deployment   pulumi.Resource
	MigrationJob pulumi.Resource // nil unless the migration strategy is job
}

// Type is the component's type token.
const Type = "fastapi-infra:index:KubernetesService"

// New registers the component and all its children. opts should carry the
// kubernetes provider (pulumi.Providers) the stack configured.
func New(ctx *pulumi.Context, name string, args *Args, opts ...pulumi.ResourceOption) (*KubernetesService, error) {
	a := withDefaults(*args)
	c := &KubernetesService{}
	if err := ctx.RegisterComponentResource(Type, name, c, opts...); err != nil {
		return nil, err
	}
	b := &builder{ctx: ctx, name: name, args: a, parent: c}
	if err := b.build(); err != nil {
		return nil, err
	}
	c.Namespace = pulumi.String(a.Namespace).ToStringOutput()
	c.ServiceName = b.service.Metadata.Name().Elem()
	c.IngressHost = pulumi.String(a.Service.Domain).ToStringOutput()
	c.URL = pulumi.String(a.Service.URL(443)).ToStringOutput()
	c.Deployment = b.deployment
	if b.job != nil {
		c.MigrationJob = b.job
	}
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{
		"namespace":   c.Namespace,
		"serviceName": c.ServiceName,
		"ingressHost": c.IngressHost,
		"url":         c.URL,
	})
}

// The defaults of Args, which the stack config's keys take too (one place).
const (
	DefaultImagePullPolicy  = "IfNotPresent"
	DefaultIngressNamespace = "ingress-nginx"
)

func withDefaults(a Args) Args {
	if a.ImagePullPolicy == "" {
		a.ImagePullPolicy = DefaultImagePullPolicy
	}
	if a.IngressNamespace == "" {
		a.IngressNamespace = DefaultIngressNamespace
	}
	if a.BodyLimit == "" {
		a.BodyLimit = service.DefaultBodyLimit
	}
	if a.DNSNamespace == "" {
		a.DNSNamespace = "kube-system"
	}
	if len(a.TrustedProxies) == 0 {
		a.TrustedProxies = []string{"127.0.0.1"}
	}
	if a.Service.TLS.SecretName == "" {
		// Every TLS mode on Kubernetes ends in a Secret the Ingress names:
		// an Ingress with an empty secretName serves the controller's
		// default certificate.
		a.Service.TLS.SecretName = a.Service.Name + "-tls"
	}
	return a
}

// builder carries what the children need from one another.
type builder struct {
	ctx    *pulumi.Context
	name   string
	args   Args
	parent pulumi.Resource

	namespace   pulumi.Resource // nil when it exists already
	envSecret   *corev1.Secret
	ownerSecret *corev1.Secret    // the owner's DATABASE_URL, for the migration only
	dbCA        *corev1.ConfigMap // db.caCert, when DATABASE_URL verifies the server
	envConfig   *corev1.ConfigMap
	pullSecret  *corev1.Secret
	account     *corev1.ServiceAccount
	database    pulumi.Resource // the in-cluster StatefulSet; nil for an external database
	dbSecret    *corev1.Secret  // its password; nil for an external database
	job         pulumi.Resource
	deployment  pulumi.Resource
	service     *corev1.Service
	appURL      pulumi.StringOutput // DATABASE_URL of the app's least-privileged role
	ownerURL    pulumi.StringOutput // DATABASE_URL of the owner, which migrates
}

func (b *builder) build() error {
	steps := []func() error{
		b.buildNamespace,
		b.buildDatabase,
		b.buildBackup,
		b.buildEnv,
		b.buildServiceAccount,
		b.buildMigrationJob,
		b.buildDeployment,
		b.buildService,
		b.buildIngress,
		b.buildDisruptionBudget,
		b.buildAutoscaler,
		b.buildNetworkPolicies,
		b.buildMonitoring,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// opts are the options of every child: parented to the component, and
// after the namespace when the component creates it.
func (b *builder) opts(extra ...pulumi.ResourceOption) []pulumi.ResourceOption {
	o := []pulumi.ResourceOption{pulumi.Parent(b.parent)}
	if b.namespace != nil {
		o = append(o, pulumi.DependsOn([]pulumi.Resource{b.namespace}))
	}
	return append(o, extra...)
}

// labels select one role of the service; every role shares name and part-of.
func (b *builder) labels(component string) pulumi.StringMap {
	return pulumi.StringMap{
		"app.kubernetes.io/name":       pulumi.String(b.args.Service.Name),
		"app.kubernetes.io/component":  pulumi.String(component),
		"app.kubernetes.io/part-of":    pulumi.String("fastapi-infra"),
		"app.kubernetes.io/managed-by": pulumi.String("pulumi"),
	}
}

// selector is the subset of labels that never changes, as selectors must not.
func (b *builder) selector(component string) pulumi.StringMap {
	return pulumi.StringMap{
		"app.kubernetes.io/name":      pulumi.String(b.args.Service.Name),
		"app.kubernetes.io/component": pulumi.String(component),
	}
}

// meta names an object explicitly; Pulumi's auto-naming is kept for the
// ConfigMap and Secrets, whose new names on change are what rolls the pods.
func (b *builder) meta(name, component string) *metav1.ObjectMetaArgs {
	return &metav1.ObjectMetaArgs{
		Name:      pulumi.String(name),
		Namespace: pulumi.String(b.args.Namespace),
		Labels:    b.labels(component),
	}
}

func (b *builder) buildNamespace() error {
	if !b.args.CreateNamespace {
		return nil
	}
	opts := []pulumi.ResourceOption{pulumi.Parent(b.parent)}
	if db := b.args.Service.Database; db.Mode == service.DatabaseInCluster && db.RetainOnDelete {
		// Deleting a namespace deletes the claims in it: the namespace of a
		// retained database volume is retained too.
		opts = append(opts, pulumi.RetainOnDelete(true))
	}
	ns, err := corev1.NewNamespace(b.ctx, b.name+"-namespace", &corev1.NamespaceArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name: pulumi.String(b.args.Namespace),
			Labels: pulumi.StringMap{
				"app.kubernetes.io/part-of": pulumi.String("fastapi-infra"),
				// Pod Security Admission: the pods meet "restricted".
				"pod-security.kubernetes.io/enforce": pulumi.String("restricted"),
			},
		},
	}, opts...)
	b.namespace = ns
	return err
}

func (b *builder) buildServiceAccount() error {
	sa, err := corev1.NewServiceAccount(b.ctx, b.name+"-serviceaccount", &corev1.ServiceAccountArgs{
		Metadata: b.meta(b.args.Service.Name, "api"),
		// The app never talks to the API server: no token in its pods.
		AutomountServiceAccountToken: pulumi.Bool(false),
	}, b.opts()...)
	b.account = sa
	return err
}
