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
