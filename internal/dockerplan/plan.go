// Package dockerplan turns what a Pulumi program registers with the
// pulumi-docker provider, as recorded by the mock engine, into the Docker
// Engine API calls that provider would make: networks, volumes, and each
// container's create, file uploads, network connections and start, in
// dependency order. The docker provider plugin cannot be had where this
// project is built, so the real-Docker tests and the single-server
// benchmark run the SingleServer component's own registrations through
// this, not a hand-typed copy of them; an input this package does not
// translate is an error, so the component cannot drift unseen.
package dockerplan

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"github.com/fastapi-infra/fastapi-infra/internal/mocktest"
)

// The provider's type tokens.
const (
	ContainerType   = "docker:index/container:Container"
	NetworkType     = "docker:index/network:Network"
	VolumeType      = "docker:index/volume:Volume"
	RemoteImageType = "docker:index/remoteImage:RemoteImage"
)

// Plan is the engine's view of a program's docker resources.
type Plan struct {
	Networks []Network
	Volumes  []string
	// Scratch are the volumes not retained on delete: they go with the
	// deployment, where the others (data) stay unless asked.
	Scratch    []string
	Containers []Container // in dependency order
}

// Network is a docker network to create.
type Network struct {
	Name, Driver    string
	Internal        bool
	Subnet, IPRange string
}

// Container is one container: the Engine API's create body, what the
// provider does around it, and where it stands in the order.
type Container struct {
	// Logical is the resource's logical name (a release's replicas carry
	// the release in it).
	Logical string
	Name    string
	Create  CreateBody
	// Connect are the networks after the first, joined before the start
	// (API 1.41 takes one network at create).
	Connect []Endpoint
	Uploads []Upload
	// OneShot containers (mustRun false, attach) run to the end; the
	// provider records their exit code and logs.
	OneShot bool
	// NoStart containers are created (and receive their uploads) but never
	// started (start false).
	NoStart bool
	// Wait: the provider waits until Docker reports the container healthy.
	Wait        bool
	WaitTimeout time.Duration
	// DestroyGrace is how long the provider lets it stop on delete before
	// it removes it (destroyGraceSeconds).
	DestroyGrace int
	// After are the logical names of the resources it waits for.
	After []string
}

// Upload is a file the provider puts into a created container before it
// starts.
type Upload struct {
	Path    string
	Content []byte
	Mode    int64
}

