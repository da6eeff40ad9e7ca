package mocktest

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"gopkg.in/yaml.v3"
)

// Resource is one registration as the engine saw it.
type Resource struct {
	Type, Name, ID string
	Inputs         resource.PropertyMap
	Provider       string
	// Parent is the URN of the parent component.
	Parent string
	// Dependencies are the URNs of DependsOn resources and input dependencies.
	Dependencies []string
	// Options as registered.
	RetainOnDelete, Protect, DeleteBeforeReplace bool
	IgnoreChanges                                []string
}

// Recorder is a pulumi.MockResourceMonitor that keeps every registration.
// Registration runs in goroutines, hence the mutex.
type Recorder struct {
	mu        sync.Mutex
	resources []Resource
	// Outputs, when set, adds provider-computed outputs for a type, e.g. a
	// container's exitCode.
	Outputs func(r Resource) resource.PropertyMap
	// StackOutputs are the stack's last outputs, as the engine's
	// readStackOutputs invoke reads them (none: a new stack).
	StackOutputs resource.PropertyMap
}

func (m *Recorder) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	id := args.Name + "-id"
	if args.TypeToken == "pulumi:providers:kubernetes" || args.TypeToken == "pulumi:providers:docker" {
		id = args.Name + "-provider-id"
	}
	r := Resource{Type: args.TypeToken, Name: args.Name, ID: id, Inputs: args.Inputs, Provider: args.Provider}
	if args.RegisterRPC != nil {
		r.Parent = args.RegisterRPC.GetParent()
		r.RetainOnDelete = args.RegisterRPC.GetRetainOnDelete()
		r.Protect = args.RegisterRPC.GetProtect()
		r.DeleteBeforeReplace = args.RegisterRPC.GetDeleteBeforeReplace()
		r.IgnoreChanges = args.RegisterRPC.GetIgnoreChanges()
		r.Dependencies = args.RegisterRPC.GetDependencies()
		for _, deps := range args.RegisterRPC.GetPropertyDependencies() {
			r.Dependencies = append(r.Dependencies, deps.GetUrns()...)
		}
	}
	outputs := args.Inputs.Copy()
	autoName(args.TypeToken, args.Name, outputs)
	if m.Outputs != nil {
		for k, v := range m.Outputs(r) {
			outputs[k] = v
		}
	}
	m.mu.Lock()
	m.resources = append(m.resources, r)
	m.mu.Unlock()
	return id, outputs, nil
}

// AutoNameSuffix is what the mock provider appends to a Kubernetes object's
// logical name when the program leaves metadata.name to Pulumi's
// auto-naming, as the real provider appends a random suffix.
const AutoNameSuffix = "-auto"

func autoName(typ, name string, outputs resource.PropertyMap) {
	if !strings.HasPrefix(typ, "kubernetes:") {
		return
	}
	meta, ok := outputs["metadata"]
	if !ok || !meta.IsObject() {
		return
	}
	if _, named := meta.ObjectValue()["name"]; !named {
		m := meta.ObjectValue().Copy()
		m["name"] = resource.NewStringProperty(name + AutoNameSuffix)
		outputs["metadata"] = resource.NewObjectProperty(m)
	}
}

func (m *Recorder) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	out := args.Args.Copy()
	if args.Token == "pulumi:pulumi:readStackOutputs" {
		outputs := m.StackOutputs
		if outputs == nil {
			outputs = resource.PropertyMap{}
		}
		out["outputs"] = resource.NewObjectProperty(outputs)
	}
	if args.Token == RegistryImageLookup {
		// A registry's answer: the tag's current digest.
		out["sha256Digest"] = resource.NewStringProperty("sha256:registry-digest-of-" + args.Args["name"].StringValue())
	}
	return out, nil
}

// RegistryImageLookup is the docker provider's registry lookup.
const RegistryImageLookup = "docker:index/getRegistryImage:getRegistryImage"

// DependsOn reports whether r waits for the resource with the logical name,
// by DependsOn or through an input.
func (r Resource) DependsOn(name string) bool {
	return slices.ContainsFunc(r.Dependencies, func(urn string) bool { return strings.HasSuffix(urn, "::"+name) })
}

// ChildOf reports whether r's parent is the resource with the logical name.
func (r Resource) ChildOf(name string) bool { return strings.HasSuffix(r.Parent, "::"+name) }

// All returns every registration in a stable order.
func (m *Recorder) All() []Resource {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.Clone(m.resources)
	slices.SortFunc(out, func(a, b Resource) int { return strings.Compare(a.Type+a.Name, b.Type+b.Name) })
	return out
}

