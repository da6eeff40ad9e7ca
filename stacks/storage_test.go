package stacks

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/fastapi-infra/fastapi-infra/components/singleserver"
	"github.com/fastapi-infra/fastapi-infra/internal/cluster"
	"github.com/fastapi-infra/fastapi-infra/internal/mocktest"
)

func TestMain(m *testing.M) {
	ConnectCluster = Fixed(cluster.StorageClass{Name: "standard", Default: true})
	EngineAPIVersion = func(context.Context, string, string) (string, error) { return singleserver.MinEngineAPI, nil }
	os.Exit(m.Run())
}

// inCluster is the prod stack as a development cluster with its database
// in the cluster, the README's staging example.
func inCluster(t *testing.T) mocktest.Config {
	return stackConfig(t, "prod").Set("fastapi-infra:environment", "development").Set("fastapi-infra:db.mode", "in-cluster").Without("fastapi-infra:db.caCert")
}

// TestStorageClassIsCheckedBeforeAnythingIsCreated: on a cluster without a
// default StorageClass the staging example created 13 resources, then
// timed out on the database's claim after 5 minutes. Now the program
// stops before it registers anything, naming db.storageClass and the fix.
func TestStorageClassIsCheckedBeforeAnythingIsCreated(t *testing.T) {
	defer func(saved func(cluster.Access) (StorageClassLister, error)) { ConnectCluster = saved }(ConnectCluster)
	cases := []struct {
		name    string
		classes []cluster.StorageClass
		named   string
		want    string // empty: no error
	}{
		{"default class", []cluster.StorageClass{{Name: "fast"}, {Name: "standard", Default: true}}, "", ""},
		{"named class", []cluster.StorageClass{{Name: "fast"}}, "fast", ""},
		{"no default", []cluster.StorageClass{{Name: "fast"}, {Name: "slow"}}, "",
			"fastapi-infra:db.storageClass: is empty and the cluster has no default StorageClass (it has: fast, slow), so the database's volume claim would never be bound; set db.storageClass to a class, mark one as the default (kubectl annotate storageclass <name> storageclass.kubernetes.io/is-default-class=true), or use db.mode external\nNothing was changed."},
		{"no class at all", nil, "",
			"fastapi-infra:db.storageClass: is empty and the cluster has no default StorageClass (it has none)"},
		{"named class missing", []cluster.StorageClass{{Name: "standard", Default: true}}, "ssd",
			`fastapi-infra:db.storageClass: the cluster has no StorageClass "ssd" (it has: standard); name one of those, or leave db.storageClass empty for the cluster's default`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ConnectCluster = Fixed(tc.classes...)
			c := inCluster(t)
			if tc.named != "" {
				c = c.Set("fastapi-infra:db.storageClass", tc.named)
			}
			rec, err := run(t, "prod", c)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				// The data claim and the backups claim.
				claims := rec.ByType("kubernetes:core/v1:PersistentVolumeClaim")
				if len(claims) != 2 {
					t.Fatalf("%d claims, want the data and the backups claims", len(claims))
				}
				for _, claim := range claims {
					if tc.named != "" {
						claim.Equal(t, "spec.storageClassName", tc.named)
					} else if claim.Has("spec.storageClassName") {
						t.Errorf("an empty db.storageClass sets the class of claim %s instead of leaving it to the default", claim.Name)
					}
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error does not say\n  %s\ngot:\n%v", tc.want, err)
			}
			if types := rec.Types(); len(types) > 0 {
				t.Errorf("registered %v before the check failed", types)
			}
		})
	}
	// External databases and rendering to YAML need no class, and never
	// contact the cluster for it.
	ConnectCluster = func(cluster.Access) (StorageClassLister, error) {
		t.Error("the StorageClass check ran without an in-cluster database")
		return KnownStorage(nil), nil
	}
	if _, err := run(t, "prod", stackConfig(t, "prod")); err != nil {
		t.Fatal(err)
	}
}
