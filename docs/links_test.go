// Package docs holds the project's documentation pages; its test keeps
// what they point at real.
package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var (
	// link is a Markdown link's target: [text](target).
	link = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	// infraCommand is ./infra with its flags and operation.
	infraCommand = regexp.MustCompile(`\./infra((?:[ \t]+--?[a-z-]+(?:[= ](?:'[^']*'|[^\s'-][^\s]*))?)*)[ \t]+([a-z]+)`)
	// code is a fenced block or an inline code span: where commands are.
	code = regexp.MustCompile("(?s)```.*?```|`[^`\n]+`")
	// goRun is go run with the package path.
	goRun = regexp.MustCompile(`go run (\./[^\s` + "`" + `]+)`)
	// anchorTarget is a heading's GitHub anchor: lower case, spaces to
	// hyphens, punctuation but hyphens and underscores dropped.
	anchorDrop = regexp.MustCompile(`[^a-z0-9 _-]`)
)

// verbDefinition is how the driver defines a verb (cmd/fastapi-infra):
// stackVerb(g, "NAME", ...), or a command of its own, Use: "NAME ...".
var verbDefinition = regexp.MustCompile(`(?:stackVerb\(g, "|Use:\s+")([a-z]+)[" ]`)

// driverVerbs are the verbs the driver's source defines.
func driverVerbs(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../cmd/fastapi-infra/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no driver source: %v", err)
	}
	var verbs []string
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range verbDefinition.FindAllStringSubmatch(string(src), -1) {
			verbs = append(verbs, m[1])
		}
	}
	if len(verbs) < 5 {
		t.Fatalf("found only the verbs %v in the driver's source: has stackVerb changed?", verbs)
	}
	return verbs
}

// pages are README.md and every page here.
func pages(t *testing.T) []string {
	t.Helper()
	found, err := filepath.Glob("*.md")
	if err != nil || len(found) == 0 {
		t.Fatalf("no pages: %v", err)
	}
	return append([]string{"../README.md"}, found...)
}

// anchors are the GitHub anchors of a page's headings.
func anchors(t *testing.T, page string) []string {
	t.Helper()
	raw, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	inFence := false
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		heading := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		out = append(out, strings.ReplaceAll(anchorDrop.ReplaceAllString(heading, ""), " ", "-"))
	}
	return out
}

// TestLinksPointAtWhatExists: every relative link of the README and these
// pages names a file (or folder) of the repository, and its #anchor a
// heading of that page.
func TestLinksPointAtWhatExists(t *testing.T) {
	for _, page := range pages(t) {
		raw, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(raw), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			resolved := page
			if file != "" {
				resolved = filepath.Join(filepath.Dir(page), file)
				if _, err := os.Stat(resolved); err != nil {
					t.Errorf("%s links to %s, which does not exist", page, target)
					continue
				}
			}
			if anchor != "" && !slices.Contains(anchors(t, resolved), anchor) {
				t.Errorf("%s links to %s: %s has no heading with that anchor (it has %v)", page, target, resolved, anchors(t, resolved))
			}
		}
	}
}

// TestCommandsExist: every `./infra OP` names an operation of the driver,
// and every `go run ./PATH` a folder of the repository with a main
// package.
func TestCommandsExist(t *testing.T) {
	operations := driverVerbs(t)
	for _, page := range pages(t) {
		raw, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Join(code.FindAllString(string(raw), -1), "\n")
		for _, m := range infraCommand.FindAllStringSubmatch(text, -1) {
			if op := m[2]; !slices.Contains(operations, op) {
				t.Errorf("%s: `%s` names no operation of the driver (%v)", page, strings.TrimSpace(m[0]), operations)
			}
		}
		for _, m := range goRun.FindAllStringSubmatch(text, -1) {
			dir := filepath.Join("..", strings.TrimSuffix(m[1], "/..."))
			main, err := filepath.Glob(filepath.Join(dir, "*.go"))
			if err != nil || len(main) == 0 {
				t.Errorf("%s: `go run %s`: no Go package in %s", page, m[1], dir)
				continue
			}
			isMain := false
			for _, f := range main {
				src, _ := os.ReadFile(f)
				isMain = isMain || strings.Contains(string(src), "\npackage main\n") || strings.HasPrefix(string(src), "package main\n")
			}
			if !isMain {
				t.Errorf("%s: `go run %s`: %s is not a main package", page, m[1], dir)
			}
		}
	}
}
