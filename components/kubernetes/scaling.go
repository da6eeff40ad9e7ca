package kubernetes

import (
	autoscalingv2 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/autoscaling/v2"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	policyv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/policy/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// DisruptionBudget derives the PDB from the smallest replica count the
// service runs with: keep all but one pod through a voluntary disruption,
// and with a single pod allow its eviction, since a budget of "all of one"
// would block every node drain.
func DisruptionBudget(minReplicas int) (minAvailable, maxUnavailable int) {
	if minReplicas >= 2 {
		return minReplicas - 1, 0
	}
	return 0, 1
}

func (b *builder) buildDisruptionBudget() error {
	if !b.args.PodDisruptionBudget {
		return nil
	}
	floor := b.args.Service.Replicas
	if b.args.Autoscaling != nil {
		floor = b.args.Autoscaling.MinReplicas
	}
	spec := policyv1.PodDisruptionBudgetSpecArgs{Selector: metav1.LabelSelectorArgs{MatchLabels: b.selector("api")}}
	if minAvailable, maxUnavailable := DisruptionBudget(floor); minAvailable > 0 {
		spec.MinAvailable = pulumi.Int(minAvailable)
	} else {
		spec.MaxUnavailable = pulumi.Int(maxUnavailable)
	}
	_, err := policyv1.NewPodDisruptionBudget(b.ctx, b.name+"-pdb", &policyv1.PodDisruptionBudgetArgs{
		Metadata: b.meta(b.args.Service.Name, "api"),
		Spec:     spec,
	}, b.opts()...)
	return err
}

func (b *builder) buildAutoscaler() error {
	as := b.args.Autoscaling
	if as == nil {
		return nil
	}
	_, err := autoscalingv2.NewHorizontalPodAutoscaler(b.ctx, b.name+"-hpa", &autoscalingv2.HorizontalPodAutoscalerArgs{
		Metadata: b.meta(b.args.Service.Name, "api"),
		Spec: autoscalingv2.HorizontalPodAutoscalerSpecArgs{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReferenceArgs{
				ApiVersion: pulumi.String("apps/v1"),
				Kind:       pulumi.String("Deployment"),
				Name:       pulumi.String(b.args.Service.Name),
			},
			MinReplicas: pulumi.Int(as.MinReplicas),
			MaxReplicas: pulumi.Int(as.MaxReplicas),
			Metrics: autoscalingv2.MetricSpecArray{autoscalingv2.MetricSpecArgs{
				Type: pulumi.String("Resource"),
				Resource: autoscalingv2.ResourceMetricSourceArgs{
					Name:   pulumi.String("cpu"),
					Target: autoscalingv2.MetricTargetArgs{Type: pulumi.String("Utilization"), AverageUtilization: pulumi.Int(as.CPUTarget)},
				},
			}},
		},
	}, b.opts(pulumi.DependsOn([]pulumi.Resource{b.deployment}))...)
	return err
}
