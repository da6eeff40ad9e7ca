package stacks

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// referencePage is where the configuration reference is.
const referencePage = "../docs/configuration.md"

const (
	refStart = "<!-- config-reference:start (generated: go test ./stacks -run TestConfigReference -update) -->"
	refEnd   = "<!-- config-reference:end -->"
)

// configReference is docs/configuration.md's table of every key, from
// the registry.
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

// TestConfigReferenceListsEveryKey keeps docs/configuration.md's
// reference true.
func TestConfigReferenceListsEveryKey(t *testing.T) {
	raw, err := os.ReadFile(referencePage)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	i, j := strings.Index(text, refStart), strings.Index(text, refEnd)
	if i < 0 || j < i {
		t.Fatalf("%s has no config reference between %q and %q", referencePage, refStart, refEnd)
	}
	want := configReference()
	if *update {
		text = text[:i+len(refStart)] + "\n" + want + text[j:]
		if err := os.WriteFile(referencePage, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got := strings.TrimSpace(text[i+len(refStart) : j]); got != strings.TrimSpace(want) {
		t.Fatal(referencePage + "'s config reference is out of date; run: go test ./stacks -run TestConfigReference -update")
	}
}
