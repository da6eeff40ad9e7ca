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
// on the nginx Ingress, X-Forwarded-* believed from 127.0.0.1 only, the
// TLS Secret <name>-tls.
func TestComponentDefaults(t *testing.T) {
	spec := mocktest.ServiceSpec()
	spec.Workers = 1 // one process per pod
	spec.TLS = service.TLS{Mode: service.TLSSecret}
	spec.Database.Mode = service.DatabaseInCluster
	rec := deployArgs(t, kubernetes.Args{Service: spec, Namespace: "ns", IngressClass: "nginx", NetworkPolicy: true})
	d := rec.One(t, "kubernetes:apps/v1:Deployment")
	const c = "spec.template.spec.containers[0]"
	d.Equal(t, c+".imagePullPolicy", kubernetes.DefaultImagePullPolicy)
	if cmd := fmt.Sprint(d.Get(t, c+".command")); !strings.Contains(cmd, "--forwarded-allow-ips 127.0.0.1") {
		t.Errorf("the app believes X-Forwarded-* from more than the pod itself by default: %s", cmd)
	}
	rec.One(t, "kubernetes:batch/v1:Job").Equal(t, "spec.template.spec.containers[0].imagePullPolicy", kubernetes.DefaultImagePullPolicy)
	rec.One(t, "kubernetes:networking.k8s.io/v1:Ingress").Equal(t, `metadata.annotations["nginx.ingress.kubernetes.io/proxy-body-size"]`, service.DefaultBodyLimit)
	// The TLS Secret the Ingress names is the service's, not "" (the
	// controller's default certificate).
	rec.One(t, "kubernetes:networking.k8s.io/v1:Ingress").Equal(t, "spec.tls[0].secretName", "svc-tls")
	np := rec.Named(t, "svc-api-netpol")
	np.Equal(t, `spec.ingress[0].from[0].namespaceSelector.matchLabels["kubernetes.io/metadata.name"]`, kubernetes.DefaultIngressNamespace)
}
