package kubernetes

import (
	autoscalingv2 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/autoscaling/v2"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	policyv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/policy/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// maxUnavailable is how many pods a voluntary disruption (a node drain,
// an eviction) may take at once, whatever the replica count: a budget of
// "all but one" of the HPA's minimum let one drain evict 10 of 12 pods at
// peak load.
const maxUnavailable = 1

// buildDisruptionBudget bounds voluntary disruptions to maxUnavailable
// pods. Pods that are not Ready may always be evicted
// (unhealthyPodEvictionPolicy AlwaysAllow), so a stuck or crash-looping pod
// never blocks a node drain.
func (b *builder) buildDisruptionBudget() error {
	if !b.args.PodDisruptionBudget {
		return nil
	}
	_, err := policyv1.NewPodDisruptionBudget(b.ctx, b.name+"-pdb", &policyv1.PodDisruptionBudgetArgs{
		Metadata: b.meta(b.args.Service.Name, "api"),
		Spec: policyv1.PodDisruptionBudgetSpecArgs{
			Selector:                   metav1.LabelSelectorArgs{MatchLabels: b.selector("api")},
			MaxUnavailable:             pulumi.Int(maxUnavailable),
			UnhealthyPodEvictionPolicy: pulumi.String("AlwaysAllow"),
		},
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
