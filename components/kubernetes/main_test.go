package kubernetes_test

import (
	"os"
	"testing"

	"github.com/fastapi-infra/fastapi-infra/internal/cluster"
	"github.com/fastapi-infra/fastapi-infra/stacks"
)

// TestMain gives the stacks' pre-flight StorageClass check a cluster with a
// default class: mock tests never reach a real cluster.
func TestMain(m *testing.M) {
	stacks.ConnectCluster = stacks.Fixed(cluster.StorageClass{Name: "standard", Default: true})
	os.Exit(m.Run())
}
