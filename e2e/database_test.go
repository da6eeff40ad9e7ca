//go:build e2e

package e2e

import (
	"context"
	"testing"
)

// TestInClusterDatabaseSurvivesDestroy deploys a development stack with
// PostgreSQL in the cluster on the real node (a local volume of the lab's
// default StorageClass) and checks that `pulumi destroy` removes the app
// but leaves the database's claim, its volume and its namespace in place.
func TestInClusterDatabaseSurvivesDestroy(t *testing.T) {
	s := newRealStack(t, map[string]string{"app.replicas": "1", "kubernetes.pdb": "false"})
	ns := s.namespace
	t.Cleanup(func() {
		if !t.Failed() {
			kubectlRun(t, "delete", "namespace", ns, "--wait=false")
		}
	})
	if _, out, err := s.up(t); err != nil {
		t.Fatalf("up failed:\n%s\n%v", out, err)
	}
	pvc := get(t, ns, "pvc", "fastapi-db-data")
	expect(t, "claim phase", pvc.str("status.phase"), "Bound")
	sts := get(t, ns, "statefulset", "fastapi-db")
	expect(t, "database ready", sts.str("status.readyReplicas"), "1")
	uid, volume := pvc.str("metadata.uid"), pvc.str("spec.volumeName")

	if _, err := s.Destroy(context.Background()); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	after := get(t, ns, "pvc", "fastapi-db-data")
	expect(t, "the same claim after destroy", after.str("metadata.uid"), uid)
	expect(t, "its volume", after.str("spec.volumeName"), volume)
	var workloads list
	kubectl(t, &workloads, "-n", ns, "get", "deployments,statefulsets,jobs,services")
	if len(workloads.Items) != 0 {
		t.Errorf("destroy left %d workloads or services behind", len(workloads.Items))
	}
}
