//go:build e2e

package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

// TestInClusterDatabaseSurvivesDestroy deploys a non-production stack with
// PostgreSQL in the cluster and checks that `pulumi destroy` removes the
// app but leaves the database's claim (and its namespace) in place.
func TestInClusterDatabaseSurvivesDestroy(t *testing.T) {
	s := newProdStack(t, map[string]string{
		"environment":            "development",
		"db.mode":                "in-cluster",
		"kubernetes.hpa.enabled": "false",
		"app.replicas":           "1",
	})
	ns := s.namespace
	// The lab has no volume provisioner: a static volume for the claim.
	pv := "lab-pv-" + ns
	apply(t, `apiVersion: v1
kind: PersistentVolume
metadata: {name: `+pv+`}
spec:
  capacity: {storage: 10Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: /tmp/`+pv+`}
`)
	t.Cleanup(func() {
		_ = exec.Command("kubectl", "--kubeconfig", lab.kubeconfig, "delete", "namespace", ns, "--wait=false").Run()
		_ = exec.Command("kubectl", "--kubeconfig", lab.kubeconfig, "delete", "pv", pv, "--wait=false").Run()
	})
	if _, out, err := s.up(t); err != nil {
		t.Fatalf("up failed:\n%s\n%v", out, err)
	}
	pvc := get(t, ns, "pvc", "fastapi-db-data")
	expect(t, "claim phase", pvc.str("status.phase"), "Bound")
	sts := get(t, ns, "statefulset", "fastapi-db")
	expect(t, "database ready", sts.str("status.readyReplicas"), "1")
	uid := pvc.str("metadata.uid")

	if _, err := s.Destroy(context.Background()); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	after := get(t, ns, "pvc", "fastapi-db-data")
	expect(t, "the same claim after destroy", after.str("metadata.uid"), uid)
	var deployments list
	kubectl(t, &deployments, "-n", ns, "get", "deployments,statefulsets,jobs,services")
	if len(deployments.Items) != 0 {
		t.Errorf("destroy left %d workloads or services behind", len(deployments.Items))
	}
}

func apply(t *testing.T, manifest string) {
	t.Helper()
	cmd := exec.Command("kubectl", "--kubeconfig", lab.kubeconfig, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
}
