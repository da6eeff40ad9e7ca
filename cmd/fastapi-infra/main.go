// Command fastapi-infra is the project's driver: a verb on a stack
// (preview, up, destroy, refresh, outputs, history, logs, rollback,
// backup, restore, maintenance, exec), each in a file of its own here with
// its flags and help. The steps of an operation are deploy's
// (deploy.Prepare, Guards, Target.Run), so the CLI, the e2e tests and the
// benchmarks take the same ones; the engine runs through the Automation
// API with the program in this process (stacks.Run) and the project's
// Pulumi.yaml and Pulumi.<stack>.yaml. Use it where `pulumi up` cannot
// start a Go program, and for the README's one-command dev deployment
// (./infra up dev).
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/fastapi-infra/fastapi-infra/internal/cliargs"
)

func main() {
	// Not a context cancelled by Ctrl-C: that would make the SDK kill the
	// CLI 10 s later, mid-step, leaving pending operations behind. The
	// interrupt goes to the CLI instead (interrupt.go).
	stopForwarding := forwardInterrupts(os.Stderr)
	root := newRoot(&terminal{in: os.Stdin, out: os.Stderr})
	root.SetArgs(cliargs.VerbFirst(root, os.Args[1:]))
	err := root.Execute()
	stopForwarding()
	var code exitCode
	if errors.As(err, &code) { // exec: the command's own status, said by its output
		os.Exit(int(code))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fastapi-infra:", err)
		var usage usageError
		if errors.As(err, &usage) || strings.HasPrefix(err.Error(), "unknown command") {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
