package stacks

import (
	"slices"
	"strings"
	"testing"
)

// TestArchitectureChoosesComponents runs the shipped stacks on the mock
// engine: each registers its own architecture's component and provider, and
// nothing of the other.
func TestArchitectureChoosesComponents(t *testing.T) {
	cases := []struct {
		stack, component, provider, ownPrefix, otherPrefix string
	}{
		{"dev", "fastapi-infra:index:SingleServer", "pulumi:providers:docker", "docker:", "kubernetes:"},
		{"prod", "fastapi-infra:index:KubernetesService", "pulumi:providers:kubernetes", "kubernetes:", "docker:"},
	}
	for _, tc := range cases {
		t.Run(tc.stack, func(t *testing.T) {
			rec, err := run(t, tc.stack, stackConfig(t, tc.stack))
			if err != nil {
				t.Fatal(err)
			}
			types := rec.Types()
			if !slices.Contains(types, tc.component) || !slices.Contains(types, tc.provider) {
				t.Fatalf("want %s and %s, got %v", tc.component, tc.provider, types)
			}
			own := 0
			for _, r := range rec.All() {
				switch {
				case strings.HasPrefix(r.Type, tc.otherPrefix) || strings.Contains(r.Type, "fastapi-infra:index:") && r.Type != tc.component:
					t.Errorf("%s registered %s %s of the other architecture", tc.stack, r.Type, r.Name)
				case strings.HasPrefix(r.Type, tc.ownPrefix):
					own++
					if !r.ChildOf("fastapi") {
						t.Errorf("%s %s is not a child of the component", r.Type, r.Name)
					}
				}
			}
			if own < 5 {
				t.Errorf("only %d %s resources", own, tc.ownPrefix)
			}
		})
	}
}

// TestTwoStacksShareADockerHost: without docker.namePrefix and
// docker.subnet, two single-server stacks name their containers, networks
// and volumes apart and pick different subnets, so both run on one host
// (ports stay the stacks' own choice).
func TestTwoStacksShareADockerHost(t *testing.T) {
	names := map[string]string{}
	subnets := map[string]string{}
	for _, stack := range []string{"staging", "qa"} {
		c := stackConfig(t, "dev").Without(FullKey("docker.namePrefix")).Without(FullKey("docker.subnet"))
		rec, err := run(t, stack, c)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rec.All() {
			switch r.Type {
			case "docker:index/container:Container", "docker:index/network:Network", "docker:index/volume:Volume":
				name := r.Str(t, "name")
				if other, taken := names[name]; taken {
					t.Errorf("%s and %s both name a Docker object %s", other, stack, name)
				}
				names[name] = stack
				if !strings.HasPrefix(name, "fastapi-"+stack+"-") {
					t.Errorf("%s's %s is named %s, not after the stack", stack, r.Type, name)
				}
				if r.Type == "docker:index/network:Network" && r.Has("ipamConfigs[0].subnet") {
					subnets[stack] = r.Str(t, "ipamConfigs[0].subnet")
				}
			}
		}
	}
	if subnets["staging"] == "" || subnets["staging"] == subnets["qa"] {
		t.Errorf("subnets %v: two stacks on one host need two", subnets)
	}
}
