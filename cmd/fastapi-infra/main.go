// Command fastapi-infra runs preview, up, destroy, refresh and outputs of a
// stack of this project through the Automation API, with the program in
// this process (stacks.Run) and the project's Pulumi.yaml and
// Pulumi.<stack>.yaml. Use it where `pulumi up` cannot start a Go program,
// and for the README's one-command dev deployment (./infra up dev).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fastapi-infra/fastapi-infra/deploy"
	"github.com/fastapi-infra/fastapi-infra/internal/cliargs"
)

const usage = `usage: fastapi-infra [flags] preview|up|destroy|refresh|outputs|history|logs|backup|restore STACK

Runs the operation on STACK (dev, prod, or any Pulumi.<stack>.yaml) with the
program in this process. up, destroy and refresh show the preview and ask
first, as pulumi does; --yes skips the question (CI). Destroying a
production stack also asks for its name, --yes or not. Ctrl-C lets the engine finish the
step it is in and release the stack; a second Ctrl-C stops it at once.
history prints one line per update of the stack: when, kind, result,
duration, who (user@host, or the GitHub actor and run), the release
(app.image), the config keys changed (never a secret: a rotation shows in
the resource changes) and the resource changes: the audit log.
logs prints a single server's containers' lines in one time-ordered
stream (--since 10m, --grep TEXT, --service app|proxy|db|...).
For the stack's own database (a single server's container, an in-cluster
one), backup takes a backup now, restore lists the backups and restore
--from NAME puts one back (the app stops meanwhile).
Backend: --backend, else $PULUMI_BACKEND_URL, else the one you are logged
into, else a local file backend in ~/.fastapi-infra.

flags:
`

func main() {
	var f flags
	dir := flag.String("dir", ".", "the project folder (Pulumi.yaml)")
	backend := flag.String("backend", "", "backend URL, e.g. file://~/state, s3://bucket, https://api.pulumi.com")
	flag.BoolVar(&f.yes, "yes", false, "up/destroy/refresh: apply without asking (CI)")
	flag.BoolVar(&f.expectNoChanges, "expect-no-changes", false, "preview/up: fail when the stack would change (drift check)")
	flag.BoolVar(&f.diff, "diff", false, "preview/up: show a detailed diff")
	flag.BoolVar(&f.showSecrets, "show-secrets", false, "outputs: print secret values")
	flag.StringVar(&f.from, "from", "", "restore: the backup to restore (./infra restore STACK lists them)")
	flag.DurationVar(&f.since, "since", 0, "logs: only lines of the last duration, e.g. 10m (0: every line the engine keeps)")
	flag.StringVar(&f.grep, "grep", "", "logs: only lines that contain this text")
	flag.StringVar(&f.service, "service", "", "logs: only this service's containers: app, proxy, db, backup, migrate, ...")
	flag.Usage = func() { fmt.Fprint(os.Stderr, usage); flag.PrintDefaults() }
	positional, err := cliargs.Interspersed(flag.CommandLine, os.Args[1:])
	if err != nil || len(positional) != 2 {
		if err == nil {
			flag.Usage()
		}
		os.Exit(2)
	}
	op, stackName := positional[0], positional[1]
	// Not a context cancelled by Ctrl-C: that would make the SDK kill the
	// CLI 10 s later, mid-step, leaving pending operations behind. The
	// interrupt goes to the CLI instead (interrupt.go).
	stopForwarding := forwardInterrupts(os.Stderr)
	defer stopForwarding()
	projectDir, err := filepath.Abs(*dir)
	if err == nil {
		err = run(context.Background(), op, deploy.Options{ProjectDir: projectDir, Stack: stackName, Backend: *backend, Progress: os.Stderr}, f, &terminal{in: os.Stdin, out: os.Stderr})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fastapi-infra:", err)
		os.Exit(1)
	}
}
