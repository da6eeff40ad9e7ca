package stacks

import (
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite Pulumi.yaml's config block from the key registry")

const projectHeader = `name: fastapi-infra
runtime: go
description: Takes a containerized FastAPI service with PostgreSQL to production, on one Docker host or on Kubernetes.
# Every key the program reads, with its type and default (generated from
# stacks/keys.go: go test ./stacks -run TestPulumiYAML -update). Stack files
# hold only overrides. Secret keys have no default: the engine then requires
# them, encrypted. Optional secrets (tlsKey, registryPassword, ...) cannot be
# declared secret without becoming required, so the program checks that they
# are encrypted instead.
`

// TestPulumiYAMLDeclaresEveryKey holds Pulumi.yaml and the key registry
// together, and checks the file with Pulumi's own project loader.
func TestPulumiYAMLDeclaresEveryKey(t *testing.T) {
	if *update {
		writeProjectFile(t)
	}
	proj, err := workspace.LoadProject("../Pulumi.yaml")
	if err != nil {
		t.Fatalf("Pulumi.yaml does not load: %v", err)
	}
	if len(proj.Config) != len(Keys) {
		t.Errorf("Pulumi.yaml declares %d keys, the program reads %d", len(proj.Config), len(Keys))
	}
	for _, k := range Keys {
		decl, ok := proj.Config[k.Name]
		if !ok {
			t.Errorf("Pulumi.yaml does not declare %s", k.Name)
			continue
		}
		if decl.Type == nil || *decl.Type != k.Type {
			t.Errorf("%s: Pulumi.yaml type %v, program reads %s", k.Name, decl.Type, k.Type)
		}
		if decl.Secret != k.DeclaredSecret() {
			t.Errorf("%s: Pulumi.yaml secret %v, program %v", k.Name, decl.Secret, k.DeclaredSecret())
		}
		if !reflect.DeepEqual(normalize(decl.Default), normalize(k.Default)) {
			t.Errorf("%s: Pulumi.yaml default %#v, program default %#v", k.Name, decl.Default, k.Default)
		}
		if decl.Description != k.Description {
			t.Errorf("%s: Pulumi.yaml description differs from stacks/keys.go", k.Name)
		}
	}
}

// normalize makes YAML-decoded and Go-literal defaults comparable.
func normalize(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = normalize(x[i])
		}
		return out
	case map[string]any:
		if len(x) == 0 {
			return map[string]any{}
		}
	}
	return v
}

func writeProjectFile(t *testing.T) {
	type items struct {
		Type string `yaml:"type"`
	}
	type decl struct {
		Type        string `yaml:"type"`
		Description string `yaml:"description"`
		Items       *items `yaml:"items,omitempty"`
		Default     any    `yaml:"default,omitempty"`
		Secret      bool   `yaml:"secret,omitempty"`
	}
	var b strings.Builder
	b.WriteString(projectHeader + "config:\n")
	for _, k := range Keys {
		d := decl{Type: k.Type, Description: k.Description, Default: k.Default, Secret: k.DeclaredSecret()}
		if k.Type == "array" {
			d.Items = &items{Type: "string"}
		}
		if m, ok := k.Default.(map[string]any); ok && len(m) == 0 {
			d.Default = map[string]any{} // omitempty would drop an empty object
		}
		var out strings.Builder
		enc := yaml.NewEncoder(&out)
		enc.SetIndent(2)
		if err := enc.Encode(map[string]decl{k.Name: d}); err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
			b.WriteString("  " + line + "\n")
		}
	}
	if err := os.WriteFile("../Pulumi.yaml", []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
