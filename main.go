// Command fastapi-infra is the Pulumi program. It is a stub on purpose: the
// program is stacks.Run, which the Automation API driver (cmd/fastapi-infra)
// and the end-to-end tests run in-process too.
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/stacks"
)

func main() {
	pulumi.Run(stacks.Run)
}
