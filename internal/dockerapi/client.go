// Package dockerapi is a small client of the Docker Engine API for what
// the day-2 operations and the real-engine tests do beside Pulumi: exec,
// logs, inspect, stop and start, pause, a crash from the host, and the
// engine's API version. Creating things is the docker provider's job.
package dockerapi

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Client talks to a Docker engine's API (over its unix socket, or TCP
// for HostAPIVersion) at API 1.41 (Docker 20.10, the oldest engine the
// single server supports).
type Client struct {
	client *http.Client
	base   string // the engine's URL, without a trailing slash
	// dial opens a raw connection to the engine, for a call that takes
	// the connection over (Attach); nil where there is none.
	dial func(ctx context.Context) (net.Conn, error)
}

// api is the Engine API version every call but the version's own names.
const api = "/v1.41"

// NewClient connects to the socket (default /var/run/docker.sock).
func NewClient(socket string) *Client {
	if socket == "" {
		socket = "/var/run/docker.sock"
	}
	dial := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}
	return &Client{client: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
	}}, base: "http://docker", dial: dial}
}

// call sends a request to the API at version 1.41 and decodes a JSON
// answer into out (when not nil).
func (e *Client) call(ctx context.Context, method, p string, query url.Values, body io.Reader, contentType string, out any) error {
	return e.do(ctx, method, api+p, query, body, contentType, out)
}

