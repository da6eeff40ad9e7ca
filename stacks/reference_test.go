package stacks

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

const (
	refStart = "<!-- config-reference:start (generated: go test ./stacks -run TestREADME -update) -->"
	refEnd   = "<!-- config-reference:end -->"
)

// configReference is the README's table of every key, from the registry.
func configReference() string {
	var b strings.Builder
	b.WriteString("| key | type | default | what it does |\n| --- | --- | --- | --- |\n")
	for _, k := range Keys {
		def := "required"
		if k.Default != nil {
			raw, _ := json.Marshal(k.Default)
			def = "`" + string(raw) + "`"
		}
		if k.Secret {
			def += " (secret)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", k.Name, k.Type, def, strings.ReplaceAll(k.Description, "|", "\\|"))
	}
	return b.String()
}

// TestREADMEListsEveryKey keeps the README's config reference true.
func TestREADMEListsEveryKey(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	i, j := strings.Index(text, refStart), strings.Index(text, refEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md has no config reference between %q and %q", refStart, refEnd)
	}
	want := configReference()
	if *update {
		text = text[:i+len(refStart)] + "\n" + want + text[j:]
		if err := os.WriteFile("../README.md", []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got := strings.TrimSpace(text[i+len(refStart) : j]); got != strings.TrimSpace(want) {
		t.Fatal("README.md's config reference is out of date; run: go test ./stacks -run TestREADME -update")
	}
}
