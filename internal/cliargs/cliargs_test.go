package cliargs

import (
	"io"
	"slices"
	"testing"

	"github.com/spf13/cobra"
)

// driverLike is a root with the driver's shape: global flags, verbs with
// flags of their own, bool and valued.
func driverLike() (*cobra.Command, *bool) {
	root := &cobra.Command{Use: "fastapi-infra", SilenceUsage: true, SilenceErrors: true}
	root.PersistentFlags().String("dir", ".", "")
	root.PersistentFlags().Bool("yes", false, "")
	expect := new(bool)
	preview := &cobra.Command{Use: "preview", RunE: func(*cobra.Command, []string) error { return nil }}
	preview.Flags().BoolVar(expect, "expect-no-changes", false, "")
	logs := &cobra.Command{Use: "logs", RunE: func(*cobra.Command, []string) error { return nil }}
	logs.Flags().String("service", "", "")
	logs.Flags().String("grep", "", "")
	logs.Flags().Duration("since", 0, "")
	logs.Flags().BoolP("follow", "f", false, "")
	root.AddCommand(preview, logs, &cobra.Command{Use: "up", RunE: func(*cobra.Command, []string) error { return nil }},
		&cobra.Command{Use: "exec", RunE: func(*cobra.Command, []string) error { return nil }})
	return root, expect
}

// TestFlagsBeforeTheVerb: flags go before or after the verb, a verb's own
// too (the fresh-machine test's `./infra --expect-no-changes preview dev`
// was "unknown command dev" once cobra read the flags before the verb as
// the root's).
func TestFlagsBeforeTheVerb(t *testing.T) {
	root, expect := driverLike()
	for _, c := range []struct{ in, want []string }{
		{[]string{"--expect-no-changes", "preview", "dev"}, []string{"preview", "--expect-no-changes", "dev"}},
		{[]string{"--service", "db", "--grep", "ready", "logs", "dev"}, []string{"logs", "--service", "db", "--grep", "ready", "dev"}},
		{[]string{"--yes", "up", "dev"}, []string{"up", "--yes", "dev"}},
		{[]string{"--dir=/p", "--since", "10m", "logs", "dev", "-f"}, []string{"logs", "--dir=/p", "--since", "10m", "dev", "-f"}},
		{[]string{"up", "dev", "--yes"}, []string{"up", "dev", "--yes"}},
		{[]string{"exec", "dev", "--", "python3", "-c", "1"}, []string{"exec", "dev", "--", "python3", "-c", "1"}},
		{[]string{"--", "up"}, []string{"--", "up"}},
	} {
		if got := VerbFirst(root, c.in); !slices.Equal(got, c.want) {
			t.Errorf("VerbFirst(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	// Cobra then runs the verb with its own flag set.
	root.SetOut(io.Discard)
	root.SetArgs(VerbFirst(root, []string{"--expect-no-changes", "preview", "dev"}))
	if err := root.Execute(); err != nil || !*expect {
		t.Errorf("--expect-no-changes preview dev: %v, flag set %v", err, *expect)
	}
}
