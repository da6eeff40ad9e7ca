package stacks

import (
	"context"
	"fmt"
	"strings"

	"github.com/fastapi-infra/fastapi-infra/components/service"
	"github.com/fastapi-infra/fastapi-infra/internal/cluster"
)

// StorageClassLister is what checkStorage asks the cluster.
type StorageClassLister interface {
	StorageClasses(context.Context) ([]cluster.StorageClass, error)
}

// ConnectCluster reaches the stack's cluster as its kubernetes provider
// does. Mock tests replace it: they must never touch a real cluster.
var ConnectCluster = func(a cluster.Access) (StorageClassLister, error) { return cluster.Connect(a) }

// checkStorage runs before any resource is registered: an in-cluster
// database needs a StorageClass that exists (db.storageClass) or a default
// one. Without it the claim stays Pending and `up` times out after 5
// minutes, with the namespace, Secrets and Services already created.
func (c *Config) checkStorage(ctx context.Context) error {
	if c.Architecture != Kubernetes || c.DB.Mode != service.DatabaseInCluster || c.Kubernetes.RenderYAMLTo != "" {
		return nil
	}
	key := FullKey("db.storageClass")
	client, err := ConnectCluster(cluster.Access{KubeconfigPath: c.Kubernetes.Kubeconfig, KubeconfigContent: c.kubeconfigContent.plain, Context: c.Kubernetes.Context})
	if err != nil {
		return fmt.Errorf("%s: cannot check the cluster's StorageClasses for the in-cluster database: %v\nNothing was changed.", key, err)
	}
	classes, err := client.StorageClasses(ctx)
	if err != nil {
		return fmt.Errorf("%s: cannot list the cluster's StorageClasses for the in-cluster database: %v\nNothing was changed.", key, err)
	}
	return storageProblem(key, c.DB.StorageClass, classes)
}

// storageProblem says what is missing, or nil.
func storageProblem(key, named string, classes []cluster.StorageClass) error {
	var names, defaults []string
	for _, sc := range classes {
		names = append(names, sc.Name)
		if sc.Default {
			defaults = append(defaults, sc.Name)
		}
	}
	has := "it has none"
	if len(names) > 0 {
		has = "it has: " + strings.Join(names, ", ")
	}
	switch {
	case named != "":
		for _, n := range names {
			if n == named {
				return nil
			}
		}
		return fmt.Errorf("%s: the cluster has no StorageClass %q (%s); name one of those, or leave db.storageClass empty for the cluster's default\nNothing was changed.", key, named, has)
	case len(defaults) == 0:
		return fmt.Errorf("%s: is empty and the cluster has no default StorageClass (%s), so the database's volume claim would never be bound; set db.storageClass to a class, mark one as the default (kubectl annotate storageclass <name> storageclass.kubernetes.io/is-default-class=true), or use db.mode external\nNothing was changed.", key, has)
	}
	return nil
}

// KnownStorage answers StorageClasses from a fixed list: what mock tests
// put in ConnectCluster's place.
type KnownStorage []cluster.StorageClass

func (k KnownStorage) StorageClasses(context.Context) ([]cluster.StorageClass, error) { return k, nil }

// Fixed makes ConnectCluster always answer with these classes.
func Fixed(classes ...cluster.StorageClass) func(cluster.Access) (StorageClassLister, error) {
	return func(cluster.Access) (StorageClassLister, error) { return KnownStorage(classes), nil }
}
