package deploy

import (
	"fmt"
	"regexp"
	"strings"
)

// sdkWrapping is how the Go SDK wraps an error the program's own code
// returned from an apply: the words before it say nothing to the user.
var sdkWrapping = regexp.MustCompile(`^(an unhandled error occurred: )?(program failed:\s*)?(waiting for RPCs: )?(marshaling properties: )?(awaiting input property "[^"]*": )?`)

// Summarize turns the engine's output of a failed operation into the
// message a person needs: each resource's error from the Diagnostics
// section, without the SDK's wrapping ("an unhandled error occurred:
// waiting for RPCs: marshaling properties: awaiting input property ...")
// and without the stack's generic "update failed". The progress itself
// was streamed already; printing the whole output again only buries this.
// When the engine wrote no diagnostics (it failed before it started), the
// CLI's own "error:" lines are the message.
func Summarize(stdout, stderr string) string {
	var msgs []string
	for _, block := range diagnostics(stdout) {
		text := strings.TrimSpace(sdkWrapping.ReplaceAllString(block.text, ""))
		if text == "" || text == "update failed" || text == "preview failed" || text == "destroy failed" || text == "refresh failed" {
			continue
		}
		if !strings.HasPrefix(block.resource, "pulumi:pulumi:Stack") {
			text = block.resource + ": " + text
		}
		msgs = append(msgs, text)
	}
	if len(msgs) == 0 {
		for _, line := range strings.Split(stderr, "\n") {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "error: "); ok {
				msgs = append(msgs, sdkWrapping.ReplaceAllString(rest, ""))
			}
		}
	}
	return strings.Join(msgs, "\n")
}

type diagnostic struct{ resource, text string }

// diagnostics reads the Diagnostics section: a header line per resource
// ("  <type> (<name>):"), then its messages indented by four spaces; a
// message's continuation lines keep that indentation.
func diagnostics(out string) []diagnostic {
	lines := strings.Split(strings.ReplaceAll(out, "\r\n", "\n"), "\n")
	start := -1
	for i, l := range lines {
		if strings.TrimSpace(l) == "Diagnostics:" {
			start = i + 1
		}
	}
	if start < 0 {
		return nil
	}
	var blocks []diagnostic
	resource := ""
	var msg []string // the error message being read, if any
	kind := ""
	flush := func() {
		if kind == "error" {
			blocks = append(blocks, diagnostic{resource: resource, text: strings.TrimSpace(strings.Join(msg, "\n"))})
		}
		kind, msg = "", nil
	}
	for _, l := range lines[start:] {
		switch {
		case l != "" && !strings.HasPrefix(l, " "):
			flush()
			return blocks // the next section: Outputs, Resources, Duration
		case strings.HasPrefix(l, "  ") && !strings.HasPrefix(l, "    ") && strings.HasSuffix(l, "):"):
			flush()
			resource = strings.TrimSuffix(strings.TrimSpace(l), ":")
		default:
			body := strings.TrimPrefix(l, "    ")
			for _, k := range []string{"error", "warning", "info"} {
				if rest, ok := strings.CutPrefix(body, k+": "); ok {
					flush()
					kind, body = k, rest
				}
			}
			if kind != "" {
				msg = append(msg, body)
			}
		}
	}
	flush()
	return blocks
}

// LockedError is the refusal of an operation on a stack another update
// holds: who holds it since when, as the backend says (the file backend
// names each lock's user@host, pid and time), and how to clear a stale
// one. output is the engine's.
func LockedError(op, stack, output string) error {
	var holders []string
	for _, line := range strings.Split(output, "\n") {
		if strings.Contains(line, ": created by ") {
			_, who, _ := strings.Cut(strings.TrimSpace(line), ": created by ")
			holders = append(holders, "held by "+who)
		}
	}
	held := "another update holds it"
	if len(holders) > 0 {
		held = strings.Join(holders, "; ")
	}
	return fmt.Errorf("%s %s: the stack is locked: %s. Wait for that update to end; if its process is gone (killed, a lost CI runner), clear the stale lock with `pulumi cancel --stack %s` and look at what it left with `pulumi stack export --stack %s`", op, stack, held, stack, stack)
}
