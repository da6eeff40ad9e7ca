package singleserver

import (
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// secretsDir is where secret values reach a container: as files uploaded
// before it starts, named by NAME_FILE variables (the Docker secrets
// convention the postgres image and the example app follow), so they never
// show in `docker inspect` or the container's environment.
const secretsDir = secretsMount + "/"

// logDriver and logOptions are every container's logging: json-file with
// rotation by default, as the seed asks, or a forwarding driver.
// logDriver and logOptions are every container's log driver: the log
// store's when it runs (Logs), otherwise the stack's.
func (b *builder) logDriver() string {
	if b.args.Logs != nil {
		driver, _ := b.logsDriver()
		return driver
	}
	return b.args.LogDriver
}

func (b *builder) logOptions() pulumi.StringMap {
	if b.args.Logs != nil {
		_, options := b.logsDriver()
		return options
	}
	return pulumi.ToStringMap(b.args.LogOptions)
}

// httpProbe is a healthcheck command that asks 127.0.0.1:port for path and
// passes on a 200. It is python3 because the app image has it, but not
// urllib: Docker runs the probe inside the container, every 3 s, against
// the replica's own CPU limit, and `python3 -c "import urllib.request ..."`
// cost about 90 ms of CPU each time (6% of a 0.5-CPU replica, measured by
// the benchmark as CPU per request). Without site (-S) and with a bare
// socket it costs about 30 ms.
//
// While the port refuses connections (nothing serves yet: the replica
// supervisor's workers listen only once they serve) the probe keeps
// trying, every 100 ms for up to startWait, instead of failing at once.
// Docker 20.10, the engine Debian ships, has no start_interval: it probes
// every interval (3 s) from the start, a restart's too, so a probe that
// failed at once left a replica that came up just after it unhealthy for
// another interval plus the probe's own time. Under load a replica killed
// by SIGKILL was healthy again only after 13.4 s (restart at +1.8 s,
// probes at +4.8 and +8.9 s failing, +12.7 s passing). A waiting probe
// passes the moment a worker answers ready. A 503 or any other answer
// still fails at once: waiting covers only "not serving yet".
func httpProbe(port int, path string, startWait time.Duration) []string {
	return []string{"python3", "-I", "-S", "-c", fmt.Sprintf("import socket,sys,time\n"+
		"t=time.monotonic()+%g\n"+
		"while 1:\n"+
		" try:s=socket.create_connection(('127.0.0.1',%d),2);break\n"+
		" except ConnectionRefusedError:\n"+
		"  if time.monotonic()>t:raise\n"+
		"  time.sleep(.1)\n"+
		"s.sendall(b'GET %s HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\n\\r\\n')\n"+
		"l=s.makefile('rb').readline()\n"+
		"if l.split()[1:2]==[b'200']:sys.exit(0)\n"+
		"sys.exit('%s answered '+(l.decode(errors='replace').strip() or 'nothing'))", startWait.Seconds(), port, path, path)}
}

// appProbeStartWait is how long the replicas' probe waits for a refusing
// port (see httpProbe): longer than a replica's start takes on a busy
// two-core machine (about 7 s seen), well inside the start period.
const appProbeStartWait = 10 * time.Second

// appHealthcheck is the replicas' probe: healthcheck's, with a timeout
// that leaves the probe its start wait and then its 2 s socket timeout.
func (b *builder) appHealthcheck(port int, path string) docker.ContainerHealthcheckArgs {
	h := b.healthcheck(httpProbe(port, path, appProbeStartWait)...)
	h.Timeout = pulumi.String((appProbeStartWait + 3*time.Second).String())
	return h
}

// healthcheck is every long-running container's probe but the backup's.
// Each probe is an exec in the container, and an exec is what costs, not
// the command: runc, containerd and dockerd spent 250-300 ms of CPU per
// probe on this project's 2-core machine, `true` as much as pg_isready. At
// 1 s for the database and the proxy and 3 s for two replicas the stack
// burnt 0.68 of its 2 cores with no request at all (the seed's compose
// file, probing its database every 3 s and the API every 30 s: 0.12;
// singlebench's "host CPU with no requests"), and it showed in every
// throughput figure. So 3 s for all: half the probes.
//
// `wait` blocks on the first healthy probe, so on an engine without
// start_interval (Engine API before 1.44: Docker 20.10 to 24, Debian 12's
// among them) the interval is what `up` waits for each stage. Docker 25+
// probes every second until the first success (startInterval) and the
// interval costs `up` nothing there; but an older engine does not ignore
// the field: the provider refuses the container ("specify health-check
// start interval" requires API version 1.44), so it is set only where the
// engine has it (Args.EngineAPIVersion). Not 2 s for the replicas: a
// release took 7.4 s instead of 9.3 s, but its p99 under load rose from
// 93 to 132 ms (singlebench, 3 rounds each): the new replicas' start and
// the old ones' stop came closer together on two cores.
func (b *builder) healthcheck(test ...string) docker.ContainerHealthcheckArgs {
	h := docker.ContainerHealthcheckArgs{
		Tests:       pulumi.ToStringArray(append([]string{"CMD"}, test...)),
		Interval:    pulumi.String("3s"),
		Timeout:     pulumi.String("3s"),
		Retries:     pulumi.Int(3),
		StartPeriod: pulumi.String("30s"),
	}
	if b.startInterval() {
		h.StartInterval = pulumi.String("1s")
	}
	return h
}

// StartIntervalAPI is the first Docker Engine API version (Docker 25.0)
// with a healthcheck start_interval.
const StartIntervalAPI = "1.44"

// startInterval says whether the engine probes faster while a container
// starts (Engine API 1.44+).
func (b *builder) startInterval() bool {
	return APIAtLeast(b.args.EngineAPIVersion, StartIntervalAPI)
}

// APIAtLeast compares Docker Engine API versions ("1.41" < "1.44" <
// "1.100"); an empty or unreadable have is the oldest supported engine.
func APIAtLeast(have, want string) bool {
	hMajor, hMinor, ok := parseAPIVersion(have)
	if !ok {
		hMajor, hMinor, _ = parseAPIVersion(MinEngineAPI)
	}
	wMajor, wMinor, _ := parseAPIVersion(want)
	return hMajor > wMajor || hMajor == wMajor && hMinor >= wMinor
}

func parseAPIVersion(v string) (major, minor int, ok bool) {
	a, b, found := strings.Cut(v, ".")
	major, err1 := strconv.Atoi(a)
	minor, err2 := strconv.Atoi(b)
	return major, minor, found && err1 == nil && err2 == nil
}

// MinEngineAPI is the oldest Docker Engine API the single server supports:
// Docker 20.10, the engine Debian 12 ships.
const MinEngineAPI = "1.41"

// limitMemory caps a container's memory at mb MiB with no swap beyond it.
// memorySwap is set too, always: left out, Docker gives the container
// twice the memory as memory+swap, the provider reads that back, and
// every next `up` showed a change (`- memorySwap: 512` on the proxy).
func limitMemory(args *docker.ContainerArgs, mb int) {
	args.Memory = pulumi.Int(mb)
	args.MemorySwap = pulumi.Int(mb)
}

// capabilities names Linux capabilities as the engine reports them back
// (CAP_CHOWN), which is how the provider reads them on a refresh: written
// as CHOWN, a refresh recorded CAP_CHOWN and the next `up` replaced the
// proxy over `"CAP_CHOWN" => "CHOWN"`.
func capabilities(names ...string) pulumi.StringArray {
	out := make(pulumi.StringArray, len(names))
	for i, n := range names {
		out[i] = pulumi.String("CAP_" + n)
	}
	return out
}

// secretFiles turns name -> secret value into uploads and NAME_FILE
// variables. Names are sorted so the container's inputs are stable.
func secretFiles(secrets map[string]pulumi.StringOutput) (docker.ContainerUploadArray, []string) {
	var uploads docker.ContainerUploadArray
	var envs []string
	for _, name := range slices.Sorted(maps.Keys(secrets)) {
		path := secretsDir + name
		uploads = append(uploads, docker.ContainerUploadArgs{
			File:        pulumi.String(path),
			Content:     pulumi.ToSecret(secrets[name]).(pulumi.StringOutput),
			Permissions: pulumi.String("0444"),
		})
		envs = append(envs, name+"_FILE="+path)
	}
	return uploads, envs
}

// plainEnv renders NAME=value, sorted.
func plainEnv(env map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// cpus is the Docker --cpus value of a millicore amount, written as the
// provider reads NanoCPUs back from the engine (its
// nanoInt64ToDecimalString), since the field forces a new container when
// the two differ: 1000m is "1.0", not "1" (every other `up` replaced the
// database over `cpus: "1.0" => "1"`), 500m "0.5", 1500m "1.5", 250m
// "0.25". The provider's rule: one decimal when the nine-decimal form has
// exactly nine zeros, else that form without its trailing zeros.
func cpus(milli int64) string {
	if milli == 0 {
		return "0"
	}
	r := new(big.Rat).SetFrac64(milli, 1000)
	s := r.FloatString(9)
	if strings.Count(s, "0") == 9 {
		return r.FloatString(1)
	}
	return strings.TrimRight(s, "0")
}

// privateNetwork attaches a container to the private network under aliases.
func (b *builder) privateNetwork(aliases ...string) docker.ContainerNetworksAdvancedArray {
	return docker.ContainerNetworksAdvancedArray{docker.ContainerNetworksAdvancedArgs{
		Name:    b.private.Name,
		Aliases: pulumi.ToStringArray(aliases),
	}}
}