// do is call for a path of the engine's own, unversioned.
func (e *Client) do(ctx context.Context, method, p string, query url.Values, body io.Reader, contentType string, out any) error {
	u := e.base + p
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
	// 304: a start of a running container, a stop of a stopped one:
	// already as asked (a restore run again after an interrupted one).
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotModified {
		return fmt.Errorf("docker %s %s: %s: %s", method, p, resp.Status, strings.TrimSpace(string(raw)))
	}
	if out != nil && len(raw) > 0 {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func (e *Client) post(ctx context.Context, p string, query url.Values, in, out any) error {
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

// Start starts a created container.
func (e *Client) Start(ctx context.Context, id string) error {
	return e.post(ctx, "/containers/"+id+"/start", nil, nil, nil)
}

// State is what inspect says of a container's state.
type State struct {
	Status     string
	Running    bool
	Restarting bool
	ExitCode   int
	Pid        int
	// StartedAt is the last start, a restart policy's too.
	StartedAt time.Time
	Health    *Health
}

// Health is Docker's healthcheck state: the verdict and its last probes
// (Docker keeps five), so a test can say where a slow start went.
type Health struct {
	Status        string
	FailingStreak int
	Log           []Probe
}

// Probe is one healthcheck run.
type Probe struct {
	Start, End time.Time
	ExitCode   int
	Output     string
}

// Inspected is the part of a container's inspection the callers read.
type Inspected struct {
	ID           string
	Name         string
	State        State
	RestartCount int
	// Mounts: Source is the host's path (a volume's mount point).
	Mounts          []struct{ Type, Name, Source, Destination string }
	NetworkSettings struct {
		Networks map[string]struct{ IPAddress string }
	}
}

// Inspect reads a container.
func (e *Client) Inspect(ctx context.Context, id string) (Inspected, error) {
	var out Inspected
	err := e.call(ctx, "GET", "/containers/"+url.PathEscape(id)+"/json", nil, nil, "", &out)
	return out, err
}

// CPUTime is the CPU time the container's processes have used (the
// cgroup's usage, from the stats endpoint).
func (e *Client) CPUTime(ctx context.Context, id string) (time.Duration, error) {
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
func (e *Client) WaitHealthy(ctx context.Context, id string, within time.Duration) error {
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
func (e *Client) WaitExit(ctx context.Context, id string) (int, error) {
	var out struct{ StatusCode int }
	err := e.post(ctx, "/containers/"+id+"/wait", nil, nil, &out)
	return out.StatusCode, err
}

// Logs are the container's stdout and stderr, the stream headers removed.
func (e *Client) Logs(ctx context.Context, id string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", e.base+api+"/containers/"+id+"/logs?stdout=1&stderr=1", nil)
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
	return demux(raw), nil
}

// Stop sends the stop signal and waits up to timeout before SIGKILL.
func (e *Client) Stop(ctx context.Context, id string, timeout int) error {
	return e.post(ctx, "/containers/"+id+"/stop", url.Values{"t": {fmt.Sprint(timeout)}}, nil, nil)
}

// Pause freezes every process of a container (the cgroup freezer) and
// Unpause thaws them: a database that stalls without going away, as one
// does on a stuck disk or a long lock, its connections open and silent.
func (e *Client) Pause(ctx context.Context, id string) error {
	return e.post(ctx, "/containers/"+id+"/pause", nil, nil, nil)
}

func (e *Client) Unpause(ctx context.Context, id string) error {
	return e.post(ctx, "/containers/"+id+"/unpause", nil, nil, nil)
}

// Crash ends the container's main process with SIGKILL from the host, as
// the kernel's OOM killer or a segfault does. Docker's own kill would not
// do: Docker 20.10 counts it as a stop by hand, and the restart policy,
// which a crash test is about, never starts the container again. Needs
// the engine on this host and the right to signal its processes (root).
func (e *Client) Crash(ctx context.Context, id string) error {
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
func (e *Client) Remove(ctx context.Context, id string) error {
	return e.call(ctx, "DELETE", "/containers/"+url.PathEscape(id), url.Values{"force": {"1"}}, nil, "", nil)
}

// RemoveNetwork and RemoveVolume delete what the plan made.
func (e *Client) RemoveNetwork(ctx context.Context, name string) error {
	return e.call(ctx, "DELETE", "/networks/"+url.PathEscape(name), nil, nil, "", nil)
}

func (e *Client) RemoveVolume(ctx context.Context, name string) error {
	return e.call(ctx, "DELETE", "/volumes/"+url.PathEscape(name), url.Values{"force": {"1"}}, nil, "", nil)
}

// RemoveNamed removes every container, then every network and volume,
// whose name starts with prefix: what a test's stack made, at the cost of
// a few API calls instead of a `pulumi destroy`'s engine run. It returns
// the first failure, after trying them all.
func (e *Client) RemoveNamed(ctx context.Context, prefix string) error {
	var first error
	note := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	containers, err := e.List(ctx, "")
	note(err)
	for name, id := range containers {
		if strings.HasPrefix(name, prefix) {
			note(e.Remove(ctx, id))
		}
	}
	var networks []struct{ Name string }
	note(e.call(ctx, "GET", "/networks", nil, nil, "", &networks))
	for _, n := range networks {
		if strings.HasPrefix(n.Name, prefix) {
			note(e.RemoveNetwork(ctx, n.Name))
		}
	}
	var volumes struct{ Volumes []struct{ Name string } }
	note(e.call(ctx, "GET", "/volumes", nil, nil, "", &volumes))
	for _, v := range volumes.Volumes {
		if strings.HasPrefix(v.Name, prefix) {
			note(e.RemoveVolume(ctx, v.Name))
		}
	}
	return first
}

// Exec runs a command in a running container and returns its output and
// exit code.
func (e *Client) Exec(ctx context.Context, id string, cmd ...string) (string, int, error) {
	return e.ExecAs(ctx, id, "", cmd...)
}

// ExecAs is Exec as another user of the container ("uid:gid"; empty: the
// container's own).
func (e *Client) ExecAs(ctx context.Context, id, user string, cmd ...string) (string, int, error) {
	var created struct{ ID string }
	body := map[string]any{"Cmd": cmd, "AttachStdout": true, "AttachStderr": true}
	if user != "" {
		body["User"] = user
	}
	if err := e.post(ctx, "/containers/"+id+"/exec", nil, body, &created); err != nil {
		return "", 0, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", e.base+api+"/exec/"+created.ID+"/start", strings.NewReader(`{"Detach":false,"Tty":false}`))
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

// List finds containers, running or not, with a label (key or key=value;
// empty: every container): Docker name (without the leading slash) -> ID.
func (e *Client) List(ctx context.Context, label string) (map[string]string, error) {
	query := url.Values{"all": {"1"}}
	if label != "" {
		filters, err := json.Marshal(map[string][]string{"label": {label}})
		if err != nil {
			return nil, err
		}
		query.Set("filters", string(filters))
	}
	var found []struct {
		ID    string `json:"Id"`
		Names []string
	}
	if err := e.call(ctx, "GET", "/containers/json", query, nil, "", &found); err != nil {
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

// Event is one of the engine's container events: its action (kill, die,
// stop, destroy, ...), the container's name, its attributes (a kill's
// signal, a die's exitCode) and when.
type Event struct {
	Action string
	Name   string
	Attrs  map[string]string
	Time   time.Time
}

// Events are the container events between since and until (both past),
// oldest first: what happened to containers while a tool that is not this
// client (the Pulumi provider) worked on them.
func (e *Client) Events(ctx context.Context, since, until time.Time) ([]Event, error) {
	filters, err := json.Marshal(map[string][]string{"type": {"container"}})
	if err != nil {
		return nil, err
	}
	q := url.Values{"since": {unixNano(since)}, "until": {unixNano(until)}, "filters": {string(filters)}}
	req, err := http.NewRequestWithContext(ctx, "GET", e.base+api+"/events?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	var out []Event
	for {
		var raw struct {
			Action   string
			Actor    struct{ Attributes map[string]string }
			TimeNano int64 `json:"timeNano"`
		}
		if err := dec.Decode(&raw); err == io.EOF {
			return out, nil
		} else if err != nil {
			return out, err
		}
		// An exec's action is "exec_start: CMD"; keep the verb.
		action, _, _ := strings.Cut(raw.Action, ":")
		out = append(out, Event{Action: action, Name: raw.Actor.Attributes["name"], Attrs: raw.Actor.Attributes, Time: time.Unix(0, raw.TimeNano)})
	}
}

// unixNano is a time as the events endpoint takes it: seconds.nanoseconds.
func unixNano(t time.Time) string { return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()) }

// LogLine is one line a container wrote, with Docker's timestamp.
type LogLine struct {
	Time time.Time
	Text string
}

// LogsSince are the container's stdout and stderr lines since a time (the
// zero time: all of them), each with the time Docker received it.
func (e *Client) LogsSince(ctx context.Context, id string, since time.Time) ([]LogLine, error) {
	q := url.Values{"stdout": {"1"}, "stderr": {"1"}, "timestamps": {"1"}}
	if !since.IsZero() {
		q.Set("since", fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond()))
	}
	req, err := http.NewRequestWithContext(ctx, "GET", e.base+api+"/containers/"+url.PathEscape(id)+"/logs?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("logs of %s: %s: %s", id, resp.Status, strings.TrimSpace(string(body)))
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var lines []LogLine
	for _, l := range strings.Split(demux(raw), "\n") {
		stamp, text, ok := strings.Cut(l, " ")
		t, err := time.Parse(time.RFC3339Nano, stamp)
		if !ok || err != nil {
			continue
		}
		lines = append(lines, LogLine{Time: t, Text: text})
	}
	return lines, nil
}

// demux strips the multiplexed stream's 8-byte headers (stream, 0, 0, 0,
// big-endian size) from a container's log output.
func demux(raw []byte) string {
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
	return out.String()
}