// CreateBody is POST /containers/create's body, the fields used.
type CreateBody struct {
	Image        string              `json:"Image"`
	Cmd          []string            `json:"Cmd,omitempty"`
	Entrypoint   []string            `json:"Entrypoint,omitempty"`
	Env          []string            `json:"Env,omitempty"`
	User         string              `json:"User,omitempty"`
	Labels       map[string]string   `json:"Labels,omitempty"`
	Healthcheck  *Healthcheck        `json:"Healthcheck,omitempty"`
	StopSignal   string              `json:"StopSignal,omitempty"`
	StopTimeout  *int                `json:"StopTimeout,omitempty"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	HostConfig   HostConfig          `json:"HostConfig"`
	Networking   *NetworkingConfig   `json:"NetworkingConfig,omitempty"`
}

// Healthcheck is the container's probe; durations in nanoseconds.
type Healthcheck struct {
	Test        []string `json:"Test"`
	Interval    int64    `json:"Interval,omitempty"`
	Timeout     int64    `json:"Timeout,omitempty"`
	Retries     int      `json:"Retries,omitempty"`
	StartPeriod int64    `json:"StartPeriod,omitempty"`
	// StartInterval is API 1.44 (Docker 25); older engines ignore it.
	StartInterval int64 `json:"StartInterval,omitempty"`
}

// HostConfig is the create body's HostConfig, the fields used.
type HostConfig struct {
	Binds          []string                 `json:"Binds,omitempty"`
	PortBindings   map[string][]PortBinding `json:"PortBindings,omitempty"`
	RestartPolicy  RestartPolicy            `json:"RestartPolicy"`
	Memory         int64                    `json:"Memory,omitempty"`
	MemorySwap     int64                    `json:"MemorySwap,omitempty"`
	NanoCPUs       int64                    `json:"NanoCpus,omitempty"`
	LogConfig      LogConfig                `json:"LogConfig"`
	SecurityOpt    []string                 `json:"SecurityOpt,omitempty"`
	CapAdd         []string                 `json:"CapAdd,omitempty"`
	CapDrop        []string                 `json:"CapDrop,omitempty"`
	Tmpfs          map[string]string        `json:"Tmpfs,omitempty"`
	ReadonlyRootfs bool                     `json:"ReadonlyRootfs,omitempty"`
	Init           *bool                    `json:"Init,omitempty"`
	Ulimits        []Ulimit                 `json:"Ulimits,omitempty"`
	ShmSize        int64                    `json:"ShmSize,omitempty"`
	NetworkMode    string                   `json:"NetworkMode,omitempty"`
	DNSOptions     []string                 `json:"DnsOptions,omitempty"`
}

type PortBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

type RestartPolicy struct {
	Name              string `json:"Name"`
	MaximumRetryCount int    `json:"MaximumRetryCount,omitempty"`
}

type LogConfig struct {
	Type   string            `json:"Type"`
	Config map[string]string `json:"Config,omitempty"`
}

type Ulimit struct {
	Name string `json:"Name"`
	Soft int64  `json:"Soft"`
	Hard int64  `json:"Hard"`
}

// NetworkingConfig holds the first network's endpoint.
type NetworkingConfig struct {
	EndpointsConfig map[string]EndpointSettings `json:"EndpointsConfig"`
}

// Endpoint is a network a container joins, with its aliases and address.
type Endpoint struct {
	Network string
	EndpointSettings
}

type EndpointSettings struct {
	Aliases    []string    `json:"Aliases,omitempty"`
	IPAMConfig *IPAMConfig `json:"IPAMConfig,omitempty"`
}

type IPAMConfig struct {
	IPv4Address string `json:"IPv4Address,omitempty"`
}

// Outputs are the provider-computed outputs a recording needs for the
// program to go on as it would on a real engine: an image's id (its name,
// as the image exists locally) and a one-shot container's exit code 0 (the
// plan then checks the real one).
func Outputs(r mocktest.Resource) resource.PropertyMap {
	switch r.Type {
	case RemoteImageType:
		return resource.PropertyMap{"imageId": r.Inputs["name"]}
	case ContainerType:
		return resource.PropertyMap{"exitCode": resource.NewNumberProperty(0), "containerLogs": resource.NewStringProperty("")}
	}
	return nil
}

// FromRecording reads the docker resources of a recording.
func FromRecording(resources []mocktest.Resource) (Plan, error) {
	var p Plan
	var containers []Container
	for _, r := range resources {
		in := plainMap(r.Inputs)
		var err error
		switch r.Type {
		case NetworkType:
			var n Network
			n, err = network(in)
			p.Networks = append(p.Networks, n)
		case VolumeType:
			err = only(in, "name")
			p.Volumes = append(p.Volumes, str(in["name"]))
			if !r.RetainOnDelete {
				p.Scratch = append(p.Scratch, str(in["name"]))
			}
		case ContainerType:
			var c Container
			c, err = container(r, in)
			containers = append(containers, c)
		case RemoteImageType:
			err = only(in, "name", "keepLocally", "pullTriggers")
		default:
			if strings.HasPrefix(r.Type, "docker:") {
				err = fmt.Errorf("the resource type is not translated")
			}
		}
		if err != nil {
			return p, fmt.Errorf("dockerplan: %s %s: %w", r.Type, r.Name, err)
		}
	}
	p.Containers, _ = order(containers)
	return p, nil
}

// order sorts containers so that each comes after those it waits for.
func order(cs []Container) ([]Container, error) {
	byName := map[string]Container{}
	for _, c := range cs {
		byName[c.Logical] = c
	}
	var out []Container
	done := map[string]bool{}
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		if done[name] {
			return nil
		}
		if slices.Contains(path, name) {
			return fmt.Errorf("dependency cycle through %s", name)
		}
		c := byName[name]
		for _, dep := range c.After {
			if _, ok := byName[dep]; ok {
				if err := visit(dep, append(path, name)); err != nil {
					return err
				}
			}
		}
		done[name] = true
		out = append(out, c)
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		if err := visit(name, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func network(in map[string]any) (Network, error) {
	if err := only(in, "name", "driver", "internal", "ipamConfigs"); err != nil {
		return Network{}, err
	}
	n := Network{Name: str(in["name"]), Driver: str(in["driver"]), Internal: in["internal"] == true}
	if ipam, _ := in["ipamConfigs"].([]any); len(ipam) > 0 {
		c, _ := ipam[0].(map[string]any)
		if err := only(c, "subnet", "ipRange"); err != nil {
			return n, err
		}
		n.Subnet, n.IPRange = str(c["subnet"]), str(c["ipRange"])
	}
	return n, nil
}

// containerInputs are the inputs container() translates; any other is an
// error.
var containerInputs = []string{"name", "image", "command", "entrypoints", "envs", "user", "labels", "healthcheck",
	"stopSignal", "stopTimeout", "destroyGraceSeconds", "uploads", "networksAdvanced", "ports", "volumes", "tmpfs",
	"restart", "memory", "memorySwap", "cpus", "logDriver", "logOpts", "securityOpts", "capabilities", "wait",
	"waitTimeout", "mustRun", "attach", "logs", "rm", "readOnly", "init", "ulimits", "shmSize",
	"start", "networkMode", "dnsOpts"}

func container(r mocktest.Resource, in map[string]any) (Container, error) {
	c := Container{Logical: r.Name, Name: str(in["name"])}
	if err := only(in, containerInputs...); err != nil {
		return c, err
	}
	for _, urn := range r.Dependencies {
		c.After = append(c.After, urn[strings.LastIndex(urn, "::")+2:])
	}
	b := &c.Create
	b.Image = str(in["image"])
	b.Cmd, b.Entrypoint, b.Env = strs(in["command"]), strs(in["entrypoints"]), strs(in["envs"])
	b.User, b.StopSignal = str(in["user"]), str(in["stopSignal"])
	if v, ok := in["stopTimeout"].(float64); ok {
		t := int(v)
		b.StopTimeout = &t
	}
	for _, l := range list(in["labels"]) {
		if b.Labels == nil {
			b.Labels = map[string]string{}
		}
		b.Labels[str(l["label"])] = str(l["value"])
	}
	if h, ok := in["healthcheck"].(map[string]any); ok {
		if err := only(h, "tests", "interval", "timeout", "retries", "startPeriod", "startInterval"); err != nil {
			return c, fmt.Errorf("healthcheck: %w", err)
		}
		b.Healthcheck = &Healthcheck{Test: strs(h["tests"]), Interval: duration(h["interval"]), Timeout: duration(h["timeout"]),
			Retries: int(num(h["retries"])), StartPeriod: duration(h["startPeriod"]), StartInterval: duration(h["startInterval"])}
	}
	hc := &b.HostConfig
	hc.RestartPolicy = RestartPolicy{Name: str(in["restart"])}
	if hc.RestartPolicy.Name == "" {
		hc.RestartPolicy.Name = "no" // the provider's default
	}
	hc.Memory = int64(num(in["memory"])) << 20
	hc.MemorySwap = int64(num(in["memorySwap"])) << 20
	if s := str(in["cpus"]); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return c, fmt.Errorf("cpus %q: %w", s, err)
		}
		hc.NanoCPUs = int64(f * 1e9)
	}
	hc.LogConfig = LogConfig{Type: str(in["logDriver"]), Config: strMap(in["logOpts"])}
	hc.SecurityOpt = strs(in["securityOpts"])
	hc.DNSOptions = strs(in["dnsOpts"])
	if capabilities, ok := in["capabilities"].(map[string]any); ok {
		hc.CapAdd, hc.CapDrop = strs(capabilities["adds"]), strs(capabilities["drops"])
	}
	hc.Tmpfs = strMap(in["tmpfs"])
	hc.ReadonlyRootfs = in["readOnly"] == true
	if v, ok := in["init"].(bool); ok {
		hc.Init = &v
	}
	hc.ShmSize = int64(num(in["shmSize"])) << 20
	hc.NetworkMode = str(in["networkMode"])
	for _, u := range list(in["ulimits"]) {
		hc.Ulimits = append(hc.Ulimits, Ulimit{Name: str(u["name"]), Soft: int64(num(u["soft"])), Hard: int64(num(u["hard"]))})
	}
	for _, p := range list(in["ports"]) {
		if hc.PortBindings == nil {
			hc.PortBindings, b.ExposedPorts = map[string][]PortBinding{}, map[string]struct{}{}
		}
		proto := str(p["protocol"])
		if proto == "" {
			proto = "tcp"
		}
		port := fmt.Sprintf("%d/%s", int(num(p["internal"])), proto)
		b.ExposedPorts[port] = struct{}{}
		hc.PortBindings[port] = append(hc.PortBindings[port], PortBinding{HostIP: str(p["ip"]), HostPort: strconv.Itoa(int(num(p["external"])))})
	}
	for _, v := range list(in["volumes"]) {
		source := str(v["volumeName"])
		if source == "" {
			source = str(v["hostPath"])
		}
		bind := source + ":" + str(v["containerPath"])
		if v["readOnly"] == true {
			bind += ":ro"
		}
		hc.Binds = append(hc.Binds, bind)
	}
	for i, n := range list(in["networksAdvanced"]) {
		e := Endpoint{Network: str(n["name"]), EndpointSettings: EndpointSettings{Aliases: strs(n["aliases"])}}
		if ip := str(n["ipv4Address"]); ip != "" {
			e.IPAMConfig = &IPAMConfig{IPv4Address: ip}
		}
		if i == 0 {
			b.Networking = &NetworkingConfig{EndpointsConfig: map[string]EndpointSettings{e.Network: e.EndpointSettings}}
		} else {
			c.Connect = append(c.Connect, e)
		}
	}
	for _, u := range list(in["uploads"]) {
		mode := int64(0o644) // the provider's default
		if u["executable"] == true {
			mode = 0o744
		}
		if p := str(u["permissions"]); p != "" {
			m, err := strconv.ParseInt(p, 8, 64)
			if err != nil {
				return c, fmt.Errorf("upload %s permissions %q: %w", str(u["file"]), p, err)
			}
			mode = m
		}
		c.Uploads = append(c.Uploads, Upload{Path: str(u["file"]), Content: []byte(str(u["content"])), Mode: mode})
	}
	c.OneShot = in["mustRun"] == false && in["attach"] == true
	c.NoStart = in["start"] == false
	c.DestroyGrace = int(num(in["destroyGraceSeconds"]))
	c.Wait = in["wait"] == true
	c.WaitTimeout = time.Duration(num(in["waitTimeout"])) * time.Second
	if c.WaitTimeout == 0 {
		c.WaitTimeout = 60 * time.Second // the provider's default
	}
	return c, nil
}

// plainMap is a property map as plain Go values (numbers as float64),
// secrets unwrapped: the engine call carries the secret's value.
func plainMap(m resource.PropertyMap) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if x := plain(v); x != nil {
			out[string(k)] = x
		}
	}
	return out
}

func plain(v resource.PropertyValue) any {
	switch {
	case v.IsSecret():
		return plain(v.SecretValue().Element)
	case v.IsOutput():
		return plain(v.OutputValue().Element)
	case v.IsObject():
		return plainMap(v.ObjectValue())
	case v.IsArray():
		var out []any
		for _, x := range v.ArrayValue() {
			out = append(out, plain(x))
		}
		return out
	case v.IsString():
		return v.StringValue()
	case v.IsNumber():
		return v.NumberValue()
	case v.IsBool():
		return v.BoolValue()
	}
	return nil // null or computed
}

// only fails when m has a key outside known: an input nobody translated.
func only(m map[string]any, known ...string) error {
	var unknown []string
	for k := range m {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return fmt.Errorf("inputs %v are not translated to the Engine API: teach internal/dockerplan", unknown)
	}
	return nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

func strs(v any) []string {
	var out []string
	items, _ := v.([]any)
	for _, x := range items {
		out = append(out, str(x))
	}
	return out
}

func strMap(v any) map[string]string {
	m, _ := v.(map[string]any)
	if len(m) == 0 {
		return nil
	}
	out := map[string]string{}
	for k, x := range m {
		out[k] = str(x)
	}
	return out
}

func list(v any) []map[string]any {
	var out []map[string]any
	items, _ := v.([]any)
	for _, x := range items {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// duration reads a Docker duration such as 3s or 500ms, in nanoseconds.
func duration(v any) int64 {
	d, _ := time.ParseDuration(str(v))
	return int64(d)
}
