// Package cliargs reads a command line whose flags may come before,
// between and after its positional arguments, as the driver's
// `./infra restore dev --from NAME` puts them.
package cliargs

import "flag"

// Interspersed parses flags before, between and after the operation
// and the stack, as `./infra restore dev --from NAME` puts them (the
// flag package alone stops at the first argument that is not a flag),
// and returns the others in order.
func Interspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
