package singleserver

import (
	"strconv"
	"strings"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

func (b *builder) buildProxy() error {
	if b.args.Proxy == Traefik {
		return b.buildTraefik()
	}
	return b.buildNginx()
}

// proxyNetworks puts the proxy at its fixed address on the private network,
// the one address the app trusts, and on the edge network that publishes.
func (b *builder) proxyNetworks() docker.ContainerNetworksAdvancedArray {
	return docker.ContainerNetworksAdvancedArray{
		docker.ContainerNetworksAdvancedArgs{Name: b.private.Name, Ipv4Address: pulumi.String(b.net.ProxyIP)},
		docker.ContainerNetworksAdvancedArgs{Name: b.edge.Name},
	}
}

func (b *builder) publishedPorts() docker.ContainerPortArray {
	return docker.ContainerPortArray{
		docker.ContainerPortArgs{Internal: pulumi.Int(80), External: pulumi.Int(b.args.HTTPPort)},
		docker.ContainerPortArgs{Internal: pulumi.Int(443), External: pulumi.Int(b.args.HTTPSPort)},
	}
}

// appDependencies make the proxy start after the first healthy replicas:
// nginx refuses to load a config whose upstream name does not resolve.
func (b *builder) appDependencies() []pulumi.Resource {
	deps := make([]pulumi.Resource, 0, len(b.apps))
	for _, a := range b.apps {
		deps = append(deps, a)
	}
	return deps
}

// proxyContainer creates the proxy (nginx or Traefik) with what both share:
// the edge and internal networks, the published ports, the restart policy,
// memory limit and log rotation, and creation after the app replicas, then
// a wait until its own healthcheck passes.
// deps are what else it waits for (Traefik's Docker API filter).
func (b *builder) proxyContainer(args *docker.ContainerArgs, deps ...pulumi.Resource) error {
	args.NetworksAdvanced = b.proxyNetworks()
	args.Ports = b.publishedPorts()
	args.Restart = pulumi.String("unless-stopped")
	limitMemory(args, 256)
	args.LogDriver = pulumi.String(b.logDriver())
	args.LogOpts = b.logOptions()
	args.StopTimeout = pulumi.Int(30)
	args.SecurityOpts = pulumi.StringArray{pulumi.String("no-new-privileges:true")}
	args.Wait = pulumi.Bool(true)
	args.WaitTimeout = pulumi.Int(60)
	var err error
	b.proxy, err = docker.NewContainer(b.ctx, b.name+"-proxy", args, b.opts(pulumi.DependsOn(append(b.appDependencies(), deps...)))...)
	return err
}

// nginxSizeBytes reads an nginx size (512k, 10m, 1g, or bytes), validated
// by the stack config.
func nginxSizeBytes(size string) int64 {
	mult := int64(1)
	switch strings.ToLower(size[len(size)-1:]) {
	case "k":
		mult, size = 1<<10, size[:len(size)-1]
	case "m":
		mult, size = 1<<20, size[:len(size)-1]
	case "g":
		mult, size = 1<<30, size[:len(size)-1]
	}
	n, _ := strconv.ParseInt(size, 10, 64)
	return n * mult
}
