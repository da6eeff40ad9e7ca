package kubernetes

import (
	"strings"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// preStopSeconds keeps a terminating pod serving while the endpoint
// controllers and ingress take it out of rotation; SIGTERM comes after.
const preStopSeconds = 5

// buildDeployment creates the app pods: one uvicorn worker each (the seed's
// Kubernetes rule), probes on the health endpoints, a rolling update that
// never drops below the desired count, and a graceful stop.
func (b *builder) buildDeployment() error {
	s := b.args.Service
	// uvicorn believes X-Forwarded-* only from the ingress controller's
	// addresses: trusting every peer would let any pod forge a client
	// address (a NetworkPolicy limits who connects only where the CNI
	// enforces it).
	app := b.container("api", s.ServerCommand(strings.Join(b.args.TrustedProxies, ",")))
	app.Ports = corev1.ContainerPortArray{corev1.ContainerPortArgs{Name: pulumi.String("http"), ContainerPort: pulumi.Int(s.Port)}}
	app.StartupProbe = b.probe(s.Health.LivePath, 2, 30) // up to 60 s to start
	app.LivenessProbe = b.probe(s.Health.LivePath, 10, 3)
	app.ReadinessProbe = b.probe(s.Health.ReadyPath, 5, 2)
	app.Lifecycle = corev1.LifecycleArgs{PreStop: corev1.LifecycleHandlerArgs{
		Sleep: corev1.SleepActionArgs{Seconds: pulumi.Int(preStopSeconds)},
	}}

	pod := corev1.PodSpecArgs{
		NodeSelector:                  b.nodeSelector(),
		ServiceAccountName:            b.account.Metadata.Name(),
		AutomountServiceAccountToken:  pulumi.Bool(false),
		SecurityContext:               podSecurityContext(),
		TerminationGracePeriodSeconds: pulumi.Int(preStopSeconds + s.ShutdownGraceSeconds),
		ImagePullSecrets:              b.imagePullSecrets(),
		Containers:                    corev1.ContainerArray{app},
		Volumes:                       b.podVolumes(),
		TopologySpreadConstraints: corev1.TopologySpreadConstraintArray{corev1.TopologySpreadConstraintArgs{
			MaxSkew:           pulumi.Int(1),
			TopologyKey:       pulumi.String("kubernetes.io/hostname"),
			WhenUnsatisfiable: pulumi.String("ScheduleAnyway"),
			LabelSelector:     metav1.LabelSelectorArgs{MatchLabels: b.selector("api")},
		}},
		Affinity: corev1.AffinityArgs{PodAntiAffinity: corev1.PodAntiAffinityArgs{
			PreferredDuringSchedulingIgnoredDuringExecution: corev1.WeightedPodAffinityTermArray{corev1.WeightedPodAffinityTermArgs{
				Weight: pulumi.Int(100),
				PodAffinityTerm: corev1.PodAffinityTermArgs{
					TopologyKey:   pulumi.String("kubernetes.io/hostname"),
					LabelSelector: metav1.LabelSelectorArgs{MatchLabels: b.selector("api")},
				},
			}},
		}},
	}
	if s.Migration.Strategy == service.MigrationInitContainer {
		pod.InitContainers = corev1.ContainerArray{b.migrationContainer(s.Migration.Command)}
	}

	spec := appsv1.DeploymentSpecArgs{
		Selector: metav1.LabelSelectorArgs{MatchLabels: b.selector("api")},
		Strategy: appsv1.DeploymentStrategyArgs{
			Type: pulumi.String("RollingUpdate"),
			RollingUpdate: appsv1.RollingUpdateDeploymentArgs{
				MaxUnavailable: pulumi.Int(0),
				MaxSurge:       pulumi.Int(1),
			},
		},
		MinReadySeconds:      pulumi.Int(5),
		RevisionHistoryLimit: pulumi.Int(5),
		Template: corev1.PodTemplateSpecArgs{
			Metadata: metav1.ObjectMetaArgs{Labels: b.labels("api"), Annotations: b.scrapeAnnotations()},
			Spec:     pod,
		},
	}
	deps := b.databaseDeps()
	if b.job != nil {
		deps = append(deps, b.job) // roll out only after this release's migration succeeded
	}
	opts := []pulumi.ResourceOption{pulumi.DependsOn(deps)}
	spec.Replicas = pulumi.Int(s.Replicas)
	switch as := b.args.Autoscaling; {
	case as != nil && b.args.Rendered:
		// kubectl apply (or Argo CD) of a manifest with a count would undo
		// the HPA on every apply (kube-score: hpa-deployment-no-replicas).
		spec.Replicas = nil
	case as != nil:
		// With an HPA the count is the HPA's after the first up. Left out,
		// the Deployment started at 1 pod: up reported success with one pod
		// serving, and until the HPA raised it to its minimum (its next sync,
		// then minReadySeconds) a `preview --refresh` found the Deployment
		// unavailable and proposed an update (the drift check failed). Set
		// to app.replicas within the HPA's bounds, and ignored after: the
		// provider's server-side apply then leaves out a count the HPA has
		// changed, so no up undoes it.
		spec.Replicas = pulumi.Int(min(max(s.Replicas, as.MinReplicas), as.MaxReplicas))
		opts = append(opts, pulumi.IgnoreChanges([]string{"spec.replicas"}))
	}
	d, err := appsv1.NewDeployment(b.ctx, b.name+"-deployment", &appsv1.DeploymentArgs{
		Metadata: b.meta(s.Name, "api"),
		Spec:     spec,
	}, b.opts(opts...)...)
	b.deployment = d
	return err
}

func (b *builder) probe(path string, period, failures int) corev1.ProbeArgs {
	return corev1.ProbeArgs{
		HttpGet:          corev1.HTTPGetActionArgs{Path: pulumi.String(path), Port: pulumi.String("http")},
		PeriodSeconds:    pulumi.Int(period),
		TimeoutSeconds:   pulumi.Int(2),
		FailureThreshold: pulumi.Int(failures),
	}
}
