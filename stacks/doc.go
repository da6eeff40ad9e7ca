// Package stacks turns a stack's config into one of the two architectures.
// Run reads every key with the SDK's Try* functions into a Config grouped as
// the keys are (config.go: enums as the components' types, CPU, memory and
// thresholds parsed once, as they are read), applies the defaults of the key
// registry (keys.go, which takes the components' own defaults) and the
// derived ones (defaults.go), validates everything at once (validate.go),
// and only then registers the component of the chosen architecture: bad
// input never creates or replaces a resource.
package stacks
