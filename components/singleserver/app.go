package singleserver

import (
	_ "embed"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// appUser is the non-root user and group of the app image (app/Dockerfile).
const appUser = "10001:10001"

// multiprocDir holds the Prometheus client's per-worker metric files; the
// app makes it in the /tmp tmpfs at each start, so a restart starts from
// zero.
const multiprocDir = "/tmp/prometheus-multiproc"

// scratchTmpfs is where the app and its migration may write: a tmpfs over
// /tmp, on an otherwise read-only root file system. A tmpfs mounted at a
// path the image does not have came back root-owned 0755 after a restart
// on Docker 20.10 (its mode option forgotten: the app then died on
// PermissionError and the replica stayed unhealthy); Docker gives a tmpfs
// the mode of the image's folder at that path, and every image's /tmp is
// 1777, so this one holds across restarts without any mode option.
var scratchTmpfs = pulumi.StringMap{"/tmp": pulumi.String("rw,noexec,nosuid,size=64m")}

// hardened sets what the app's replicas and its migration share: its
// non-root user, no capabilities, no privilege escalation, a read-only root
// file system with the /tmp tmpfs, the app's memory and CPU limits, and a
// bound on the processes of its user.
func (b *builder) hardened(args *docker.ContainerArgs) *docker.ContainerArgs {
	s := b.args.Service
	args.User = pulumi.String(appUser)
	args.ReadOnly = pulumi.Bool(true)
	args.Tmpfs = scratchTmpfs
	args.SecurityOpts = pulumi.StringArray{pulumi.String("no-new-privileges:true")}
	args.Capabilities = docker.ContainerCapabilitiesArgs{Drops: pulumi.StringArray{pulumi.String("ALL")}}
	limitMemory(args, s.Resources.Memory.Megabytes())
	args.Cpus = pulumi.String(cpus(s.Resources.CPU.Value))
	// pulumi-docker has no pids limit; RLIMIT_NPROC bounds the processes
	// of the app's uid (on the host, as Docker does not remap users by
	// default): a fork bomb stops there, the workers never near it.
	args.Ulimits = docker.ContainerUlimitArray{docker.ContainerUlimitArgs{Name: pulumi.String("nproc"), Soft: pulumi.Int(maxProcesses), Hard: pulumi.Int(maxProcesses)}}
	args.LogDriver = pulumi.String(b.logDriver())
	args.LogOpts = b.logOptions()
	if b.privateIsInternal() {
		args.DnsOpts = pulumi.ToStringArray(internalDNSOptions)
	}
	return args
}

// internalDNSOptions make a name lookup that cannot succeed fail in 1 s
// instead of 10. On an internal network Docker's DNS forwards a name it
// does not know to the host's resolvers, through a network with no way
// out, and glibc waits its 5 s timeout twice ("Temporary failure in name
// resolution" after 10.02 s, measured in the app image on Docker 20.10;
// with these, after 1.05 s). The database's name is such a name while its
// container is stopped (a restart, an upgrade): each connection attempt
// in that time, each readiness check among them, held a worker thread
// 10 s.
var internalDNSOptions = []string{"timeout:1", "attempts:1"}

// maxProcesses bounds the app user's processes and threads.
const maxProcesses = 4096

// appSecrets are the values that reach the app's replicas only as secret
// files: DATABASE_URL as the least-privileged app role, the secret env,
// and the database's CA when DATABASE_URL verifies the server.
func (b *builder) appSecrets() map[string]pulumi.StringOutput {
	db := b.args.Service.Database
	if db.Mode == service.DatabaseExternal {
		return b.secretFilesWith(db.AppURL(b.databaseHost()))
	}
	return b.secretFilesWith(db.AppLoginURL(b.databaseHost(), b.appLogin()))
}

// migrationSecrets are the migration's: the same, but DATABASE_URL is the
// owner's, which may change the schema. They live in a volume of their
// own, which no replica mounts.
func (b *builder) migrationSecretFiles() map[string]pulumi.StringOutput {
	return b.secretFilesWith(b.args.Service.Database.OwnerURL(b.databaseHost()))
}

func (b *builder) secretFilesWith(databaseURL pulumi.StringOutput) map[string]pulumi.StringOutput {
	s := b.args.Service
	secrets := maps.Clone(s.SecretEnv)
	if secrets == nil {
		secrets = map[string]pulumi.StringOutput{}
	}
	secrets["DATABASE_URL"] = databaseURL
	if s.Database.UsesCACert() {
		secrets[path.Base(service.CACertFile)] = pulumi.String(s.Database.CACert).ToStringOutput()
	}
	return secrets
}

// releaseID changes with everything an app container is made of. It is in
// the containers' logical names, so a new release is a set of new resources:
// Pulumi creates them (waiting until healthy) before it deletes the old ones,
// where an in-place change would delete each container first, since
// pulumi-docker replaces containers delete-before-create.
func (b *builder) releaseID() string {
	s := b.args.Service
	parts := []string{b.migrationID(), b.args.SecretsDigest, s.Module,
		strconv.Itoa(s.Port), strconv.Itoa(s.Workers), s.Resources.CPU.String(), s.Resources.Memory.String(),
		strconv.Itoa(s.ShutdownGraceSeconds), s.Health.ReadyPath, strconv.FormatBool(s.ProxyHeaders),
		string(b.args.Proxy), b.net.ProxyIP, s.Domain,
		// The healthcheck: an engine upgrade that brings startInterval
		// changes it, and must roll the replicas, not replace them in place;
		// so must a new probe command.
		strconv.FormatBool(b.startInterval()), strings.Join(httpProbe(s.Port, s.Health.ReadyPath, appProbeStartWait), " ")}
	parts = append(parts, plainEnv(s.Env)...)
	// Traefik's labels too (proxy.bodyLimit is one): labels are fixed at
	// a container's creation.
	labels := b.traefikLabelMap()
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		parts = append(parts, k+"="+labels[k])
	}
	parts = append(parts, slices.Sorted(maps.Keys(s.SecretEnv))...)
	// What DATABASE_URL is made of besides the passwords (which
	// SecretsDigest covers): the replicas read it only when they start, so
	// a new host, role or TLS setting must be a new release too.
	db := s.Database
	parts = append(parts, b.databaseHost(), strconv.Itoa(db.Port), db.Name, db.User, db.AppUser, db.SSLMode, db.CACert)
	return service.ReleaseID(parts...)
}

