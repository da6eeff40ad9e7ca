// Package cliargs reads a command line of verbs the way the driver has
// always taken it: flags before or after the verb.
package cliargs

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// VerbFirst moves the verb to the front of the arguments, so that any
// flag may come before it (./infra --expect-no-changes preview dev, as
// the driver has always taken them): cobra reads the flags before a verb
// as the root's, and a verb's own flag there was an error, or took the
// verb for its value. A flag that takes a value (any verb's, e.g.
// --since) skips its value; after "--" nothing moves.
func VerbFirst(root *cobra.Command, args []string) []string {
	takesValue := map[string]bool{}
	note := func(f *pflag.Flag) { takesValue[f.Name] = f.NoOptDefVal == "" }
	root.PersistentFlags().VisitAll(note)
	for _, c := range root.Commands() {
		c.Flags().VisitAll(note)
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return args
		case strings.HasPrefix(a, "-"):
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && takesValue[name] {
				i++
			}
		default:
			if i == 0 {
				return args
			}
			return append(append([]string{a}, args[:i]...), args[i+1:]...)
		}
	}
	return args
}
