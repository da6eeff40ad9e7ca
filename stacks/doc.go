// Package stacks turns a stack's config into one of the two architectures.
// Run reads every key with the SDK's Try* functions, applies the defaults of
// the key registry (keys.go) and the derived ones (defaults.go), validates
// everything at once (validate.go), and only then registers the component of
// the chosen architecture: bad input never creates or replaces a resource.
package stacks
