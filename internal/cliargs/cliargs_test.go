package cliargs

import (
	"flag"
	"fmt"
	"testing"
)

// TestFlagsGoAnywhere: the README's `./infra restore dev --from NAME` (and
// `./infra --yes up dev`) parse alike; the flag package alone stopped at
// "restore" and the driver printed its usage with exit code 2.
func TestFlagsGoAnywhere(t *testing.T) {
	for _, args := range [][]string{
		{"restore", "dev", "--from", "app-1.dump", "--yes"},
		{"--yes", "restore", "--from", "app-1.dump", "dev"},
		{"--from=app-1.dump", "--yes", "restore", "dev"},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		from := fs.String("from", "", "")
		yes := fs.Bool("yes", false, "")
		pos, err := Interspersed(fs, args)
		if err != nil || fmt.Sprint(pos) != "[restore dev]" || *from != "app-1.dump" || !*yes {
			t.Errorf("%v: positional %v, from %q, yes %v, err %v", args, pos, *from, *yes, err)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(new(discard))
	if _, err := Interspersed(fs, []string{"up", "dev", "--frm", "x"}); err == nil {
		t.Error("an unknown flag after the stack was accepted")
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
