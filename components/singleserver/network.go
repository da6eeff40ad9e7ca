package singleserver

import (
	"fmt"
	"net/netip"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// addressPlan splits the private subnet: Docker hands out addresses from
// the lower half, and the proxy has a fixed address at the top, which is the
// only peer the app trusts for X-Forwarded-* (uvicorn before 0.29 accepts
// addresses, not networks, in --forwarded-allow-ips).
type addressPlan struct {
	Subnet, DynamicRange, ProxyIP string
}

// PlanAddresses computes the plan for an IPv4 subnet of /16 to /28.
func PlanAddresses(subnet string) (addressPlan, error) {
	p, err := netip.ParsePrefix(subnet)
	if err != nil || !p.Addr().Is4() || p.Bits() < 16 || p.Bits() > 28 || p.Masked() != p {
		return addressPlan{}, fmt.Errorf("must be an IPv4 network of /16 to /28 such as 172.30.57.0/24, got %q", subnet)
	}
	base := p.Addr().As4()
	n := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	size := uint32(1) << (32 - p.Bits())
	last := n + size - 2 // the broadcast address is size-1
	ip := netip.AddrFrom4([4]byte{byte(last >> 24), byte(last >> 16), byte(last >> 8), byte(last)})
	return addressPlan{
		Subnet:       p.String(),
		DynamicRange: netip.PrefixFrom(p.Addr(), p.Bits()+1).String(),
		ProxyIP:      ip.String(),
	}, nil
}

// privateIsInternal: the private network has no way out unless the
// database is external and the app must reach it.
func (b *builder) privateIsInternal() bool { return b.args.Service.Database.Mode != "external" }

// buildNetworks creates the private network of proxy, app and database,
// and the edge network on which the proxy alone publishes ports. The private
// network is internal (no route to or from outside) unless the database is
// external and the app must reach it.
func (b *builder) buildNetworks() error {
	var err error
	if b.net, err = PlanAddresses(b.args.Subnet); err != nil {
		return fmt.Errorf("singleserver: subnet: %w", err)
	}
	b.private, err = docker.NewNetwork(b.ctx, b.name+"-private", &docker.NetworkArgs{
		Name:     pulumi.String(b.dockerName("private")),
		Driver:   pulumi.String("bridge"),
		Internal: pulumi.Bool(b.privateIsInternal()),
		IpamConfigs: docker.NetworkIpamConfigArray{docker.NetworkIpamConfigArgs{
			Subnet:  pulumi.String(b.net.Subnet),
			IpRange: pulumi.String(b.net.DynamicRange),
		}},
	}, b.opts()...)
	if err != nil {
		return err
	}
	// The edge network after the private one: Docker gives it a /16 of
	// its default pools (172.17-31.x), skipping those that overlap a
	// network that exists. Created at the same time, the edge network
	// could take the /16 the private /24 lies in, and the private one
	// was refused (seen in CI: "networks have overlapping IPv4").
	b.edge, err = docker.NewNetwork(b.ctx, b.name+"-edge", &docker.NetworkArgs{
		Name:   pulumi.String(b.dockerName("edge")),
		Driver: pulumi.String("bridge"),
	}, b.opts(pulumi.DependsOn([]pulumi.Resource{b.private}))...)
	if err != nil || !b.args.Service.Database.Backup.Repository.Enabled() {
		return err
	}
	// The private network has no way out; the database archives its WAL
	// to an off-host repository, so it and the backup container (alone)
	// join one that has. Nothing publishes a port on it.
	b.archive, err = docker.NewNetwork(b.ctx, b.name+"-archive", &docker.NetworkArgs{
		Name:   pulumi.String(b.dockerName(ArchiveNetwork)),
		Driver: pulumi.String("bridge"),
	}, b.opts(pulumi.DependsOn([]pulumi.Resource{b.edge}))...)
	return err
}

// ArchiveNetwork is the Docker name suffix of the network on which the
// database reaches its off-host backup repository.
const ArchiveNetwork = "archive"

// repositoryHosts is the /etc/hosts entry of the repository's endpoint
// for the containers that reach it, when the stack gives its address.
func (b *builder) repositoryHosts() docker.ContainerHostArray {
	repo := b.args.Service.Database.Backup.Repository
	if !repo.Enabled() || repo.HostAddress == "" {
		return nil
	}
	return docker.ContainerHostArray{docker.ContainerHostArgs{Host: pulumi.String(repo.Host()), Ip: pulumi.String(repo.HostAddress)}}
}

// databaseNetworks are the database's and backup container's: the private
// network, and the archive network when there is a repository.
func (b *builder) databaseNetworks(aliases ...string) docker.ContainerNetworksAdvancedArray {
	nets := b.privateNetwork(aliases...)
	if b.archive != nil {
		nets = append(nets, docker.ContainerNetworksAdvancedArgs{Name: b.archive.Name})
	}
	return nets
}
