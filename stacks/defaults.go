package stacks

import (
	"math"

	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// applyDefaults fills the defaults that derive from other keys; plain
// defaults come from the key registry as keys are read. It never overrides a
// value the stack set.
func applyDefaults(c *Config) {
	if c.Workers == 0 {
		c.Workers = defaultWorkers(c.Architecture, c.CPU)
	}
	if c.TLSSecretName == "" {
		c.TLSSecretName = c.AppName + "-tls"
	}
	production := c.Environment == "production"
	if c.TLSMode == "" {
		switch {
		case c.Architecture == Kubernetes:
			c.TLSMode = "secret" // <app.name>-tls, made by whoever manages certificates
		case !production:
			c.TLSMode = "self-signed"
		} // a production single server must choose: validate says so
	}
	if c.DBMode == "" {
		switch {
		case c.Architecture != Kubernetes:
			c.DBMode = "container"
		case production:
			c.DBMode = "external"
		default:
			c.DBMode = "in-cluster"
		}
	}
}

// defaultWorkers follows the seed: one process per pod on Kubernetes, where
// replicas scale; (2 x CPU) + 1 on a single server, with CPU the container's
// limit rounded up, since that is all the CPU its workers can use.
func defaultWorkers(arch Architecture, cpu string) int {
	if arch == Kubernetes {
		return 1
	}
	q, err := service.ParseCPU(cpu)
	if err != nil || q.Value <= 0 {
		return 1 // app.cpu is reported by validate
	}
	return 2*int(math.Ceil(q.Cores())) + 1
}
