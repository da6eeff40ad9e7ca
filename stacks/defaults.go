package stacks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"math"

	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// applyDefaults fills the defaults that derive from other keys; plain
// defaults come from the key registry as keys are read. It never overrides a
// value the stack set.
func applyDefaults(c *Config) {
	if c.App.Workers == 0 {
		c.App.Workers = defaultWorkers(c.Architecture, c.App.CPU)
	}
	production := c.Environment == "production"
	if c.TLS.Mode == "" {
		switch {
		case c.Architecture == Kubernetes:
			c.TLS.Mode = service.TLSSecret // <app.name>-tls, made by whoever manages certificates
		case !production:
			c.TLS.Mode = service.TLSSelfSigned
		} // a production single server must choose: validate says so
	}
	if c.DB.Mode == "" {
		switch {
		case c.Architecture != Kubernetes:
			c.DB.Mode = service.DatabaseContainer
		case production:
			c.DB.Mode = service.DatabaseExternal
		default:
			c.DB.Mode = service.DatabaseInCluster
		}
	}
	if c.DB.SSLMode == "" {
		// A production database is reached across a network the stack
		// does not own: verify who answers. The stack's own is on its
		// private network and serves no TLS; a development one may be a
		// laptop's.
		c.DB.SSLMode = "prefer"
		if c.DB.Mode == service.DatabaseExternal && production {
			c.DB.SSLMode = "verify-full"
		}
	}
	if c.DB.Mode != service.DatabaseExternal {
		if c.DB.AppUser == "" {
			c.DB.AppUser = c.DB.User + "_rw"
		}
		if !c.dbAppPassword.set {
			c.dbAppPassword = derivedAppPassword(c.dbPassword.plain, c.DB.AppUser)
		}
	}
}

// derivedAppPassword is the app role's password when dbAppPassword is not
// set: an HMAC of the role's name keyed with dbPassword. It is as strong as
// dbPassword, changes with it (a rotation rotates both), and the app's
// password, which the app's containers hold, gives nothing away about the
// owner's. Stored nowhere but in the database and the app's secret.
func derivedAppPassword(owner, role string) secretValue {
	if owner == "" {
		return secretValue{} // dbPassword is reported missing
	}
	h := hmac.New(sha256.New, []byte(owner))
	h.Write([]byte("fastapi-infra app role\x00" + role))
	return secretValue{plain: base64.RawURLEncoding.EncodeToString(h.Sum(nil)), set: true, isSecret: true}
}

// defaultWorkers follows the seed: one process per pod on Kubernetes, where
// replicas scale; (2 x CPU) + 1 on a single server, with CPU the container's
// limit rounded up, since that is all the CPU its workers can use.
func defaultWorkers(arch Architecture, cpu service.Quantity) int {
	if arch == Kubernetes {
		return 1
	}
	if cpu.Value <= 0 {
		return 1 // app.cpu is reported
	}
	return 2*int(math.Ceil(cpu.Cores())) + 1
}
