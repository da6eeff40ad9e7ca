package deploy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/fastapi-infra/fastapi-infra/stacks"
)

// Release is what an update deployed of the app, as a rollback puts it
// back: app.image and the plain app.env. Never a secret: the history the
// CLI keeps holds none, so a rollback keeps today's secrets (a rotated
// password stays rotated).
type Release struct {
	// Update is the update's number, as ./infra history shows it.
	Update int
	When   string
	Image  string
	Env    map[string]string
}

func (r Release) String() string {
	env := make([]string, 0, len(r.Env))
	for _, k := range slices.Sorted(maps.Keys(r.Env)) {
		env = append(env, k+"="+r.Env[k])
	}
	s := fmt.Sprintf("#%d  %s  app.image=%s", r.Update, r.When, r.Image)
	if len(env) > 0 {
		s += "  app.env: " + strings.Join(env, " ")
	}
	return s
}

func (r Release) same(o Release) bool { return r.Image == o.Image && maps.Equal(r.Env, o.Env) }

// Releases are the stack's releases that an update deployed and that
// succeeded, newest first, from its history (as the backend returns it,
// newest first). The first is the one running.
func Releases(updates []auto.UpdateSummary) []Release {
	var out []Release
	for i, u := range updates {
		if u.Kind != "update" || u.Result != "succeeded" {
			continue
		}
		number := u.Version
		if number == 0 {
			number = len(updates) - i
		}
		r := releaseOf(u.Config)
		r.Update, r.When = number, when(u.StartTime)
		out = append(out, r)
	}
	return out
}

// releaseOf is the release a config deploys: app.image (its default when
// the stack leaves it out) and app.env.
func releaseOf(cfg auto.ConfigMap) Release {
	leaves := configLeaves(cfg)
	r := Release{Image: leaves["app.image"].value, Env: map[string]string{}}
	if k, ok := stacks.LookupKey("app.image"); ok && r.Image == "" {
		r.Image, _ = k.Default.(string)
	}
	for k, v := range leaves {
		if name, ok := strings.CutPrefix(k, "app.env."); ok {
			r.Env[name] = v.value
		}
	}
	return r
}

// RollbackTo picks the release a rollback goes to: the update numbered to
// (0: the newest release that differs from the running one). The error
// lists what it can go back to.
func RollbackTo(releases []Release, to int) (Release, error) {
	if len(releases) == 0 {
		return Release{}, fmt.Errorf("the stack has no successful update to go back to")
	}
	running := releases[0]
	var candidates []string
	for _, r := range releases[1:] {
		if !r.same(running) {
			candidates = append(candidates, "  "+r.String())
		}
	}
	list := "no earlier release differs from the running one"
	if len(candidates) > 0 {
		list = "it can go back to:\n" + strings.Join(candidates, "\n")
	}
	for _, r := range releases[1:] {
		if to == 0 && !r.same(running) || to != 0 && r.Update == to {
			if r.same(running) {
				return Release{}, fmt.Errorf("update #%d deployed the release that runs now (%s); %s", to, running, list)
			}
			return r, nil
		}
	}
	if to == 0 {
		return Release{}, fmt.Errorf("nothing to roll back to: %s", list)
	}
	if to == running.Update {
		return Release{}, fmt.Errorf("update #%d is the release that runs now; %s", to, list)
	}
	return Release{}, fmt.Errorf("update #%d is not a successful update of the stack; %s", to, list)
}

// CurrentRelease is the release a stack's config deploys now.
func CurrentRelease(cfg auto.ConfigMap) Release { return releaseOf(cfg) }

// SetRelease writes a release's app.image and app.env into the stack's
// config (its Pulumi.<stack>.yaml) in place of from's, the release the
// config holds now (CurrentRelease): from's env names that to lacks are
// removed.
func SetRelease(ctx context.Context, s auto.Stack, from, to Release) error {
	path := &auto.ConfigOptions{Path: true}
	for name := range from.Env {
		if _, keep := to.Env[name]; !keep {
			if err := s.RemoveConfigWithOptions(ctx, stacks.FullKey("app.env."+name), path); err != nil {
				return err
			}
		}
	}
	set := map[string]string{"app.image": to.Image}
	for name, v := range to.Env {
		set["app.env."+name] = v
	}
	for _, k := range slices.Sorted(maps.Keys(set)) {
		if err := s.SetConfigWithOptions(ctx, stacks.FullKey(k), auto.ConfigValue{Value: set[k]}, path); err != nil {
			return err
		}
	}
	return nil
}

// ParseUpdate reads --to: an update number, with or without its #.
func ParseUpdate(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(s, "#"))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("--to %q: want an update number as ./infra history shows it, e.g. --to 7", s)
	}
	return n, nil
}
