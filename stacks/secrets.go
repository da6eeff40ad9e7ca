package stacks

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"gopkg.in/yaml.v3"
)

// CheckStackFileSecrets reads a stack file (Pulumi.<stack>.yaml) and reports
// every value of a secret key stored in plain text, down to each field of a
// secret object. The engine tells a program only whether a top-level key
// holds some secret: `pulumi config set --path secretEnv.B x` without
// --secret puts B in plain text beside an encrypted A, and the whole
// secretEnv still counts as secret. Only the file shows each field.
func CheckStackFileSecrets(stackFile []byte) error {
	var file struct {
		Config map[string]yaml.Node `yaml:"config"`
	}
	if err := yaml.Unmarshal(stackFile, &file); err != nil {
		return fmt.Errorf("reading the stack file: %w", err)
	}
	var errs []error
	for _, k := range Keys {
		node, ok := file.Config[FullKey(k.Name)]
		if !k.Secret || !ok {
			continue
		}
		for _, path := range plainLeaves(&node, k.Name) {
			fix := "pulumi config set --secret " + path + " <value>"
			if path != k.Name {
				fix = "pulumi config set --secret --path '" + path + "' <value>"
			}
			errs = append(errs, fmt.Errorf("%s: is stored in plain text in the stack file; store it encrypted instead: %s", FullKey(path), fix))
		}
	}
	return errors.Join(errs...)
}

// plainLeaves lists the paths of values below node that are not
// {secure: ...}, the form `pulumi config set --secret` writes.
func plainLeaves(node *yaml.Node, path string) []string {
	switch node.Kind {
	case yaml.MappingNode:
		fields := map[string]*yaml.Node{}
		for i := 0; i+1 < len(node.Content); i += 2 {
			fields[node.Content[i].Value] = node.Content[i+1]
		}
		if len(fields) == 1 && fields["secure"] != nil && fields["secure"].Kind == yaml.ScalarNode {
			return nil
		}
		var out []string
		for _, name := range slices.Sorted(maps.Keys(fields)) {
			out = append(out, plainLeaves(fields[name], path+"."+name)...)
		}
		return out
	case yaml.SequenceNode:
		var out []string
		for i, item := range node.Content {
			out = append(out, plainLeaves(item, fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	case yaml.ScalarNode:
		if node.Value == "" && node.Tag == "!!null" {
			return nil
		}
		return []string{path}
	default:
		return []string{path}
	}
}

// StackFileArchitecture is the architecture a stack file sets, or the
// key's default.
func StackFileArchitecture(stackFile []byte) (Architecture, error) {
	var file struct {
		Config map[string]any `yaml:"config"`
	}
	if err := yaml.Unmarshal(stackFile, &file); err != nil {
		return "", fmt.Errorf("reading the stack file: %w", err)
	}
	switch v := file.Config[FullKey("architecture")].(type) {
	case nil:
		return SingleServer, nil
	case string:
		return Architecture(v), nil
	default:
		return "", fmt.Errorf("%s: must be a string, got %v", FullKey("architecture"), v)
	}
}