// buildApps creates the replicas. Each answers on the private network under
// the shared alias the proxy's upstream resolves, and is created only after
// its release's migration gate passed.
func (b *builder) buildApps() error {
	s := b.args.Service
	release := b.releaseID()
	// Several workers per container: the metrics client adds them up from
	// files in this folder (see multiprocDir).
	envs := append(append(plainEnv(s.Env), b.secrets.env...), "PROMETHEUS_MULTIPROC_DIR="+multiprocDir)
	// SIGTERM, then the drain, this long for in-flight requests (uvicorn
	// finishes them and runs the lifespan shutdown) and the linger before
	// SIGKILL.
	stopSeconds := b.drainSeconds() + s.ShutdownGraceSeconds + b.lingerSeconds()
	deps := []pulumi.Resource{b.secrets.carrier}
	if b.migration != nil {
		deps = append(deps, b.migration)
	}
	for i := 1; i <= s.Replicas; i++ {
		role := fmt.Sprintf("app-%d-%s", i, release)
		labels := docker.ContainerLabelArray{
			// The gate's value: an input that exists only once the
			// migration exited 0.
			docker.ContainerLabelArgs{Label: pulumi.String("fastapi-infra.migration"), Value: b.gate},
			docker.ContainerLabelArgs{Label: pulumi.String("fastapi-infra.release"), Value: pulumi.String(release)},
		}
		labels = append(labels, b.traefikLabels()...)
		app, err := docker.NewContainer(b.ctx, b.name+"-"+role, b.hardened(&docker.ContainerArgs{
			Name:             pulumi.String(b.dockerName(role)),
			Image:            b.appImage,
			Command:          pulumi.ToStringArray(b.appCommand()),
			Envs:             pulumi.ToStringArray(envs),
			Volumes:          docker.ContainerVolumeArray{b.secrets.mount},
			Labels:           labels,
			NetworksAdvanced: b.privateNetwork(b.upstreamHost()),
			// Readiness, not liveness: Docker restarts a container whose
			// process exits, never one that fails its probe, so here the
			// probe's only consumers are those that ask "can it serve": a
			// release waits for it before the old replicas go (as a
			// Kubernetes rollout waits for readiness), and Traefik routes
			// only to healthy containers. Three failures in a row, as a
			// readiness probe's failureThreshold, before it counts.
			Healthcheck:         b.appHealthcheck(s.Port, s.Health.ReadyPath),
			Restart:             pulumi.String("unless-stopped"),
			StopSignal:          pulumi.String("SIGTERM"),
			StopTimeout:         pulumi.Int(stopSeconds),
			DestroyGraceSeconds: pulumi.Int(stopSeconds),
			Wait:                pulumi.Bool(true),
			WaitTimeout:         pulumi.Int(b.args.StartTimeoutSeconds),
		}), b.opts(pulumi.DependsOn(deps))...)
		if err != nil {
			return err
		}
		b.apps = append(b.apps, app)
	}
	return nil
}

