package deploy

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/fastapi-infra/fastapi-infra/stacks"
)

// Who names whoever runs an update, for the audit log (`./infra history`):
// the GitHub actor and run in GitHub Actions, else user@host. The driver
// passes it as the update's message, which the backend keeps with it.
func Who() string {
	if os.Getenv("GITHUB_ACTIONS") == "true" {
		return fmt.Sprintf("github:%s (run %s of %s)", os.Getenv("GITHUB_ACTOR"), os.Getenv("GITHUB_RUN_ID"), os.Getenv("GITHUB_REPOSITORY"))
	}
	name := os.Getenv("USER")
	if u, err := user.Current(); name == "" && err == nil {
		name = u.Username
	}
	if name == "" {
		name = "unknown"
	}
	host, _ := os.Hostname()
	return name + "@" + host
}

// HistoryLines are the stack's updates (newest first, as the backend
// returns them), one line each: number, start (UTC), kind, result,
// duration, who, the release (app.image), the config keys changed since
// the update before, and the resource changes. The CLI's history shows no
// secret, not even encrypted, so a changed secret is not among the keys
// (a rotation shows in the resource changes).
func HistoryLines(updates []auto.UpdateSummary) []string {
	lines := make([]string, 0, len(updates))
	for i, u := range updates {
		var before auto.ConfigMap
		if i+1 < len(updates) {
			before = updates[i+1].Config
		}
		// The file backend's history has no version numbers: the
		// position says it (the backend returns every update).
		number := u.Version
		if number == 0 {
			number = len(updates) - i
		}
		fields := []string{fmt.Sprintf("#%d", number), when(u.StartTime), u.Kind, cmpOr(u.Result, "in progress"), duration(u.StartTime, u.EndTime), who(u)}
		if image := configLeaves(u.Config)["app.image"]; image.value != "" {
			fields = append(fields, "app.image="+image.value)
		}
		if before != nil {
			if changed := changedKeys(before, u.Config); len(changed) > 0 {
				fields = append(fields, "changed: "+strings.Join(changed, ", "))
			}
		}
		if u.ResourceChanges != nil {
			fields = append(fields, resourceChanges(*u.ResourceChanges))
		}
		lines = append(lines, strings.Join(fields, "  "))
	}
	return lines
}

func cmpOr(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

func when(start string) string {
	t, err := time.Parse(time.RFC3339, start)
	if err != nil {
		return start
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func duration(start string, end *string) string {
	if end == nil {
		return "-"
	}
	t0, err1 := time.Parse(time.RFC3339, start)
	t1, err2 := time.Parse(time.RFC3339, *end)
	if err1 != nil || err2 != nil {
		return "-"
	}
	return t1.Sub(t0).String()
}

// who is the update's message when the driver set it (Who), else what the
// CLI recorded of the git author, else "-".
func who(u auto.UpdateSummary) string {
	if u.Message != "" {
		// The Automation API passes the message as --message=%q, and the
		// quotes stay in it.
		if m, err := strconv.Unquote(u.Message); err == nil {
			return m
		}
		return u.Message
	}
	if a := u.Environment["git.author"]; a != "" {
		return a
	}
	return "-"
}

func resourceChanges(changes map[string]int) string {
	var parts []string
	for _, op := range slices.Sorted(maps.Keys(changes)) {
		if op != "same" && changes[op] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", op, changes[op]))
		}
	}
	if len(parts) == 0 {
		return "no changes"
	}
	return strings.Join(parts, ", ")
}

// leaf is one config value at a dotted path (app.env.LOG_LEVEL), and
// whether it is secret.
type leaf struct {
	value  string
	secret bool
}

// configLeaves flattens the project's keys of a config map into dotted
// paths: an object key (app, db) into its fields, as stacks.FullKey names
// them; a secret stays whole, its value the ciphertext (compared, never
// shown).
func configLeaves(cfg auto.ConfigMap) map[string]leaf {
	out := map[string]leaf{}
	prefix := stacks.FullKey("")
	for k, v := range cfg {
		key, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		var obj map[string]any
		if !v.Secret && strings.HasPrefix(strings.TrimSpace(v.Value), "{") && json.Unmarshal([]byte(v.Value), &obj) == nil {
			flatten(key, obj, out)
			continue
		}
		out[key] = leaf{value: v.Value, secret: v.Secret}
	}
	return out
}

func flatten(path string, v any, out map[string]leaf) {
	if m, ok := v.(map[string]any); ok {
		for k, sub := range m {
			flatten(path+"."+k, sub, out)
		}
		return
	}
	raw, _ := json.Marshal(v)
	s, ok := v.(string)
	if !ok {
		s = string(raw)
	}
	out[path] = leaf{value: s}
}

// changedKeys are the dotted keys whose value differs between two
// updates' config, sorted; a secret shows as "name (secret)".
func changedKeys(before, after auto.ConfigMap) []string {
	b, a := configLeaves(before), configLeaves(after)
	var changed []string
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if old, ok := b[k]; !ok || old != a[k] {
			changed = append(changed, label(k, a[k].secret))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(b)) {
		if _, ok := a[k]; !ok {
			changed = append(changed, label(k, b[k].secret)+" removed")
		}
	}
	return changed
}

func label(key string, secret bool) string {
	if secret {
		return key + " (secret)"
	}
	return key
}
