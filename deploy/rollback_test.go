package deploy

import (
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
)

// update is a history entry deploying image with env (JSON), newest last
// in the slice the test builds, as the backend numbers them.
func update(version int, result, image, env string) auto.UpdateSummary {
	return auto.UpdateSummary{Version: version, Kind: "update", Result: result, StartTime: "2026-12-07T05:00:00.000Z",
		Config: auto.ConfigMap{"fastapi-infra:app": {Value: `{"image":"` + image + `","env":` + env + `}`}, "fastapi-infra:dbPassword": {Secret: true}}}
}

func TestRollbackPicksTheReleaseBeforeTheRunningOne(t *testing.T) {
	history := []auto.UpdateSummary{ // newest first
		update(5, "succeeded", "api:1.2", `{"LOG_LEVEL":"info"}`),
		update(4, "failed", "api:1.3", `{"LOG_LEVEL":"info"}`),
		{Version: 3, Kind: "refresh", Result: "succeeded"},
		update(2, "succeeded", "api:1.2", `{"LOG_LEVEL":"info"}`), // the same release again
		update(1, "succeeded", "api:1.1", `{"LOG_LEVEL":"debug"}`),
	}
	releases := Releases(history)
	if len(releases) != 3 || releases[0].Update != 5 {
		t.Fatalf("releases %v", releases)
	}
	r, err := RollbackTo(releases, 0)
	if err != nil || r.Update != 1 || r.Image != "api:1.1" || r.Env["LOG_LEVEL"] != "debug" {
		t.Errorf("the default rollback: %v, %v; want #1 (api:1.1, LOG_LEVEL=debug)", r, err)
	}
	if r, err := RollbackTo(releases, 1); err != nil || r.Update != 1 {
		t.Errorf("--to 1: %v, %v", r, err)
	}
	for to, want := range map[int]string{
		4:  "update #4 is not a successful update",
		5:  "update #5 is the release that runs now",
		2:  "update #2 deployed the release that runs now",
		99: "update #99 is not a successful update",
	} {
		_, err := RollbackTo(releases, to)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "#1  2026-12-07 05:00:00Z  app.image=api:1.1  app.env: LOG_LEVEL=debug") {
			t.Errorf("--to %d: %v; want %q and the list of what it can go back to", to, err, want)
		}
	}
	if _, err := RollbackTo(releases[:1], 0); err == nil || !strings.Contains(err.Error(), "nothing to roll back to") {
		t.Errorf("one release only: %v", err)
	}
	if _, err := RollbackTo(nil, 0); err == nil {
		t.Error("a stack without updates rolled back")
	}
}

func TestRollbackDefaultsTheImage(t *testing.T) {
	r := Releases([]auto.UpdateSummary{{Version: 1, Kind: "update", Result: "succeeded", Config: auto.ConfigMap{}}})
	if len(r) != 1 || r[0].Image != "fastapi-infra-app:dev" {
		t.Errorf("a stack that leaves app.image out deploys its default: %v", r)
	}
}

func TestParseUpdate(t *testing.T) {
	for in, want := range map[string]int{"7": 7, "#7": 7} {
		if n, err := ParseUpdate(in); err != nil || n != want {
			t.Errorf("ParseUpdate(%q) = %d, %v", in, n, err)
		}
	}
	for _, bad := range []string{"", "0", "-1", "seven", "v1.2"} {
		if _, err := ParseUpdate(bad); err == nil {
			t.Errorf("ParseUpdate(%q) accepted", bad)
		}
	}
}