// TraefikDrainSeconds is how long a replica behind Traefik keeps serving
// after SIGTERM, as a Kubernetes preStop sleep does. Traefik routes to a
// new replica only after Docker reports it healthy and its provider
// throttle (500 ms) has passed, and a request keeps the server list it
// started with through every retry: an old replica that stopped accepting
// the moment the new ones were healthy failed each request of that window
// (CI: a release lost more than 2% once). nginx needs no drain: it passes
// a refused request to the next address.
const TraefikDrainSeconds = 3

// NginxLingerSeconds is how long a replica behind nginx stays up after
// uvicorn exited on SIGTERM: its address refuses connections at once
// (nginx retries elsewhere in well under a millisecond and leaves it out
// for the upstream's fail_timeout), where a container that is gone leaves
// an address that answers nothing, and each request nginx still sends
// there waits out proxy_connect_timeout (250 ms), twice when both old
// replicas are gone, until the entrypoint's reload drops them. The
// benchmark's slowest requests of a release were those: 430-630 ms, all
// within 0.6 s of the old replicas' stop.
const NginxLingerSeconds = 1

// drainSeconds is the replicas' drain before uvicorn gets SIGTERM, and
// lingerSeconds how long they stay after it exited.
func (b *builder) drainSeconds() int {
	if b.args.Proxy == Traefik {
		return TraefikDrainSeconds
	}
	return 0
}

func (b *builder) lingerSeconds() int {
	if b.args.Proxy == Traefik {
		return 0 // Traefik drops a stopping container from its own list
	}
	return NginxLingerSeconds
}

// ReplicaSupervisor is a replica's PID 1, in place of uvicorn's own
// --workers supervisor. It binds the port (argv[3]) and runs argv[4]
// worker processes of the command after it, each serving that listening
// socket as file descriptor 3 (uvicorn --fd 3). It imports uvicorn and
// the libraries a FastAPI service on PostgreSQL imports (FastAPI,
// Pydantic, SQLAlchemy, the drivers) once and forks the workers, which
// run the python3 command in the forked interpreter and import only the
// app: 0.6 s of CPU less per worker, 1.2 s at 0.5 CPU. When every worker
// imported them, a new replica's later workers were still importing
// inside its CPU limit as a release's old replicas stopped, and those
// requests were the release's slowest (p99 138-264 ms in one-round
// singlebench runs; forked, 47 ms over three rounds).
//
// Why not uvicorn --workers: its parent holds the listening socket and, on
// SIGTERM, stops its workers one after another. Once the last one stopped
// accepting, the kernel still completed handshakes into the socket's
// backlog until the parent exited, so nginx's requests of those 150-250 ms
// sat there and were reset, the slowest of a release in the benchmark.
// Here every worker gets SIGTERM at once and closes its copy of the
// socket first thing, the supervisor closes its own, and the port refuses
// connections at once: nginx retries elsewhere in well under a
// millisecond.
//
// On SIGTERM it keeps the workers serving for the drain (argv[1] seconds)
// first, as a Kubernetes preStop sleep does (Docker has no hook), and
// once they exited it stays for the linger (argv[2] seconds); the exit
// code is the first non-zero one of the workers. A worker that exits
// without SIGTERM (a crash) stops the others and ends the supervisor at
// once, so Docker restarts the whole replica, where uvicorn's supervisor
// ran on with a worker fewer. python3 is in every image the component
// runs, since the server is uvicorn.
//
//go:embed replica_supervisor.py
var ReplicaSupervisor string

// appCommand is the replica's command: uvicorn's workers under the
// supervisor.
func (b *builder) appCommand() []string {
	s := b.args.Service
	return append([]string{"python3", "-c", ReplicaSupervisor, strconv.Itoa(b.drainSeconds()), strconv.Itoa(b.lingerSeconds()),
		strconv.Itoa(s.Port), strconv.Itoa(s.Workers)}, s.WorkerCommand(3, b.net.ProxyIP)...)
}

// upstreamHost is the alias every replica shares on the private network.
func (b *builder) upstreamHost() string { return b.dockerName("app") }
