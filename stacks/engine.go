package stacks

import (
	"context"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/singleserver"
	"github.com/fastapi-infra/fastapi-infra/internal/dockerapi"
)

// EngineAPIVersion asks the single server's Docker engine (docker.host)
// for its Engine API version, as the docker provider negotiates it. Mock
// tests replace it: they must never touch a real engine.
var EngineAPIVersion = func(ctx context.Context, host, certPath string) (string, error) {
	return dockerapi.HostAPIVersion(ctx, host, certPath, 15*time.Second)
}

// engineAPIVersion is the version the single server plans for: the
// engine's, or, when it cannot be asked (a preview far from the host),
// the oldest supported one, which every engine accepts; the engine's
// newer features then wait for an `up` that can ask. The provider itself
// needs the engine for any plan, so that case is rare.
func (c *Config) engineAPIVersion(ctx *pulumi.Context) string {
	v, err := EngineAPIVersion(ctx.Context(), c.Docker.Host, c.Docker.CertPath)
	if err != nil || v == "" {
		_ = ctx.Log.Warn("the Docker engine at "+c.Docker.Host+" did not say its API version ("+errString(err)+"); planning for the oldest supported, "+singleserver.MinEngineAPI+" (Docker 20.10): healthchecks without startInterval", nil)
		return singleserver.MinEngineAPI
	}
	return v
}

func errString(err error) string {
	if err == nil {
		return "no version in its answer"
	}
	return err.Error()
}
