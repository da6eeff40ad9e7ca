package dockerplan

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Engine talks to a Docker engine's API over its unix socket, as the
// provider does (API 1.41: Docker 20.10, the engine here).
type Engine struct {
	client *http.Client
}

// NewEngine connects to the socket (default /var/run/docker.sock).
func NewEngine(socket string) *Engine {
	if socket == "" {
		socket = "/var/run/docker.sock"
	}
	return &Engine{client: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}}
}

// call sends a request and decodes a JSON answer into out (when not nil).
func (e *Engine) call(ctx context.Context, method, p string, query url.Values, body io.Reader, contentType string, out any) error {
	u := "http://docker/v1.41" + p
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("docker %s %s: %w", method, p, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("docker %s %s: %s: %s", method, p, resp.Status, strings.TrimSpace(string(raw)))
	}
	if out != nil && len(raw) > 0 {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func (e *Engine) post(ctx context.Context, p string, query url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	return e.call(ctx, "POST", p, query, body, "application/json", out)
}

// CreateNetwork makes a network as the provider's Network does.
func (e *Engine) CreateNetwork(ctx context.Context, n Network) error {
	body := map[string]any{"Name": n.Name, "Driver": n.Driver, "Internal": n.Internal, "CheckDuplicate": true}
	if n.Subnet != "" {
		body["IPAM"] = map[string]any{"Config": []map[string]string{{"Subnet": n.Subnet, "IPRange": n.IPRange}}}
	}
	return e.post(ctx, "/networks/create", nil, body, nil)
}

// CreateVolume makes a named volume.
func (e *Engine) CreateVolume(ctx context.Context, name string) error {
	return e.post(ctx, "/volumes/create", nil, map[string]any{"Name": name}, nil)
}

// Create makes the container, uploads its files (before any start, as the
// provider does) and joins its other networks; it does not start it.
func (e *Engine) Create(ctx context.Context, c Container) (string, error) {
	var created struct{ ID string }
	if err := e.post(ctx, "/containers/create", url.Values{"name": {c.Name}}, c.Create, &created); err != nil {
		return "", err
	}
	if len(c.Uploads) > 0 {
		// One tar of the files with their full paths, extracted at /
		// (folders on the way are made), as the provider uploads.
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, u := range c.Uploads {
			hdr := &tar.Header{Name: strings.TrimPrefix(u.Path, "/"), Mode: u.Mode, Size: int64(len(u.Content)), ModTime: time.Now()}
			if err := tw.WriteHeader(hdr); err != nil {
				return created.ID, err
			}
			if _, err := tw.Write(u.Content); err != nil {
				return created.ID, err
			}
		}
		if err := tw.Close(); err != nil {
			return created.ID, err
		}
		if err := e.call(ctx, "PUT", "/containers/"+created.ID+"/archive", url.Values{"path": {"/"}}, &buf, "application/x-tar", nil); err != nil {
			return created.ID, fmt.Errorf("uploading into %s: %w", c.Name, err)
		}
	}
	for _, n := range c.Connect {
		body := map[string]any{"Container": created.ID, "EndpointConfig": n.EndpointSettings}
		if err := e.post(ctx, "/networks/"+url.PathEscape(n.Network)+"/connect", nil, body, nil); err != nil {
			return created.ID, err
		}
	}
	return created.ID, nil
}

// Start starts a created container.
func (e *Engine) Start(ctx context.Context, id string) error {
	return e.post(ctx, "/containers/"+id+"/start", nil, nil, nil)
}

// State is what inspect says of a container's state.
type State struct {
	Status   string
	Running  bool
	ExitCode int
	Pid      int
	// StartedAt is the last start, a restart policy's too.
	StartedAt time.Time
	Health    *Health
}

// Health is Docker's healthcheck state: the verdict and its last probes
// (Docker keeps five), so a test can say where a slow start went.
type Health struct {
	Status string
	Log    []Probe
}

// Probe is one healthcheck run.
type Probe struct {
	Start, End time.Time
	ExitCode   int
	Output     string
}

// Inspected is the part of a container's inspection the callers read.
type Inspected struct {
	ID              string
	Name            string
	State           State
	RestartCount    int
	NetworkSettings struct {
		Networks map[string]struct{ IPAddress string }
	}
}

// Inspect reads a container.
func (e *Engine) Inspect(ctx context.Context, id string) (Inspected, error) {
	var out Inspected
	err := e.call(ctx, "GET", "/containers/"+url.PathEscape(id)+"/json", nil, nil, "", &out)
	return out, err
}

// CPUTime is the CPU time the container's processes have used (the
// cgroup's usage, from the stats endpoint).
func (e *Engine) CPUTime(ctx context.Context, id string) (time.Duration, error) {
	var out struct {
		CPUStats struct {
			CPUUsage struct {
				TotalUsage uint64 `json:"total_usage"`
			} `json:"cpu_usage"`
		} `json:"cpu_stats"`
	}
	err := e.call(ctx, "GET", "/containers/"+url.PathEscape(id)+"/stats", url.Values{"stream": {"false"}, "one-shot": {"true"}}, nil, "", &out)
	return time.Duration(out.CPUStats.CPUUsage.TotalUsage), err
}

// WaitHealthy waits until Docker reports the container healthy, as the
// provider's wait does.
func (e *Engine) WaitHealthy(ctx context.Context, id string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		st, err := e.Inspect(ctx, id)
		if err != nil {
			return err
		}
		if st.State.Health != nil && st.State.Health.Status == "healthy" {
			return nil
		}
		if !st.State.Running && st.State.Status == "exited" {
			return fmt.Errorf("%s exited with code %d before it was healthy", st.Name, st.State.ExitCode)
		}
		if time.Now().After(deadline) {
			status := "no healthcheck"
			if st.State.Health != nil {
				status = st.State.Health.Status
			}
			return fmt.Errorf("%s is %s, not healthy, after %s", st.Name, status, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// WaitExit waits until the container stops and returns its exit code.
func (e *Engine) WaitExit(ctx context.Context, id string) (int, error) {
	var out struct{ StatusCode int }
	err := e.post(ctx, "/containers/"+id+"/wait", nil, nil, &out)
	return out.StatusCode, err
}

// Logs are the container's stdout and stderr, the stream headers removed.
func (e *Engine) Logs(ctx context.Context, id string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://docker/v1.41/containers/"+id+"/logs?stdout=1&stderr=1", nil)
	if err != nil {
		return "", err
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	// Multiplexed: 8-byte headers (stream, 0, 0, 0, big-endian size).
	var out strings.Builder
	for len(raw) >= 8 {
		size := int(binary.BigEndian.Uint32(raw[4:8]))
		raw = raw[8:]
		if size > len(raw) {
			size = len(raw)
		}
		out.Write(raw[:size])
		raw = raw[size:]
	}
	return out.String(), nil
}

// Stop sends the stop signal and waits up to timeout before SIGKILL.
func (e *Engine) Stop(ctx context.Context, id string, timeout int) error {
	return e.post(ctx, "/containers/"+id+"/stop", url.Values{"t": {fmt.Sprint(timeout)}}, nil, nil)
}

// Pause freezes every process of a container (the cgroup freezer) and
// Unpause thaws them: a database that stalls without going away, as one
// does on a stuck disk or a long lock, its connections open and silent.
func (e *Engine) Pause(ctx context.Context, id string) error {
	return e.post(ctx, "/containers/"+id+"/pause", nil, nil, nil)
}

func (e *Engine) Unpause(ctx context.Context, id string) error {
	return e.post(ctx, "/containers/"+id+"/unpause", nil, nil, nil)
}

// Crash ends the container's main process with SIGKILL from the host, as
// the kernel's OOM killer or a segfault does. Docker's own kill would not
// do: Docker 20.10 counts it as a stop by hand, and the restart policy,
// which a crash test is about, never starts the container again. Needs
// the engine on this host and the right to signal its processes (root).
func (e *Engine) Crash(ctx context.Context, id string) error {
	st, err := e.Inspect(ctx, id)
	if err != nil {
		return err
	}
	if !st.State.Running || st.State.Pid <= 0 {
		return fmt.Errorf("container %s is not running (%s)", id, st.State.Status)
	}
	if err := syscall.Kill(st.State.Pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("SIGKILL to PID %d of container %s (the engine must run on this host): %w", st.State.Pid, id, err)
	}
	return nil
}

// Remove deletes a container, running or not.
func (e *Engine) Remove(ctx context.Context, id string) error {
	return e.call(ctx, "DELETE", "/containers/"+url.PathEscape(id), url.Values{"force": {"1"}}, nil, "", nil)
}

// RemoveNetwork and RemoveVolume delete what the plan made.
func (e *Engine) RemoveNetwork(ctx context.Context, name string) error {
	return e.call(ctx, "DELETE", "/networks/"+url.PathEscape(name), nil, nil, "", nil)
}

func (e *Engine) RemoveVolume(ctx context.Context, name string) error {
	return e.call(ctx, "DELETE", "/volumes/"+url.PathEscape(name), url.Values{"force": {"1"}}, nil, "", nil)
}

// Exec runs a command in a running container and returns its output and
// exit code.
func (e *Engine) Exec(ctx context.Context, id string, cmd ...string) (string, int, error) {
	var created struct{ ID string }
	if err := e.post(ctx, "/containers/"+id+"/exec", nil, map[string]any{"Cmd": cmd, "AttachStdout": true, "AttachStderr": true}, &created); err != nil {
		return "", 0, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", "http://docker/v1.41/exec/"+created.ID+"/start", strings.NewReader(`{"Detach":false,"Tty":false}`))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		return "", 0, err
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var out strings.Builder
	for len(raw) >= 8 {
		size := int(binary.BigEndian.Uint32(raw[4:8]))
		raw = raw[8:]
		size = min(size, len(raw))
		out.Write(raw[:size])
		raw = raw[size:]
	}
	var inspect struct{ ExitCode int }
	err = e.call(ctx, "GET", "/exec/"+created.ID+"/json", nil, nil, "", &inspect)
	return out.String(), inspect.ExitCode, err
}

// Deployment is what Apply made, for the caller to use and remove.
type Deployment struct {
	// IDs of the containers by Docker name.
	IDs        map[string]string
	plan       Plan
	scratch    []string // every release's scratch volumes
	containers []string
	made       []Container
}

// Apply creates the plan on the engine in the provider's order: networks
// and volumes, then each container after those it waits for; a one-shot
// must exit 0 (the program's own gate would stop the update otherwise),
// and a container with wait must turn healthy. Containers already present
// under their name (an earlier release) are left as they are.
func (e *Engine) Apply(ctx context.Context, p Plan, d *Deployment) error {
	if d.IDs == nil {
		d.IDs = map[string]string{}
	}
	// Networks with a subnet of their own first, as the component orders
	// them (dependsOn): Docker then gives the others a pool that does not
	// overlap them.
	// Known before they are made, so that a Destroy after a failed Apply
	// removes those that were (a leftover network's subnet is refused to
	// the next run).
	d.plan.Networks, d.plan.Volumes = p.Networks, p.Volumes
	for _, withSubnet := range []bool{true, false} {
		for _, n := range p.Networks {
			if (n.Subnet != "") != withSubnet {
				continue
			}
			if err := e.CreateNetwork(ctx, n); err != nil && !strings.Contains(err.Error(), "already exists") {
				return err
			}
		}
	}
	for _, v := range p.Volumes {
		if err := e.CreateVolume(ctx, v); err != nil {
			return err
		}
	}
	for _, v := range p.Scratch {
		if !slices.Contains(d.scratch, v) {
			d.scratch = append(d.scratch, v)
		}
	}
	// As the engine does: every container starts once those it waits for
	// (After) are done, independent ones at the same time (the replicas
	// of a release are created and waited for together).
	var mu sync.Mutex
	failed := map[string]bool{} // nothing that waits for these is made
	done := map[string]chan struct{}{}
	for _, c := range p.Containers {
		done[c.Logical] = make(chan struct{})
	}
	errs := make(chan error, len(p.Containers))
	for _, c := range p.Containers {
		go func() {
			defer close(done[c.Logical])
			skip := false
			for _, dep := range c.After {
				if ch, ok := done[dep]; ok {
					<-ch
					mu.Lock()
					skip = skip || failed[dep]
					mu.Unlock()
				}
			}
			var err error
			if !skip {
				err = e.applyContainer(ctx, c, d, &mu)
			}
			if skip || err != nil {
				mu.Lock()
				failed[c.Logical] = true
				mu.Unlock()
			}
			errs <- err
		}()
	}
	var first error
	for range p.Containers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// applyContainer creates, starts and waits for one container of the plan,
// unless it is there already; mu guards the deployment.
func (e *Engine) applyContainer(ctx context.Context, c Container, d *Deployment, mu *sync.Mutex) error {
	mu.Lock()
	_, exists := d.IDs[c.Name]
	mu.Unlock()
	if exists {
		return nil
	}
	id, err := e.Create(ctx, c)
	if id != "" {
		mu.Lock()
		d.IDs[c.Name] = id
		d.containers = append(d.containers, c.Name)
		d.made = append(d.made, c)
		mu.Unlock()
	}
	if err != nil {
		return err
	}
	if c.NoStart {
		return nil
	}
	if err := e.Start(ctx, id); err != nil {
		return fmt.Errorf("starting %s: %w", c.Name, err)
	}
	switch {
	case c.OneShot:
		code, err := e.WaitExit(ctx, id)
		if err != nil {
			return err
		}
		if code != 0 {
			logs, _ := e.Logs(ctx, id)
			return fmt.Errorf("%s exited with code %d:\n%s", c.Name, code, logs)
		}
	case c.Wait:
		if err := e.WaitHealthy(ctx, id, c.WaitTimeout); err != nil {
			return err
		}
	}
	return nil
}

// Destroy removes the containers (newest first), the networks, the scratch
// volumes and, with volumes, the data volumes too.
func (e *Engine) Destroy(ctx context.Context, d *Deployment, volumes bool) {
	for i := len(d.containers) - 1; i >= 0; i-- {
		_ = e.Remove(ctx, d.IDs[d.containers[i]])
	}
	for _, n := range d.plan.Networks {
		_ = e.RemoveNetwork(ctx, n.Name)
	}
	for _, v := range d.scratch {
		_ = e.RemoveVolume(ctx, v)
	}
	if volumes {
		for _, v := range d.plan.Volumes {
			_ = e.RemoveVolume(ctx, v)
		}
	}
}

// Retired is how a deleted container went: how long its stop took and the
// exit code its process ended with.
type Retired struct {
	Stopped  time.Duration
	ExitCode int
}

// Retire deletes a container the way the provider deletes a replaced
// one: stop (SIGTERM, then destroyGraceSeconds) and remove.
func (e *Engine) Retire(ctx context.Context, d *Deployment, name string) (Retired, error) {
	r, err := e.RetireAll(ctx, d, name)
	if len(r) == 0 {
		return Retired{}, err
	}
	return r[0], err
}

// RetireAll retires containers at once, as the provider deletes resources
// that do not depend on each other in parallel; results are in the order
// of names.
func (e *Engine) RetireAll(ctx context.Context, d *Deployment, names ...string) ([]Retired, error) {
	type job struct {
		id    string
		grace int
	}
	jobs := make([]job, len(names))
	for i, name := range names {
		id, ok := d.IDs[name]
		if !ok {
			return nil, fmt.Errorf("dockerplan: no container %s", name)
		}
		jobs[i] = job{id: id, grace: 10}
		for _, c := range d.made {
			if c.Name == name && c.DestroyGrace > 0 {
				jobs[i].grace = c.DestroyGrace
			}
		}
	}
	out := make([]Retired, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			if errs[i] = e.Stop(ctx, j.id, j.grace); errs[i] != nil {
				return
			}
			out[i].Stopped = time.Since(start)
			st, err := e.Inspect(ctx, j.id)
			if errs[i] = err; err != nil {
				return
			}
			out[i].ExitCode = st.State.ExitCode
			errs[i] = e.Remove(ctx, j.id)
		}()
	}
	wg.Wait()
	for i, name := range names {
		if errs[i] != nil {
			continue
		}
		delete(d.IDs, name)
		d.containers = slices.DeleteFunc(d.containers, func(n string) bool { return n == name })
		d.made = slices.DeleteFunc(d.made, func(c Container) bool { return c.Name == name })
	}
	return out, errors.Join(errs...)
}

// Replaced are the containers Apply made whose names start with prefix and
// that plan p no longer has: an older release, which Pulumi deletes at the
// end of an update.
func (d *Deployment) Replaced(p Plan, prefix string) []string {
	var out []string
	for _, name := range d.Names(prefix) {
		if !slices.ContainsFunc(p.Containers, func(c Container) bool { return c.Name == name }) {
			out = append(out, name)
		}
	}
	return out
}

// Names are the Docker names of the containers Apply made whose names
// start with prefix, in the order they were made.
func (d *Deployment) Names(prefix string) []string {
	var out []string
	for _, name := range d.containers {
		if strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	return out
}

// List finds containers, running or not, with a label (key or key=value):
// Docker name (without the leading slash) -> ID.
func (e *Engine) List(ctx context.Context, label string) (map[string]string, error) {
	filters, err := json.Marshal(map[string][]string{"label": {label}})
	if err != nil {
		return nil, err
	}
	var found []struct {
		ID    string `json:"Id"`
		Names []string
	}
	if err := e.call(ctx, "GET", "/containers/json", url.Values{"all": {"1"}, "filters": {string(filters)}}, nil, "", &found); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, c := range found {
		for _, n := range c.Names {
			out[strings.TrimPrefix(n, "/")] = c.ID
		}
	}
	return out, nil
}
