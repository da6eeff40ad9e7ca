// Package mocktest runs Pulumi programs against the SDK's mock engine and
// records every resource registration, so tests can assert on the inputs,
// parents and dependencies the program asked for.
package mocktest