// ByType returns the registrations of one type token.
func (m *Recorder) ByType(typ string) []Resource {
	var out []Resource
	for _, r := range m.All() {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

// One returns the single registration of a type, failing the test otherwise.
func (m *Recorder) One(t testing.TB, typ string) Resource {
	t.Helper()
	rs := m.ByType(typ)
	if len(rs) != 1 {
		t.Fatalf("want exactly one %s, got %d", typ, len(rs))
	}
	return rs[0]
}

// Named returns the registration with a logical name.
func (m *Recorder) Named(t testing.TB, name string) Resource {
	t.Helper()
	for _, r := range m.All() {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no resource named %q", name)
	return Resource{}
}

// Types lists the distinct type tokens registered.
func (m *Recorder) Types() []string {
	var types []string
	for _, r := range m.All() {
		if !slices.Contains(types, r.Type) {
			types = append(types, r.Type)
		}
	}
	return types
}

// Config is a stack's config as the engine passes it to a program: full
// keys to string values (JSON for objects and arrays), and the secret keys.
type Config struct {
	Values  map[string]string
	Secrets []string
}

// LoadStackFile reads a Pulumi.<stack>.yaml the way the engine hands it to
// the program. Encrypted values cannot be read without the stack's
// passphrase and are left out (a local `./infra up dev` stores one): tests
// supply secrets with Secret.
func LoadStackFile(t testing.TB, path string) Config {
	t.Helper()
	c, err := ReadStackFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ReadStackFile is LoadStackFile outside a test.
func ReadStackFile(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	var file struct {
		Config map[string]any `yaml:"config"`
	}
	if err := yaml.Unmarshal(raw, &file); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	c := Config{Values: map[string]string{}}
	for k, v := range file.Config {
		switch x := v.(type) {
		case string:
			c.Values[k] = x
		case map[string]any:
			if _, secure := x["secure"]; secure {
				continue
			}
			b, _ := json.Marshal(x)
			c.Values[k] = string(b)
		case []any:
			b, _ := json.Marshal(x)
			c.Values[k] = string(b)
		default:
			c.Values[k] = fmt.Sprint(x)
		}
	}
	return c, nil
}

// Set returns a copy with a plain value. A dotted key is a path into its
// top-level object, as `pulumi config set --path` writes it; a value that
// is a JSON list or object is stored as that structure.
func (c Config) Set(key, value string) Config {
	out := c.clone()
	var v any = value
	if strings.HasPrefix(value, "[") || strings.HasPrefix(value, "{") {
		if err := json.Unmarshal([]byte(value), &v); err != nil {
			v = value
		}
	}
	out.setPath(key, v, false)
	out.Secrets = slices.DeleteFunc(out.Secrets, func(s string) bool { return s == topKey(key) })
	return out
}

// SetFlat sets a key literally, dots and all, as `pulumi config set`
// without --path does.
func (c Config) SetFlat(key, value string) Config {
	out := c.clone()
	out.Values[key] = value
	return out
}

// Secret returns a copy with a value stored as `pulumi config set --secret`
// would: the whole top-level key becomes secret.
func (c Config) Secret(key, value string) Config {
	out := c.Set(key, value)
	out.Secrets = append(out.Secrets, topKey(key))
	return out
}

// Without returns a copy without a key (or a path).
func (c Config) Without(key string) Config {
	out := c.clone()
	out.setPath(key, nil, true)
	return out
}

func (c Config) clone() Config {
	out := Config{Values: map[string]string{}, Secrets: slices.Clone(c.Secrets)}
	for k, v := range c.Values {
		out.Values[k] = v
	}
	return out
}

// topKey is namespace:first-segment of a key.
func topKey(key string) string {
	ns, name, _ := strings.Cut(key, ":")
	first, _, _ := strings.Cut(name, ".")
	return ns + ":" + first
}

func (c Config) setPath(key string, v any, remove bool) {
	ns, name, _ := strings.Cut(key, ":")
	steps := strings.Split(name, ".")
	top := ns + ":" + steps[0]
	if len(steps) == 1 {
		if remove {
			delete(c.Values, top)
		} else if s, ok := v.(string); ok {
			c.Values[top] = s
		} else {
			b, _ := json.Marshal(v)
			c.Values[top] = string(b)
		}
		return
	}
	root := map[string]any{}
	_ = json.Unmarshal([]byte(c.Values[top]), &root)
	obj := root
	for _, step := range steps[1 : len(steps)-1] {
		next, ok := obj[step].(map[string]any)
		if !ok {
			next = map[string]any{}
			obj[step] = next
		}
		obj = next
	}
	if remove {
		delete(obj, steps[len(steps)-1])
	} else {
		obj[steps[len(steps)-1]] = v
	}
	b, _ := json.Marshal(root)
	c.Values[top] = string(b)
}

// Run runs program with the mocks and the config, as the engine would for
// project "fastapi-infra" and the given stack. It sets the environment the
// SDK reads, so tests that use it must not run in parallel.
func Run(t testing.TB, stack string, c Config, program pulumi.RunFunc, rec *Recorder) error {
	t.Helper()
	values, _ := json.Marshal(c.Values)
	secrets, _ := json.Marshal(c.Secrets)
	t.Setenv(pulumi.EnvConfig, string(values))
	t.Setenv(pulumi.EnvConfigSecretKeys, string(secrets))
	return pulumi.RunErr(program, pulumi.WithMocks("fastapi-infra", stack, rec))
}

// Record is Run outside a test (the benchmark records what the dev stack
// registers this way); it sets the process's environment.
func Record(stack string, c Config, program pulumi.RunFunc, rec *Recorder) error {
	values, _ := json.Marshal(c.Values)
	secrets, _ := json.Marshal(c.Secrets)
	os.Setenv(pulumi.EnvConfig, string(values))
	os.Setenv(pulumi.EnvConfigSecretKeys, string(secrets))
	return pulumi.RunErr(program, pulumi.WithMocks("fastapi-infra", stack, rec))
}

// DockerOutputs are the docker provider's computed outputs a program needs
// to go on under the mocks as on a real engine: an image's id (its name)
// and a one-shot container's exit code 0 with no logs.
func DockerOutputs(r Resource) resource.PropertyMap {
	switch r.Type {
	case "docker:index/remoteImage:RemoteImage":
		return resource.PropertyMap{"imageId": r.Inputs["name"]}
	case "docker:index/container:Container":
		return resource.PropertyMap{"exitCode": resource.NewNumberProperty(0), "containerLogs": resource.NewStringProperty("")}
	}
	return nil
}
