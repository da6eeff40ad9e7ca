package kubernetes_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/kubernetes"
	"github.com/fastapi-infra/fastapi-infra/components/service"
	"github.com/fastapi-infra/fastapi-infra/internal/mocktest"
)

// specFixture is a service as a program other than this project's stacks
// would hand the component: only the spec, none of the stack config's
// defaults.
func specFixture() service.Spec {
	cpu, _ := service.ParseCPU("500m")
	mem, _ := service.ParseMemory("256Mi")
	pw := pulumi.ToSecret(pulumi.String("fixture-pw")).(pulumi.StringOutput)
	return service.Spec{
		Name: "svc", Image: service.Image{Ref: "example/app:1.0"}, Module: "app.main:app", Port: 8000, Workers: 1, Replicas: 2,
		ShutdownGraceSeconds: 10, Domain: "svc.example.com", TLS: service.TLS{Mode: service.TLSSecret, SecretName: "svc-tls"},
		ProxyHeaders: true,
		Health:       service.Health{LivePath: "/health/live", ReadyPath: "/health/ready"},
		Migration:    service.Migration{Strategy: service.MigrationJob, Command: []string{"alembic", "upgrade", "head"}},
		Resources:    service.Resources{CPU: cpu, Memory: mem},
		Database: service.Database{Mode: service.DatabaseInCluster, Image: "postgres:15", Port: 5432, Name: "app", User: "app",
			Password: pw, AppUser: "app_rw", AppPassword: pw, SSLMode: "prefer", StorageSize: "1Gi", Resources: service.Resources{CPU: cpu, Memory: mem}},
	}
}

// deployArgs registers the component from its Args alone under the mocks.
func deployArgs(t *testing.T, args kubernetes.Args) *mocktest.Recorder {
	t.Helper()
	rec := &mocktest.Recorder{}
	if err := mocktest.Run(t, "fixture", mocktest.Config{Values: map[string]string{}}, func(ctx *pulumi.Context) error {
		_, err := kubernetes.New(ctx, args.Service.Name, &args)
		return err
	}, rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestComponentDefaults: what the component does when Args leave a field
// empty, without the stack config's defaults in between: IfNotPresent, the
// ingress-nginx namespace admitted by the NetworkPolicy, a 10m body limit
// on the nginx Ingress, X-Forwarded-* believed from 127.0.0.1 only.
func TestComponentDefaults(t *testing.T) {
	rec := deployArgs(t, kubernetes.Args{Service: specFixture(), Namespace: "ns", IngressClass: "nginx", NetworkPolicy: true})
	d := rec.One(t, "kubernetes:apps/v1:Deployment")
	const c = "spec.template.spec.containers[0]"
	d.Equal(t, c+".imagePullPolicy", kubernetes.DefaultImagePullPolicy)
	if cmd := fmt.Sprint(d.Get(t, c+".command")); !strings.Contains(cmd, "--forwarded-allow-ips 127.0.0.1") {
		t.Errorf("the app believes X-Forwarded-* from more than the pod itself by default: %s", cmd)
	}
	rec.One(t, "kubernetes:batch/v1:Job").Equal(t, "spec.template.spec.containers[0].imagePullPolicy", kubernetes.DefaultImagePullPolicy)
	rec.One(t, "kubernetes:networking.k8s.io/v1:Ingress").Equal(t, `metadata.annotations["nginx.ingress.kubernetes.io/proxy-body-size"]`, service.DefaultBodyLimit)
	np := rec.Named(t, "svc-api-netpol")
	np.Equal(t, `spec.ingress[0].from[0].namespaceSelector.matchLabels["kubernetes.io/metadata.name"]`, kubernetes.DefaultIngressNamespace)
}
