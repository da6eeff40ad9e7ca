package dockerapi

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// WhyUnwell says why containers are not well, for the message of an
// update that failed on them: each container whose Docker name starts
// with prefix and that has a healthcheck which does not pass, or that is
// restarting, with its last probes' output (Docker keeps five) and its
// last log lines. "" when every such container is well. The provider's
// own error says only that a container "failed to be in healthy state".
func (e *Client) WhyUnwell(ctx context.Context, prefix string, logLines int) (string, error) {
	all, err := e.List(ctx, "")
	if err != nil {
		return "", err
	}
	var out []string
	for _, name := range slices.Sorted(maps.Keys(all)) {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		c, err := e.Inspect(ctx, all[name])
		if err != nil {
			continue // gone meanwhile
		}
		h := c.State.Health
		unhealthy := h != nil && c.State.Running && h.Status != "healthy"
		if !unhealthy && !c.State.Restarting {
			continue
		}
		var b strings.Builder
		switch {
		case c.State.Restarting:
			fmt.Fprintf(&b, "%s is restarting (exit code %d, %d restarts)", name, c.State.ExitCode, c.RestartCount)
		case h.Status == "starting":
			// Failures in the start period do not count toward unhealthy.
			fmt.Fprintf(&b, "%s has not turned healthy (still in its start period)", name)
		default:
			fmt.Fprintf(&b, "%s is %s (%d probes failed in a row)", name, h.Status, h.FailingStreak)
		}
		if h != nil && len(h.Log) > 0 {
			b.WriteString("; its last probes:")
			for _, p := range h.Log {
				fmt.Fprintf(&b, "\n  %s exit %d: %s", p.Start.UTC().Format("15:04:05"), p.ExitCode, oneLine(p.Output, 300))
			}
		}
		if logs, err := e.Logs(ctx, all[name]); err == nil && strings.TrimSpace(logs) != "" {
			lines := strings.Split(strings.TrimRight(logs, "\n"), "\n")
			if len(lines) > logLines {
				lines = lines[len(lines)-logLines:]
			}
			b.WriteString("\n  its last log lines:\n    " + strings.Join(lines, "\n    "))
		}
		out = append(out, b.String())
	}
	return strings.Join(out, "\n"), nil
}

// oneLine joins a probe's output into one line of at most max bytes.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "(no output)"
	}
	if len(s) > max {
		s = s[:max] + "..."
	}
	return s
}
