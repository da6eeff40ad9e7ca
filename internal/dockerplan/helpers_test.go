package dockerplan

import (
	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

func dockerContainer(ctx *pulumi.Context) (*docker.Container, error) {
	return docker.NewContainer(ctx, "c", &docker.ContainerArgs{Image: pulumi.String("x:1"), Privileged: pulumi.Bool(true)})
}
