package deploy

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
)

// sdkWrapping is how the Go SDK wraps an error the program's own code
// returned from an apply: the words before it say nothing to the user.
var sdkWrapping = regexp.MustCompile(`^(an unhandled error occurred: )?(program failed:\s*)?(waiting for RPCs: )?(marshaling properties: )?(awaiting input property "[^"]*": )?`)

// Summarize turns a failed operation's error diagnostics, as the
// Automation API's event stream carries them (Diagnostics), into the
// message a person needs: each resource's error without the SDK's
// wrapping ("an unhandled error occurred: waiting for RPCs: marshaling
// properties: awaiting input property ...") and without the stack's
// generic "update failed". The progress itself was streamed already;
// printing the whole output again only buries this. When the engine sent
// no diagnostics (it failed before it started), the CLI's own "error:"
// lines are the message.
func Summarize(diags []apitype.DiagnosticEvent, stderr string) string {
	var msgs []string
	for _, d := range diags {
		if d.Severity != "error" {
			continue
		}
		text := strings.TrimSpace(sdkWrapping.ReplaceAllString(colorMarkup.ReplaceAllString(d.Message, ""), ""))
		if text == "" || text == "update failed" || text == "preview failed" || text == "destroy failed" || text == "refresh failed" {
			continue
		}
		if resource := resourceLabel(d.URN); resource != "" {
			text = resource + ": " + text
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

// colorMarkup is the engine's color directives (<{%reset%}>), which a
// diagnostic's text may carry.
var colorMarkup = regexp.MustCompile(`<\{%[^%]*%\}>`)

// resourceLabel names a resource as the CLI's Diagnostics section does,
// "TYPE (NAME)" from its URN (urn:pulumi:STACK::PROJECT::PARENT$TYPE::NAME);
// "" for the stack itself, whose errors need no name.
func resourceLabel(urn string) string {
	parts := strings.Split(urn, "::")
	if len(parts) < 4 {
		return ""
	}
	types := strings.Split(parts[2], "$")
	typ := types[len(types)-1]
	if typ == "pulumi:pulumi:Stack" {
		return ""
	}
	return typ + " (" + strings.Join(parts[3:], "::") + ")"
}

// Diagnostics gathers the diagnostics of one engine run from its event
// stream (Events, passed as the operation's EventStreams option).
type Diagnostics struct {
	events chan events.EngineEvent
	done   chan struct{}
	mu     sync.Mutex
	got    []apitype.DiagnosticEvent
}

// CollectDiagnostics starts gathering.
func CollectDiagnostics() *Diagnostics {
	d := &Diagnostics{events: make(chan events.EngineEvent), done: make(chan struct{})}
	go func() {
		defer close(d.done)
		for e := range d.events {
			if e.DiagnosticEvent != nil {
				d.mu.Lock()
				d.got = append(d.got, *e.DiagnosticEvent)
				d.mu.Unlock()
			}
		}
	}()
	return d
}

// Events is the channel for the operation's EventStreams option.
func (d *Diagnostics) Events() chan<- events.EngineEvent { return d.events }

// All are the diagnostics received once the operation returned. The SDK
// closes the stream when the engine's ends; a CLI that failed before its
// engine started never opens it, so the wait is short.
func (d *Diagnostics) All() []apitype.DiagnosticEvent {
	select {
	case <-d.done:
	case <-time.After(2 * time.Second):
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.got)
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
