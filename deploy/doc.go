// Package deploy drives the Pulumi engine through the Automation API with
// the same program (stacks.Run) and the same Pulumi.yaml / Pulumi.<stack>.yaml
// that `pulumi up` would use. It is how the program runs where the Go
// language host is missing, and what the end-to-end tests run: it finds (or
// has the toolchain package build) the pinned CLI, makes sure the provider plugin
// of the stack's architecture is installed, and checks the stack's config
// before the engine touches anything.
package deploy
