package singleserver_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/monitoring"
	"github.com/fastapi-infra/fastapi-infra/components/service"
	"github.com/fastapi-infra/fastapi-infra/components/singleserver"
	"github.com/fastapi-infra/fastapi-infra/internal/mocktest"
	"github.com/fastapi-infra/fastapi-infra/internal/pki"
)

const containerType = "docker:index/container:Container"

// devArgs is a single server like the one the dev stack asks for (a
// container database, self-signed TLS, nginx on 8080/8443, two replicas of
// three workers at half a core), built from the component's own inputs: the
// stacks tests check that the dev stack's config becomes such Args.
func devArgs() singleserver.Args {
	s := mocktest.ServiceSpec()
	s.Name = "fastapi"
	s.Image.Ref = "fastapi-infra-app:dev"
	s.Workers = 3
	s.Env = map[string]string{"LOG_LEVEL": "info"}
	s.ShutdownGraceSeconds = 30
	s.Domain = "localhost"
	s.Resources.Memory, _ = service.ParseMemory("512Mi")
	db := &s.Database
	db.Image = "fastapi-infra-postgres:15"
	db.Password = secret(mocktest.TestPassword)
	db.AppPassword = secret(devAppPassword)
	db.Resources.CPU, _ = service.ParseCPU("1")
	db.Resources.Memory, _ = service.ParseMemory("1Gi")
	db.Backup = service.Backup{Schedule: "30 3 * * *", Keep: 7}
	return singleserver.Args{
		Service: s, Subnet: "172.30.57.0/24", NamePrefix: "fastapi",
		Proxy: singleserver.Nginx, ProxyImage: "fastapi-infra-nginx:1.22", HTTPPort: 8080, HTTPSPort: 8443,
		BodyLimit: "10m", RateLimit: 100, ConnLimit: 100, SecretsDigest: "0123456789",
	}
}

// devAppPassword is the app role's: not the owner's.
const devAppPassword = "app-role-password"

func secret(v string) pulumi.StringOutput {
	return pulumi.ToSecret(pulumi.String(v)).(pulumi.StringOutput)
}

// withTraefikACME puts Traefik with Let's Encrypt in front.
func withTraefikACME(a *singleserver.Args) {
	a.Proxy = singleserver.Traefik
	a.TraefikImage = singleserver.DefaultTraefikImage
	a.Service.TLS = service.TLS{Mode: service.TLSACME, ACMEEmail: "ops@example.com", ACMEServer: "https://acme-v02.api.letsencrypt.org/directory"}
	a.Service.Domain = "api.example.com"
}

// withMonitoring runs the dev stack's Prometheus, Alertmanager and
// exporter, with the service's and the database's rules.
func withMonitoring(a *singleserver.Args) {
	rules := monitoring.Alerts("fastapi", "fastapi", monitoring.Thresholds{DownMinutes: 3, ErrorRatio: 0.05, P95Seconds: 0.5, RestartsPerHour: 3})
	rules.Rules = append(rules.Rules, monitoring.DatabaseAlerts("fastapi", 24*time.Hour, 0)...)
	a.Monitoring = &singleserver.Monitoring{Image: "fastapi-infra-prometheus:2.42", Retention: "15d", LocalPort: 9090, Rules: rules,
		ExternalLabels: map[string]string{"stack": "dev", "environment": "development"}, PostgresExporterImage: "fastapi-infra-postgres-exporter:0.11",
		Alertmanager: &singleserver.Alertmanager{Image: "fastapi-infra-alertmanager:0.25", LocalPort: 9093,
			Routing: monitoring.Routing{GroupWait: "30s", GroupInterval: "5m", RepeatInterval: "1h"}}}
}

// withExternalDatabase moves the database to db1.example.com.
func withExternalDatabase(a *singleserver.Args) {
	db := &a.Service.Database
	db.Mode, db.Host, db.Image = service.DatabaseExternal, "db1.example.com", ""
}

// deployDev registers devArgs, changed by edit, on the mock engine.
// exitCode is what the mock Docker engine reports for the one-shot
// migration container.
func deployDev(t *testing.T, exitCode int, edit func(*singleserver.Args)) (*mocktest.Recorder, error) {
	t.Helper()
	args := devArgs()
	if edit != nil {
		edit(&args)
	}
	rec := &mocktest.Recorder{Outputs: func(r mocktest.Resource) resource.PropertyMap {
		switch r.Type {
		case containerType:
			code := 0
			if strings.Contains(r.Name, "-migrate-") {
				code = exitCode
			}
			logs := "\x01\x00\x00\x00\x00\x00\x00\x15INFO  upgrade 1 -> 2\n\x02\x00\x00\x00\x00\x00\x00\x16ERROR relation exists\n"
			return resource.PropertyMap{"exitCode": resource.NewNumberProperty(float64(code)), "containerLogs": resource.NewStringProperty(logs)}
		case "docker:index/remoteImage:RemoteImage":
			return resource.PropertyMap{"imageId": resource.NewStringProperty("sha256:" + r.Name)}
		}
		return nil
	}}
	return rec, mocktest.Run(t, "dev", mocktest.Config{Values: map[string]string{}}, func(ctx *pulumi.Context) error {
		_, err := singleserver.New(ctx, args.Service.Name, &args)
		return err
	}, rec)
}

func mustDeployDev(t *testing.T, edit func(*singleserver.Args)) *mocktest.Recorder {
	t.Helper()
	if edit == nil {
		// The plain dev single server, which a third of the tests read:
		// registered once (each run of the mock engine costs 0.1-0.3 s).
		plainDev.Do(func() { plainDev.rec, plainDev.err = deployDev(t, 0, nil) })
		if plainDev.err != nil {
			t.Fatal(plainDev.err)
		}
		return plainDev.rec
	}
	rec, err := deployDev(t, 0, edit)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// plainDev is devArgs' registration, shared read-only by the tests.
var plainDev struct {
	sync.Once
	rec *mocktest.Recorder
	err error
}

// containers groups the containers by role: db, migrate, app, proxy.
func containers(t *testing.T, rec *mocktest.Recorder) map[string][]mocktest.Resource {
	t.Helper()
	out := map[string][]mocktest.Resource{}
	for _, c := range rec.ByType(containerType) {
		name := c.Str(t, "name")
		role := strings.Split(strings.TrimPrefix(name, "fastapi-"), "-")[0]
		switch {
		case strings.HasPrefix(name, "fastapi-migration-secrets-"):
			role = "migration-carrier"
		case strings.HasSuffix(name, "-carrier"):
			role += "-carrier" // secret files' carriers, never started
		case strings.HasPrefix(name, "fastapi-db-roles-"):
			role = "db-roles"
		case strings.HasPrefix(name, "fastapi-db-revoke-"):
			role = "db-revoke"
		case name == "fastapi-docker-api":
			role = "docker-api"
		}
		out[role] = append(out[role], c)
	}
	return out
}

// TestANewImageIsCreatedFirst: a new app.image replaces its image
// resource; delete-first (every container's way) deleted first everything
// that uses the image, the running replicas among them, before the new
// release's migration ran, and a migration that then failed left no
// replica (the real-engine rollback test: 504s). Images are create-first;
// containers stay delete-first (their names are unique on the host).
func TestANewImageIsCreatedFirst(t *testing.T) {
	rec := mustDeployDev(t, withTraefikACME)
	images := rec.ByType("docker:index/remoteImage:RemoteImage")
	if len(images) < 3 {
		t.Fatalf("%d images", len(images))
	}
	for _, img := range images {
		if img.DeleteBeforeReplace {
			t.Errorf("%s is replaced delete-first: its replacement deletes the running replicas first", img.Name)
		}
	}
	for _, c := range rec.ByType(containerType) {
		if !c.DeleteBeforeReplace {
			t.Errorf("container %s is replaced create-first: its fixed name would be taken", c.Name)
		}
	}
}

func TestOnlyTheProxyPublishesPorts(t *testing.T) {
	byRole := containers(t, mustDeployDev(t, nil))
	if len(byRole["app"]) != 2 || len(byRole["db"]) != 1 || len(byRole["migrate"]) != 1 || len(byRole["proxy"]) != 1 {
		t.Fatalf("roles: %v", byRole)
	}
	proxy := byRole["proxy"][0]
	proxy.Equal(t, "ports[0].internal", 80)
	proxy.Equal(t, "ports[0].external", 8080)
	proxy.Equal(t, "ports[1].internal", 443)
	proxy.Equal(t, "ports[1].external", 8443)
	proxy.Equal(t, "networksAdvanced[0].ipv4Address", "172.30.57.254")
	for _, role := range []string{"app", "db", "migrate"} {
		for _, c := range byRole[role] {
			if c.Has("ports[0]") {
				t.Errorf("%s publishes ports", c.Name)
			}
			c.Equal(t, "networksAdvanced[0].name", "fastapi-private")
			if c.Has("networksAdvanced[1]") {
				t.Errorf("%s is on more than the private network", c.Name)
			}
		}
	}
}

func TestPrivateNetwork(t *testing.T) {
	rec := mustDeployDev(t, nil)
	var private mocktest.Resource
	for _, n := range rec.ByType("docker:index/network:Network") {
		if n.Str(t, "name") == "fastapi-private" {
			private = n
		}
	}
	private.Equal(t, "internal", true)
	// Docker must see the private /24 before it picks a pool for the edge.
	if !rec.Named(t, "fastapi-edge").DependsOn("fastapi-private") {
		t.Error("the edge network is created at the same time as the private one, and may take the /16 the private /24 lies in")
	}
	private.Equal(t, "ipamConfigs[0].subnet", "172.30.57.0/24")
	private.Equal(t, "ipamConfigs[0].ipRange", "172.30.57.0/25")
}

// TestProbesAreFewAtRest: every probe is an exec, and an exec costs
// 250-300 ms of CPU here whatever it runs, so no long-running container
// probes more often than every 3 s once started (at 1 s for the database
// and the proxy the idle stack burnt 0.68 of 2 cores, at 3 s 0.42), and
// an engine with startInterval (Docker 25+) probes every second until the
// first success, which is what up waits for.
func TestProbesAreFewAtRest(t *testing.T) {
	for _, edit := range []func(*singleserver.Args){nil, withTraefikACME, withMonitoring} {
		newer := func(a *singleserver.Args) {
			if edit != nil {
				edit(a)
			}
			a.EngineAPIVersion = "1.44"
		}
		for role, cs := range containers(t, mustDeployDev(t, newer)) {
			for _, c := range cs {
				if !c.Has("healthcheck") {
					continue
				}
				every := c.Str(t, "healthcheck.interval")
				if interval, err := time.ParseDuration(every); err != nil || interval < 3*time.Second {
					t.Errorf("%s (%s): probes every %s, want 3 s or more", c.Name, role, every)
				}
				if c.Has("wait") && c.Get(t, "wait") == true && (!c.Has("healthcheck.startInterval") || c.Str(t, "healthcheck.startInterval") != "1s") {
					t.Errorf("%s (%s): up waits for it healthy on Docker 25+, but it has no 1 s startInterval", c.Name, role)
				}
			}
		}
	}
}

// TestNoStartIntervalBeforeEngineAPI144: Docker 20.10 (Engine API 1.41,
// Debian 12's engine) has no healthcheck start_interval, and the provider
// refuses a container that asks for one ("specify health-check start
// interval" requires API version 1.44): `./infra up dev` failed on the
// database. Without an engine version (the default) or with an older
// one, no container asks for it.
func TestNoStartIntervalBeforeEngineAPI144(t *testing.T) {
	for _, api := range []string{"", "1.41", "1.43", "junk"} {
		rec := mustDeployDev(t, func(a *singleserver.Args) {
			withMonitoring(a)
			a.EngineAPIVersion = api
		})
		for _, c := range rec.ByType(containerType) {
			if c.Has("healthcheck.startInterval") {
				t.Errorf("engine API %q: %s has a healthcheck startInterval (%v), which the engine does not have", api, c.Name, c.Get(t, "healthcheck.startInterval"))
			}
		}
	}
	// A newer engine is a new healthcheck for every replica: a release
	// (new names, created before the old ones go), not an in-place
	// replacement.
	before := appNames(containers(t, mustDeployDev(t, nil))["app"])
	after := appNames(containers(t, mustDeployDev(t, func(a *singleserver.Args) { a.EngineAPIVersion = "1.44" }))["app"])
	if slices.Equal(before, after) {
		t.Errorf("the replicas keep their names %v when the engine gains startInterval", before)
	}
}

func appNames(apps []mocktest.Resource) []string {
	var out []string
	for _, a := range apps {
		out = append(out, a.Name)
	}
	return out
}

func TestEngineAPIVersions(t *testing.T) {
	for _, c := range []struct {
		have, want string
		ok         bool
	}{
		{"1.41", "1.44", false}, {"1.43", "1.44", false}, {"1.44", "1.44", true}, {"1.51", "1.44", true},
		{"1.100", "1.44", true}, {"2.0", "1.44", true}, {"", "1.44", false}, {"", "1.41", true}, {"x", "1.41", true},
	} {
		if got := singleserver.APIAtLeast(c.have, c.want); got != c.ok {
			t.Errorf("APIAtLeast(%q, %q) = %v, want %v", c.have, c.want, got, c.ok)
		}
	}
}

// TestLimitsReadBackUnchanged: the provider reads cpus and memorySwap
// back from the engine after it creates a container, and a value written
// otherwise is a change on the next `up`: `cpus: "1.0" => "1"` replaced
// the database on every other `up` (cpus forces a new container), and
// the proxy's unset memorySwap (Docker makes it twice the memory) showed
// `- memorySwap: 512`. So cpus is written the provider's way, and every
// container with a memory limit has memorySwap set to it (no swap).
func TestLimitsReadBackUnchanged(t *testing.T) {
	for milli, want := range map[string]string{"1": "1.0", "1000m": "1.0", "500m": "0.5", "0.5": "0.5", "1500m": "1.5", "250m": "0.25", "2": "2.0", "125m": "0.125", "100m": "0.1"} {
		cpu, err := service.ParseCPU(milli)
		if err != nil {
			t.Fatal(err)
		}
		db := containers(t, mustDeployDev(t, func(a *singleserver.Args) { a.Service.Database.Resources.CPU = cpu }))["db"][0]
		db.Equal(t, "cpus", want)
	}
	rec := mustDeployDev(t, func(a *singleserver.Args) {
		withMonitoring(a)
		a.Logs = &singleserver.Logs{Image: "fastapi-infra-victoria-logs:1.52.1", Retention: "7d", LocalPort: 9428, SyslogPort: 5140}
	})
	for _, c := range rec.ByType(containerType) {
		if !c.Has("memory") {
			continue
		}
		if !c.Has("memorySwap") || c.Get(t, "memorySwap") != c.Get(t, "memory") {
			swap := any("unset")
			if c.Has("memorySwap") {
				swap = c.Get(t, "memorySwap")
			}
			t.Errorf("%s: memory %v, memorySwap %v; want memorySwap equal to memory", c.Name, c.Get(t, "memory"), swap)
		}
	}
}

func TestAppContainers(t *testing.T) {
	rec := mustDeployDev(t, nil)
	byRole := containers(t, rec)
	for _, app := range byRole["app"] {
		app.Equal(t, "command", []any{"python3", "-c", singleserver.ReplicaSupervisor, "0", "1", "8000", "3", "python3", "-c", service.AdoptInheritedSocket, "app.main:app", "--fd", "3",
			"--proxy-headers", "--forwarded-allow-ips", "172.30.57.254"})
		app.Equal(t, "user", "10001:10001")
		app.Equal(t, "restart", "unless-stopped")
		app.Equal(t, "memory", 512)
		app.Equal(t, "cpus", "0.5")
		app.Equal(t, "logDriver", "json-file")
		app.Equal(t, "logOpts", map[string]any{"max-size": "10m", "max-file": "3"})
		app.Equal(t, "stopTimeout", 31)
		app.Equal(t, "stopSignal", "SIGTERM")
		app.Equal(t, "wait", true)
		app.Equal(t, "healthcheck.tests[0]", "CMD")
		// Readiness: what a release waits for and Traefik routes by.
		if test := app.Str(t, "healthcheck.tests[5]"); !strings.Contains(test, "('127.0.0.1',8000)") || !strings.Contains(test, "GET /health/ready HTTP/1.0") {
			t.Errorf("healthcheck %q does not probe the ready endpoint", test)
		}
		app.Equal(t, "healthcheck.interval", "3s")
		app.Equal(t, "healthcheck.retries", 3)
		// The probe waits up to 10 s for a starting replica to serve, then
		// has its 2 s socket timeout: Docker must not cut it short.
		app.Equal(t, "healthcheck.timeout", "13s")
		// The private network is internal: a name that does not resolve
		// (the database's, while it restarts) fails in 1 s, not 10.
		app.Equal(t, "dnsOpts", []any{"timeout:1", "attempts:1"})
		app.Equal(t, "capabilities.drops", []any{"ALL"})
		app.Equal(t, "networksAdvanced[0].aliases", []any{"fastapi-app"})
	}
	// The app and its migration are hardened alike: read-only root with a
	// tmpfs /tmp (no mode option: it would be lost on a restart), no
	// capabilities, no privilege escalation, limits.
	for _, c := range append(byRole["app"], byRole["migrate"]...) {
		c.Equal(t, "readOnly", true)
		c.Equal(t, "tmpfs", map[string]any{"/tmp": "rw,noexec,nosuid,size=64m"})
		c.Equal(t, "user", "10001:10001")
		c.Equal(t, "capabilities.drops", []any{"ALL"})
		c.Equal(t, "securityOpts", []any{"no-new-privileges:true"})
		c.Equal(t, "memory", 512)
		c.Equal(t, "memorySwap", 512)
		c.Equal(t, "cpus", "0.5")
		c.Equal(t, "ulimits[0].name", "nproc")
	}
	for _, app := range byRole["app"] {
		// Secrets: a file and a _FILE variable, never the value in env.
		envs := fmt.Sprint(app.Get(t, "envs"))
		if strings.Contains(envs, mocktest.TestPassword) || strings.Contains(envs, "DATABASE_URL=") {
			t.Errorf("DATABASE_URL is in the container env: %s", envs)
		}
		if !strings.Contains(envs, "DATABASE_URL_FILE=/run/secrets/DATABASE_URL") || !strings.Contains(envs, "LOG_LEVEL=info") {
			t.Errorf("envs %s", envs)
		}
	}
	// The files come from secrets volumes, mounted read-only: the
	// replicas' holds the app role's DATABASE_URL, the migration's (which
	// no replica mounts) the owner's.
	for carrierRole, want := range map[string]struct {
		url        string
		containers []mocktest.Resource
	}{
		// The app logs in as its login of this secrets digest, a member
		// of app_rw (service.SetupRoles).
		"secrets-carrier":   {"postgresql://app_rw_" + releaseOfSecrets(t, rec) + ":" + devAppPassword + "@fastapi-db:5432/app?sslmode=prefer", byRole["app"]},
		"migration-carrier": {"postgresql://app:" + mocktest.TestPassword + "@fastapi-db:5432/app?sslmode=prefer", byRole["migrate"]},
	} {
		carrier := byRole[carrierRole]
		if len(carrier) != 1 {
			t.Fatalf("want one %s, got %d", carrierRole, len(carrier))
		}
		if v, secret, _ := carrier[0].At("uploads[0].content"); !secret || v.StringValue() != want.url {
			t.Errorf("%s: the DATABASE_URL upload is %v (secret %v), want %s", carrierRole, v.StringValue(), secret, want.url)
		}
		carrier[0].Equal(t, "uploads[0].file", "/run/secrets/DATABASE_URL")
		carrier[0].Equal(t, "start", false)
		carrier[0].Equal(t, "networkMode", "none")
		volume := carrier[0].Str(t, "volumes[0].volumeName")
		carrier[0].Equal(t, "volumes[0].containerPath", "/run/secrets")
		if len(want.containers) == 0 {
			t.Fatalf("no containers mount %s", volume)
		}
		for _, c := range want.containers {
			c.Equal(t, "volumes[0].volumeName", volume)
			c.Equal(t, "volumes[0].containerPath", "/run/secrets")
			c.Equal(t, "volumes[0].readOnly", true)
			if !c.DependsOn(carrier[0].Name) {
				t.Errorf("%s does not wait for the secrets upload", c.Name)
			}
		}
	}
}

// TestNoUploadIntoAReadOnlyContainer: pulumi-docker uploads files through
// Docker's archive API at "/", which Docker refuses for a read-only root
// file system ("container rootfs is marked read-only"): the app's secret
// files once went that way, and the single server could not start.
func TestNoUploadIntoAReadOnlyContainer(t *testing.T) {
	for _, rec := range []*mocktest.Recorder{mustDeployDev(t, nil), mustDeployDev(t, func(a *singleserver.Args) {
		withTraefikACME(a)
		withMonitoring(a)
	})} {
		for _, c := range rec.ByType(containerType) {
			if ro, _, _ := c.At("readOnly"); ro.IsBool() && ro.BoolValue() && c.Has("uploads[0].file") {
				t.Errorf("%s is read-only and has uploads: Docker refuses them", c.Name)
			}
		}
	}
}

func TestDatabase(t *testing.T) {
	rec := mustDeployDev(t, nil)
	db := containers(t, rec)["db"][0]
	// Over TCP: the entrypoint's first server on a new volume listens on
	// the socket only, and is not the one that serves.
	db.Equal(t, "healthcheck.tests", []any{"CMD", "pg_isready", "-h", "127.0.0.1", "-U", "app", "-d", "app"})
	db.Equal(t, "wait", true)
	db.Equal(t, "healthcheck.interval", "3s") // see TestProbesAreFewAtRest
	db.Equal(t, "volumes[0].containerPath", "/var/lib/postgresql/data")
	db.Equal(t, "networksAdvanced[0].aliases", []any{"fastapi-db"})
	if envs := fmt.Sprint(db.Get(t, "envs")); !strings.Contains(envs, "POSTGRES_PASSWORD_FILE=/run/secrets/PGPASSWORD") || strings.Contains(envs, mocktest.TestPassword) ||
		!strings.Contains(envs, "PGPORT=5432") {
		t.Errorf("db envs %s", envs)
	}
	// The password files are the database's secrets volume's, read-only;
	// its one upload is the roles script, no secret.
	db.Equal(t, "volumes[2].volumeName", "fastapi-db-secrets")
	db.Equal(t, "volumes[2].containerPath", "/run/secrets")
	db.Equal(t, "volumes[2].readOnly", true)
	db.Equal(t, "uploads[0].file", "/docker-entrypoint-initdb.d/50-fastapi-infra-roles.sh")
	if db.Has("uploads[1]") {
		t.Errorf("the database container has more uploads than the roles script: %v", db.Get(t, "uploads"))
	}
	// db.cpu and db.memory default to 1 core and 1Gi, no swap, and a /dev/shm
	// of a quarter of the memory instead of Docker's 64 MiB.
	db.Equal(t, "memory", 1024)
	db.Equal(t, "memorySwap", 1024)
	db.Equal(t, "cpus", "1.0") // as the provider reads it back
	// The postgres user from the start, no capability, none to gain.
	db.Equal(t, "user", "999:999")
	db.Equal(t, "capabilities.drops", []any{"ALL"})
	db.Equal(t, "securityOpts", []any{"no-new-privileges:true"})
	db.Equal(t, "shmSize", 256)
	sized := containers(t, mustDeployDev(t, func(a *singleserver.Args) {
		a.Service.Database.Resources.CPU, _ = service.ParseCPU("1500m")
		a.Service.Database.Resources.Memory, _ = service.ParseMemory("2Gi")
	}))["db"][0]
	sized.Equal(t, "memory", 2048)
	sized.Equal(t, "cpus", "1.5")
	vol := rec.Named(t, "fastapi-db-data")
	vol.Equal(t, "name", "fastapi-db-data")
	if !vol.RetainOnDelete {
		t.Error("the database volume is not retained on delete")
	}
	optOut := mustDeployDev(t, func(a *singleserver.Args) { a.Service.Database.RetainOnDelete = false })
	if optOut.Named(t, "fastapi-db-data").RetainOnDelete {
		t.Error("db.retainOnDelete false still retains the volume")
	}
}

// TestDependencyChain: db -> migrate -> every app -> proxy.
func TestDependencyChain(t *testing.T) {
	byRole := containers(t, mustDeployDev(t, nil))
	db, migrate, proxy := byRole["db"][0], byRole["migrate"][0], byRole["proxy"][0]
	if !migrate.DependsOn(db.Name) {
		t.Errorf("the migration does not wait for the database: %v", migrate.Dependencies)
	}
	for _, app := range byRole["app"] {
		if !app.DependsOn(migrate.Name) {
			t.Errorf("%s does not wait for the migration", app.Name)
		}
		app.Equal(t, `labels[0].label`, "fastapi-infra.migration")
		if !proxy.DependsOn(app.Name) {
			t.Errorf("the proxy does not wait for %s", app.Name)
		}
	}
	migrate.Equal(t, "mustRun", false)
	migrate.Equal(t, "attach", true)
	migrate.Equal(t, "logs", true)
	migrate.Equal(t, "command", []any{"alembic", "upgrade", "head"})
}

func TestFailedMigrationStopsTheRelease(t *testing.T) {
	rec, err := deployDev(t, 3, nil)
	if err == nil {
		t.Fatal("a migration that exited 3 did not fail the update")
	}
	// It says how to run the migration again (the failed run stays in the
	// state) and the driver can find it there by its role label.
	for _, want := range []string{"exited with code 3", "alembic upgrade head", "INFO  upgrade 1 -> 2", "ERROR relation exists", "the running release keeps serving",
		"run `./infra up` again", "pulumi up --replace 'urn:pulumi:", "::fastapi-migrate-"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "\x01\x00") {
		t.Error("Docker's stream headers are left in the log lines")
	}
	// The apps' gate never resolved: their registration waits on it, so
	// the mock engine saw none of them.
	if n := len(containers(t, rec)["app"]); n != 0 {
		t.Errorf("%d app containers were registered after a failed migration", n)
	}
	for _, m := range containers(t, rec)["migrate"] {
		m.Equal(t, "labels[0].label", singleserver.RoleLabel)
		m.Equal(t, "labels[0].value", singleserver.MigrationRole)
	}
}

func TestReleasesAreNewResources(t *testing.T) {
	names := func(rec *mocktest.Recorder) []string {
		var out []string
		for _, c := range containers(t, rec)["app"] {
			out = append(out, c.Name)
		}
		slices.Sort(out)
		return out
	}
	first := names(mustDeployDev(t, nil))
	same := names(mustDeployDev(t, nil))
	newImage := names(mustDeployDev(t, func(a *singleserver.Args) { a.Service.Image.Ref = "fastapi-infra-app:0.2.0" }))
	newEnv := names(mustDeployDev(t, func(a *singleserver.Args) { a.Service.Env = map[string]string{"LOG_LEVEL": "debug"} }))
	newSecret := names(mustDeployDev(t, func(a *singleserver.Args) { a.SecretsDigest = "9876543210" }))
	newReadyPath := names(mustDeployDev(t, func(a *singleserver.Args) { a.Service.Health.ReadyPath = "/ready" }))
	// Labels are fixed at a container's creation: Traefik's too.
	onTraefik := names(mustDeployDev(t, withTraefikACME))
	newBodyLimit := names(mustDeployDev(t, func(a *singleserver.Args) { withTraefikACME(a); a.BodyLimit = "20m" }))
	if !slices.Equal(first, same) {
		t.Errorf("the same args gave new names: %v vs %v", first, same)
	}
	// The replicas read DATABASE_URL only when they start: every part of
	// it is part of the release.
	external := func(edit func(*service.Database)) []string {
		return names(mustDeployDev(t, func(a *singleserver.Args) {
			withExternalDatabase(a)
			edit(&a.Service.Database)
		}))
	}
	ca, err := pki.NewCA("release test CA")
	if err != nil {
		t.Fatal(err)
	}
	otherCA, err := pki.NewCA("the next release test CA")
	if err != nil {
		t.Fatal(err)
	}
	verified := func(ca *pki.CA) func(*service.Database) {
		return func(db *service.Database) { db.SSLMode, db.CACert = "verify-full", string(ca.CertPEM) }
	}
	onExternal := external(func(*service.Database) {})
	for what, next := range map[string][]string{
		"host":    external(func(db *service.Database) { db.Host = "db2.example.com" }),
		"sslmode": external(func(db *service.Database) { db.SSLMode = "require" }),
		"appUser": external(func(db *service.Database) { db.AppUser = "svc" }),
		"port":    external(func(db *service.Database) { db.Port = 6432 }),
		"name":    external(func(db *service.Database) { db.Name = "other" }),
	} {
		if slices.Equal(onExternal, next) {
			t.Errorf("a new database %s kept the replicas %v: they would go on with the old DATABASE_URL", what, next)
		}
	}
	if slices.Equal(external(verified(ca)), external(verified(otherCA))) {
		t.Error("a new database CA certificate kept the replicas")
	}
	if slices.Equal(onTraefik, newBodyLimit) {
		t.Errorf("a new proxy.bodyLimit behind Traefik kept the replicas %v: their labels would change in place", newBodyLimit)
	}
	for what, next := range map[string][]string{"image": newImage, "env": newEnv, "secret": newSecret, "readyPath": newReadyPath} {
		if slices.Equal(first, next) || len(next) != 2 {
			t.Errorf("a new %s kept the names %v (create-before-delete needs new ones)", what, next)
		}
	}
	// The passwords themselves are not in the names: only the digest the
	// stack derives from them with its own key (stacks' tests).
	rotated := names(mustDeployDev(t, func(a *singleserver.Args) { a.Service.Database.Password = secret("rotated-password") }))
	for _, n := range append(first, rotated...) {
		if strings.Contains(n, "rotated") || strings.Contains(n, mocktest.TestPassword) {
			t.Errorf("a container name shows a secret: %s", n)
		}
	}
}

func TestProxyConfigAndTLS(t *testing.T) {
	rec := mustDeployDev(t, nil)
	proxy := containers(t, rec)["proxy"][0]
	proxy.Equal(t, "entrypoints", []any{"/bin/sh", "/etc/nginx/fastapi-infra/entrypoint.sh"})
	proxy.Equal(t, "uploads[0].file", "/etc/nginx/fastapi-infra/nginx.conf")
	conf := proxy.Str(t, "uploads[0].content")
	proxy.Equal(t, "capabilities.drops", []any{"ALL"})
	proxy.Equal(t, "capabilities.adds", []any{"CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_SETGID", "CAP_SETUID"}) // as the engine reports them
	proxy.Equal(t, "securityOpts", []any{"no-new-privileges:true"})
	for _, want := range []string{"server fastapi-app:8000 max_fails=1 fail_timeout=3s;", "keepalive_timeout 4s;", "ssl_protocols TLSv1.2 TLSv1.3;", "return 301 https://$host:8443$request_uri;",
		// Unknown host names get nothing; /metrics is not public.
		"ssl_reject_handshake on;", "return 444;",
		// Per client address, from proxy.rateLimit and proxy.connLimit.
		"rate=100r/s;", "limit_req zone=perclient burst=200 nodelay;", "limit_conn perclientconn 100;", "location = /metrics {\n            return 404;"} {
		if !strings.Contains(conf, want) {
			t.Errorf("nginx.conf lacks %q", want)
		}
	}
	proxy.Equal(t, "volumes[0].containerPath", "/etc/nginx/tls/")
	proxy.Equal(t, "healthcheck.interval", "3s")
	proxy.Equal(t, "envs", []any{"TLS_MODE=self-signed", "DOMAIN=localhost", "UPSTREAM_HOST=fastapi-app", "UPSTREAM_PORT=8000"})
	proxyRuntime(t, proxy)
}

// proxyRuntime checks what nginx and Traefik share: the restart policy,
// the limits and log rotation, and the wait until healthy.
func proxyRuntime(t *testing.T, proxy mocktest.Resource) {
	t.Helper()
	proxy.Equal(t, "restart", "unless-stopped")
	proxy.Equal(t, "memory", 256)
	proxy.Equal(t, "logDriver", "json-file")
	proxy.Equal(t, "logOpts", map[string]any{"max-size": "10m", "max-file": "3"})
	proxy.Equal(t, "stopTimeout", 30)
	proxy.Equal(t, "wait", true)
	proxy.Equal(t, "waitTimeout", 60)
	proxy.Equal(t, "ports[0].internal", 80)
}

func TestTraefikWithACME(t *testing.T) {
	rec := mustDeployDev(t, withTraefikACME)
	byRole := containers(t, rec)
	proxy := byRole["proxy"][0]
	cmd := fmt.Sprint(proxy.Get(t, "command"))
	for _, want := range []string{"--certificatesresolvers.letsencrypt.acme.email=ops@example.com", "--entrypoints.web.http.redirections.entrypoint.to=websecure", "--providers.docker.exposedbydefault=false",
		// A gone replica's address must not hold requests for Go's 30 s
		// dial timeout (the real-Docker release test lost 5-8% without).
		"--serverstransport.forwardingtimeouts.dialtimeout=500ms", "--providers.providersthrottleduration=500ms",
		// Warnings reach the log, not only errors.
		"--log.level=WARN"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("traefik command lacks %s", want)
		}
	}
	if !strings.Contains(cmd, "--certificatesresolvers.letsencrypt.acme.caserver=https://acme-v02.api.letsencrypt.org/directory") || strings.Contains(cmd, "cacertificates") {
		t.Errorf("traefik command %s: want Let's Encrypt production and the system roots by default", cmd)
	}
	if proxy.Has("uploads[0]") {
		t.Error("an ACME CA file is uploaded though tls.acmeCA is empty")
	}
	proxyRuntime(t, proxy)
	traefikReadsTheFilteredAPI(t, rec, proxy)
	if !rec.Named(t, "fastapi-acme").RetainOnDelete {
		t.Error("the ACME volume is not retained")
	}
	labels := fmt.Sprint(byRole["app"][0].Get(t, "labels"))
	for _, want := range []string{"label:traefik.http.routers.fastapi.rule value:Host(`api.example.com`) && !Path(`/metrics`)", "traefik.http.routers.fastapi.tls.certresolver",
		"label:traefik.http.routers.fastapi.middlewares value:fastapi-retry,fastapi-body,fastapi-hsts",
		"label:traefik.http.middlewares.fastapi-retry.retry.attempts value:6",
		// proxy.bodyLimit 10m, as nginx's client_max_body_size.
		"label:traefik.http.middlewares.fastapi-body.buffering.maxrequestbodybytes value:10485760",
		"label:traefik.http.middlewares.fastapi-hsts.headers.stsseconds value:63072000",
		"label:fastapi-infra.service value:fastapi"} {
		if !strings.Contains(labels, want) {
			t.Errorf("app labels lack %s: %s", want, labels)
		}
	}
	// No active check of Traefik's own: it takes a replica out on one
	// slow answer (Docker's healthcheck, with its three failures in a row,
	// is the readiness Traefik follows).
	if strings.Contains(labels, "loadbalancer.healthcheck") {
		t.Errorf("app labels set Traefik's active health check: %s", labels)
	}
	// Nor its passive one: it counts the app's own 5xx as failures and
	// took healthy replicas out.
	if strings.Contains(labels, "passivehealthcheck") {
		t.Errorf("app labels set Traefik's passive health check: %s", labels)
	}
	// Only this service's containers, whatever other stacks on the host
	// label theirs.
	if !strings.Contains(cmd, "--providers.docker.constraints=Label(`fastapi-infra.service`,`fastapi`)") {
		t.Errorf("traefik command %s: the Docker provider is not constrained to this service", cmd)
	}
	proxy.Equal(t, "capabilities.drops", []any{"ALL"})
	proxy.Equal(t, "capabilities.adds", []any{"CAP_NET_BIND_SERVICE"})
}

// traefikReadsTheFilteredAPI: Traefik, which faces the internet, never
// holds the engine's socket (read-only limits nothing: one socket reads and
// writes); it reads the Docker API through the filter's socket, and only
// the filter, with no network, mounts the engine's.
func traefikReadsTheFilteredAPI(t *testing.T, rec *mocktest.Recorder, proxy mocktest.Resource) {
	t.Helper()
	if vols := fmt.Sprint(proxy.Get(t, "volumes")); strings.Contains(vols, "docker.sock") {
		t.Errorf("Traefik mounts the engine's socket: %s", vols)
	}
	proxy.Equal(t, "volumes[0].volumeName", "fastapi-docker-api")
	proxy.Equal(t, "volumes[0].containerPath", "/run/docker-api")
	if cmd := fmt.Sprint(proxy.Get(t, "command")); !strings.Contains(cmd, "--providers.docker.endpoint=unix:///run/docker-api/docker.sock") {
		t.Errorf("Traefik's Docker provider does not use the filter: %s", cmd)
	}
	if !proxy.DependsOn("fastapi-docker-api") {
		t.Error("Traefik starts before its Docker API filter")
	}
	filters := containers(t, rec)["docker-api"]
	if len(filters) != 1 {
		t.Fatalf("%d Docker API filters, want 1", len(filters))
	}
	f := filters[0]
	f.Equal(t, "networkMode", "none")
	f.Equal(t, "volumes[0].hostPath", "/var/run/docker.sock")
	f.Equal(t, "volumes[1].volumeName", "fastapi-docker-api")
	f.Equal(t, "capabilities.drops", []any{"ALL"})
	f.Equal(t, "capabilities.adds", []any{"CAP_SETGID"})
	f.Equal(t, "securityOpts", []any{"no-new-privileges:true"})
	f.Equal(t, "restart", "unless-stopped")
	f.Equal(t, "memory", 32)
	conf := f.Str(t, "uploads[0].content")
	for _, want := range []string{"listen unix:/run/docker-api/docker.sock;", "proxy_pass http://unix:/var/run/docker.sock;", "map $request_uri $readable"} {
		if !strings.Contains(conf, want) {
			t.Errorf("the filter's nginx.conf lacks %q", want)
		}
	}
	// Behind nginx there is no filter.
	if got := containers(t, mustDeployDev(t, nil))["docker-api"]; len(got) != 0 {
		t.Errorf("the nginx proxy's stack runs a Docker API filter")
	}
}

func TestTraefikWithAPrivateACMEServer(t *testing.T) {
	const ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	rec := mustDeployDev(t, func(a *singleserver.Args) {
		withTraefikACME(a)
		a.Service.Domain = "api.example.test"
		a.Service.TLS.ACMEServer, a.Service.TLS.ACMECA = "https://ca.example.test/acme/directory", ca
	})
	proxy := containers(t, rec)["proxy"][0]
	cmd := fmt.Sprint(proxy.Get(t, "command"))
	for _, want := range []string{
		"--certificatesresolvers.letsencrypt.acme.caserver=https://ca.example.test/acme/directory",
		"--certificatesresolvers.letsencrypt.acme.cacertificates=/etc/traefik/acme-ca.pem",
		"--certificatesresolvers.letsencrypt.acme.casystemcertpool=true",
	} {
		if !strings.Contains(cmd, want) {
			t.Errorf("traefik command lacks %s", want)
		}
	}
	proxy.Equal(t, "uploads[0].file", "/etc/traefik/acme-ca.pem")
	proxy.Equal(t, "uploads[0].content", ca)
}

func TestPrometheusAndLogDriver(t *testing.T) {
	rec := mustDeployDev(t, func(a *singleserver.Args) {
		withMonitoring(a)
		a.LogDriver, a.LogOptions = "fluentd", map[string]string{"fluentd-address": "10.0.0.5:24224"}
	})
	byRole := containers(t, rec)
	if len(byRole["prometheus"]) != 1 {
		t.Fatalf("want one Prometheus container, got %v", byRole["prometheus"])
	}
	prom := byRole["prometheus"][0]
	prom.Equal(t, "ports[0].ip", "127.0.0.1")
	prom.Equal(t, "ports[0].external", 9090)
	prom.Equal(t, "networksAdvanced[0].name", "fastapi-private")
	prom.Equal(t, "uploads[0].file", "/etc/prometheus/fastapi-infra/prometheus.yml")
	if conf := prom.Str(t, "uploads[0].content"); !strings.Contains(conf, "names: [fastapi-app]") || !strings.Contains(conf, "job_name: fastapi") {
		t.Errorf("prometheus.yml:\n%s", conf)
	}
	if rules := prom.Str(t, "uploads[1].content"); !strings.Contains(rules, "FastAPIServiceDown") || !strings.Contains(rules, `job=\"fastapi\"`) && !strings.Contains(rules, `job="fastapi"`) {
		t.Errorf("rules.yml:\n%s", rules)
	}
	if !rec.Named(t, "fastapi-prometheus-data").RetainOnDelete {
		t.Error("Prometheus's volume is not retained")
	}
	for _, c := range rec.ByType(containerType) {
		c.Equal(t, "logDriver", "fluentd")
		c.Equal(t, "logOpts", map[string]any{"fluentd-address": "10.0.0.5:24224"})
	}
	// Off by default in dev: no Prometheus.
	if n := len(containers(t, mustDeployDev(t, nil))["prometheus"]); n != 0 {
		t.Errorf("%d Prometheus containers with monitoring off", n)
	}
}

// TestLogsGoToOnePlace: with logging.aggregate, VictoriaLogs runs first
// (its API and syslog port on the host's loopback only, its lines on a
// retained volume, its own log in json-file), and every other container
// logs to it over UDP syslog, tagged with its name, after it exists.
func TestLogsGoToOnePlace(t *testing.T) {
	rec := mustDeployDev(t, func(a *singleserver.Args) {
		withMonitoring(a)
		a.Logs = &singleserver.Logs{Image: "fastapi-infra-victoria-logs:1.52.1", Retention: "7d", LocalPort: 9428, SyslogPort: 5140}
	})
	store := rec.Named(t, "fastapi-logs")
	store.Equal(t, "command", []any{"-storageDataPath=/victoria-logs-data", "-retentionPeriod=7d", "-httpListenAddr=:9428", "-syslog.listenAddr.udp=:5140"})
	store.Equal(t, "ports[0].ip", "127.0.0.1")
	store.Equal(t, "ports[0].external", 9428)
	store.Equal(t, "ports[1].ip", "127.0.0.1")
	store.Equal(t, "ports[1].external", 5140)
	store.Equal(t, "ports[1].protocol", "udp")
	store.Equal(t, "logDriver", "json-file")
	store.Equal(t, "readOnly", true)
	// The official image is distroless: no user but its own (root, with
	// no capabilities) can write its new volume, and nothing in it can
	// probe its health, so nothing may wait for one.
	if store.Has("user") || store.Has("healthcheck.tests[0]") || store.Has("wait") && store.Get(t, "wait") == true {
		t.Errorf("the log store needs a user, a probe or a wait its distroless image cannot give: %v", store.Inputs)
	}
	store.Equal(t, "capabilities.drops", []any{"ALL"})
	if !rec.Named(t, "fastapi-logs-data").RetainOnDelete {
		t.Error("the log store's volume is not retained")
	}
	n := 0
	for _, c := range rec.ByType(containerType) {
		if c.Name == "fastapi-logs" {
			continue
		}
		n++
		c.Equal(t, "logDriver", "syslog")
		c.Equal(t, "logOpts", map[string]any{"syslog-address": "udp://127.0.0.1:5140", "syslog-format": "rfc5424micro", "tag": "{{.Name}}"})
		if !c.DependsOn("fastapi-logs") {
			t.Errorf("%s may start before the log store", c.Name)
		}
	}
	if n < 8 {
		t.Errorf("only %d containers log to the store", n)
	}
	// Off by default: each container keeps its json-file log.
	if _, ok := containers(t, mustDeployDev(t, nil))["logs"]; ok {
		t.Error("a log store with logging.aggregate off")
	}
}

// TestAlertmanagerDeliversTheAlerts: with monitoring on, Alertmanager runs
// beside Prometheus with the stack's receivers in a secret configuration,
// its UI on the host's loopback, its silences on a retained volume, and
// Prometheus sends it the alerts with the stack's labels.
func TestAlertmanagerDeliversTheAlerts(t *testing.T) {
	const hook = "https://hooks.example.com/services/T0K3N"
	rec := mustDeployDev(t, func(a *singleserver.Args) {
		withMonitoring(a)
		a.Monitoring.Alertmanager.Receivers.WebhookURL = hook
	})
	byRole := containers(t, rec)
	if len(byRole["alertmanager"]) != 1 {
		t.Fatalf("want one Alertmanager container, got %v", byRole["alertmanager"])
	}
	am := byRole["alertmanager"][0]
	rec.Named(t, "fastapi-alertmanager-image").Equal(t, "name", "fastapi-infra-alertmanager:0.25")
	am.Equal(t, "ports[0].ip", "127.0.0.1")
	am.Equal(t, "ports[0].external", 9093)
	am.Equal(t, "networksAdvanced[0].name", "fastapi-private")
	am.Equal(t, "capabilities.drops", []any{"ALL"})
	am.Equal(t, "uploads[0].file", "/etc/alertmanager/fastapi-infra/alertmanager.yml")
	if _, secret, _ := am.At("uploads[0].content"); !secret {
		t.Error("alertmanager.yml, which holds the receivers' URLs, is not a secret")
	}
	if conf := am.Str(t, "uploads[0].content"); !strings.Contains(conf, "url: "+hook) || !strings.Contains(conf, "send_resolved: true") {
		t.Errorf("alertmanager.yml:\n%s", conf)
	}
	if !rec.Named(t, "fastapi-alertmanager-data").RetainOnDelete {
		t.Error("Alertmanager's volume (silences, notification log) is not retained")
	}
	prom := byRole["prometheus"][0]
	if conf := prom.Str(t, "uploads[0].content"); !strings.Contains(conf, "targets: [fastapi-alertmanager:9093]") || !strings.Contains(conf, `stack: "dev"`) {
		t.Errorf("prometheus.yml does not send the alerts with the stack's label:\n%s", conf)
	}
	if !prom.DependsOn("fastapi-alertmanager") {
		t.Error("Prometheus starts before the Alertmanager it sends to")
	}
	for _, c := range rec.ByType(containerType) {
		if v, secret, ok := c.At("envs"); ok && !secret && strings.Contains(fmt.Sprint(v), "T0K3N") {
			t.Errorf("%s has the webhook URL in its environment", c.Name)
		}
	}
}

// TestPostgresExporterWatchesTheDatabase: with monitoring on and a
// container database, postgres_exporter runs beside it on the private
// network only, as the pg_monitor role the roles step makes, with that
// role's password alone in a secrets volume of its own (never the
// owner's), its backup query, a scrape job, and the database rules.
func TestPostgresExporterWatchesTheDatabase(t *testing.T) {
	rec := mustDeployDev(t, withMonitoring)
	byRole := containers(t, rec)
	if len(byRole["postgres"]) != 1 {
		t.Fatalf("want one postgres-exporter container, got roles %v", byRole)
	}
	ex := byRole["postgres"][0]
	ex.Equal(t, "name", "fastapi-postgres-exporter")
	rec.Named(t, "fastapi-postgres-exporter-image").Equal(t, "name", "fastapi-infra-postgres-exporter:0.11")
	envs := fmt.Sprint(ex.Get(t, "envs"))
	for _, want := range []string{"DATA_SOURCE_URI=fastapi-db:5432/postgres?sslmode=disable", "DATA_SOURCE_USER=fastapi_infra_monitor", "DATA_SOURCE_PASS_FILE=/run/secrets/MONITOR_PGPASSWORD", "PG_EXPORTER_EXTEND_QUERY_PATH="} {
		if !strings.Contains(envs, want) {
			t.Errorf("exporter env %s lacks %s", envs, want)
		}
	}
	ex.Equal(t, "volumes[0].volumeName", "fastapi-exporter-secrets")
	exporterSecrets := rec.Named(t, "fastapi-exporter-secrets-"+releaseOfSecrets(t, rec)+"-carrier")
	exporterSecrets.Equal(t, "uploads[0].file", "/run/secrets/MONITOR_PGPASSWORD")
	if exporterSecrets.Has("uploads[1]") {
		t.Error("the exporter's secrets volume holds more than its role's password")
	}
	roles := byRole["db-roles"][0]
	if envs := fmt.Sprint(roles.Get(t, "envs")); !strings.Contains(envs, "MONITOR_USER=fastapi_infra_monitor") || !strings.Contains(envs, "MONITOR_PASSWORD_FILE=/run/secrets/MONITOR_PGPASSWORD") {
		t.Errorf("the roles step does not make the exporter's role: %s", envs)
	}
	if strings.Contains(envs, mocktest.TestPassword) {
		t.Error("the database password is in the exporter's environment")
	}
	if ex.Has("ports[0]") || ex.Has("networksAdvanced[1]") {
		t.Error("the exporter is reachable beyond the private network")
	}
	if q := ex.Str(t, "uploads[0].content"); !strings.Contains(q, "FROM fastapi_infra_backup") {
		t.Errorf("queries.yaml:\n%s", q)
	}
	prom := byRole["prometheus"][0]
	if conf := prom.Str(t, "uploads[0].content"); !strings.Contains(conf, "job_name: fastapi-postgres") || !strings.Contains(conf, "targets: [fastapi-postgres-exporter:9187]") {
		t.Errorf("prometheus.yml does not scrape the exporter:\n%s", conf)
	}
	rules := prom.Str(t, "uploads[1].content")
	for _, alert := range []string{"PostgresDown", "PostgresConnectionsNearLimit", "PostgresBackupTooOld"} {
		if !strings.Contains(rules, "alert: "+alert) {
			t.Errorf("rules.yml lacks %s", alert)
		}
	}
	// The dev stack backs up daily: too old after 25 hours.
	if !strings.Contains(rules, "> 90000") {
		t.Errorf("the backup age threshold is not the daily schedule's 24 h + 1 h:\n%s", rules)
	}
}

// TestImagesFollowTheirTags: with docker.refreshImages the registry's
// digest of each tag is a pull trigger, so a tag that now names a new
// build (a patched nginx) is pulled on the next up; the dev stack's local
// images are not looked up.
func TestImagesFollowTheirTags(t *testing.T) {
	rec := mustDeployDev(t, func(a *singleserver.Args) { a.RefreshImages = true })
	for _, img := range rec.ByType("docker:index/remoteImage:RemoteImage") {
		img.Equal(t, "pullTriggers", []any{"sha256:registry-digest-of-" + img.Str(t, "name")})
	}
	if n := len(rec.ByType("docker:index/remoteImage:RemoteImage")); n == 0 {
		t.Fatal("no remote images registered")
	}
	for _, img := range mustDeployDev(t, nil).ByType("docker:index/remoteImage:RemoteImage") {
		if img.Has("pullTriggers") {
			t.Errorf("the dev stack's local image %s is looked up in a registry", img.Str(t, "name"))
		}
	}
}

// TestDatabaseBackups: the container database is dumped on db.backup.schedule
// by a container of the database's image into a retained volume, with the
// password only as a file and none of the host's privileges.
func TestDatabaseBackups(t *testing.T) {
	rec := mustDeployDev(t, nil)
	backup := rec.Named(t, "fastapi-backup")
	db := rec.Named(t, "fastapi-db")
	backup.Equal(t, "image", db.Get(t, "image"))
	backup.Equal(t, "entrypoints", toAny(service.BackupCommand()))
	backup.Equal(t, "command", []any{"loop"})
	envs := fmt.Sprint(backup.Get(t, "envs"))
	for _, want := range []string{"BACKUP_SCHEDULE=30 3 * * *", "BACKUP_KEEP=7", "BACKUP_DIR=/backups", "PGHOST=fastapi-db", "PGPORT=5432",
		"PGUSER=app", "PGDATABASE=app", "PGPASSWORD_FILE=/run/secrets/PGPASSWORD"} {
		if !strings.Contains(envs, want) {
			t.Errorf("the backup container's environment lacks %q: %s", want, envs)
		}
	}
	if strings.Contains(envs, mocktest.TestPassword) {
		t.Error("the password is in the backup container's environment")
	}
	backup.Equal(t, "labels[0].label", singleserver.RoleLabel)
	backup.Equal(t, "labels[0].value", singleserver.BackupRole)
	backup.Equal(t, "volumes[1].containerPath", service.BackupDir)
	backup.Equal(t, "volumes[1].volumeName", "fastapi-backups")
	backup.Equal(t, "volumes[0].readOnly", true)
	backup.Equal(t, "capabilities.drops", []any{"ALL"})
	backup.Equal(t, "readOnly", true)
	backup.Equal(t, "restart", "unless-stopped")
	if !backup.DependsOn("fastapi-db") {
		t.Error("the backup container does not wait for the database")
	}
	if !rec.Named(t, "fastapi-backups").RetainOnDelete {
		t.Error("the backups volume is not retained on delete")
	}
	// The password reaches the volume as a secret upload through the carrier.
	carrier := rec.Named(t, "fastapi-db-secrets-"+releaseOfSecrets(t, rec)+"-carrier")
	carrier.Equal(t, "volumes[0].volumeName", "fastapi-db-secrets")
	carrier.Equal(t, "uploads[0].file", "/run/secrets/APP_LOGIN")
	carrier.Equal(t, "uploads[0].content", "app_rw_"+releaseOfSecrets(t, rec))
	carrier.Equal(t, "uploads[1].file", "/run/secrets/APP_PGPASSWORD")
	carrier.Equal(t, "uploads[2].file", "/run/secrets/MONITOR_PGPASSWORD")
	carrier.Equal(t, "uploads[3].file", "/run/secrets/PGPASSWORD")
	for i := range 4 {
		if _, secret, _ := carrier.At(fmt.Sprintf("uploads[%d].content", i)); !secret {
			t.Errorf("the password upload %d is not secret", i)
		}
	}

	for name, edit := range map[string]func(*singleserver.Args){
		"no schedule":       func(a *singleserver.Args) { a.Service.Database.Backup.Schedule = "" },
		"external database": withExternalDatabase,
	} {
		for _, c := range mustDeployDev(t, edit).ByType(containerType) {
			if strings.Contains(c.Name, "backup") {
				t.Errorf("%s: a backup container %s is created", name, c.Name)
			}
		}
	}
}

// releaseOfSecrets finds the secrets id in the name of the carrier that
// writes the database's password files.
func releaseOfSecrets(t *testing.T, rec *mocktest.Recorder) string {
	t.Helper()
	for _, c := range rec.ByType(containerType) {
		if id, ok := strings.CutPrefix(c.Name, "fastapi-db-secrets-"); ok {
			return strings.TrimSuffix(id, "-carrier")
		}
	}
	t.Fatal("no carrier of the database's password files")
	return ""
}

// TestRotationKeepsTheDatabaseRunning: a new dbPassword or app password
// (a new secrets digest) replaced the database container, since its
// password files were its own uploads, and PostgreSQL restarted under the
// running release (2 of 164 requests failed at 10 req/s on the real
// engine). Now the database's inputs do not change: a new carrier
// rewrites the files of its secrets volume, the roles step runs again
// (ALTER ROLE), and what read the old files at its start (the backup
// loop, the exporter) is made anew.
func TestRotationKeepsTheDatabaseRunning(t *testing.T) {
	withBoth := func(digest, pw string) func(*singleserver.Args) {
		return func(a *singleserver.Args) {
			withMonitoring(a)
			a.SecretsDigest = digest
			a.Service.Database.Password = secret(pw)
			a.Service.Database.AppPassword = secret(pw + "-app")
		}
	}
	before := mustDeployDev(t, withBoth("0123456789", "first-password"))
	after := mustDeployDev(t, withBoth("9876543210", "rotated-password"))
	inputs := func(rec *mocktest.Recorder, name string) string {
		r := rec.Named(t, name)
		return fmt.Sprint(r.Inputs)
	}
	if a, b := inputs(before, "fastapi-db"), inputs(after, "fastapi-db"); a != b {
		t.Errorf("the database container's inputs change with a rotation, so it is replaced:\nbefore %s\nafter  %s", a, b)
	}
	for _, volume := range []string{"fastapi-db-secrets", "fastapi-db-data"} {
		if a, b := inputs(before, volume), inputs(after, volume); a != b {
			t.Errorf("volume %s changes with a rotation: %s, %s", volume, a, b)
		}
	}
	if releaseOfSecrets(t, before) == releaseOfSecrets(t, after) {
		t.Error("a rotation writes no new password files (the carrier keeps its name)")
	}
	for _, role := range []string{"backup", "postgres-exporter"} {
		if a, b := inputs(before, "fastapi-"+role), inputs(after, "fastapi-"+role); a == b {
			t.Errorf("the %s container keeps the old password it read at its start", role)
		}
	}
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// TestDatabaseRolesAreApplied: dbPassword and the app role reach a running
// database through a one-shot container on the database's socket, once per
// secrets digest, before the migration; the passwords are only files.
func TestDatabaseRolesAreApplied(t *testing.T) {
	name := func(rec *mocktest.Recorder) mocktest.Resource {
		t.Helper()
		found := containers(t, rec)["db-roles"]
		if len(found) != 1 {
			t.Fatalf("want one roles container, got %d", len(found))
		}
		return found[0]
	}
	rec := mustDeployDev(t, nil)
	pw := name(rec)
	script := fmt.Sprint(pw.Get(t, "entrypoints"))
	if !strings.Contains(script, service.SetupRoles) || !strings.Contains(script, "-h /var/run/postgresql") {
		t.Errorf("the roles container does not run the role step over the socket: %s", script)
	}
	envs := fmt.Sprint(pw.Get(t, "envs"))
	for _, want := range []string{"PGUSER=app", "APP_USER=app_rw", "PGDATABASE=app", "PGPASSWORD_FILE=/run/secrets/PGPASSWORD", "APP_PASSWORD_FILE=/run/secrets/APP_PGPASSWORD"} {
		if !strings.Contains(envs, want) {
			t.Errorf("the roles container's env lacks %s: %s", want, envs)
		}
	}
	if strings.Contains(envs+script, mocktest.TestPassword) {
		t.Errorf("the password must arrive as a file only: %s", envs)
	}
	pw.Equal(t, "volumes[0].volumeName", "fastapi-db-secrets")
	pw.Equal(t, "volumes[1].containerPath", "/var/run/postgresql")
	pw.Equal(t, "volumes[1].volumeName", "fastapi-db-socket")
	pw.Equal(t, "networkMode", "none")
	pw.Equal(t, "readOnly", true)
	db := rec.Named(t, "fastapi-db")
	db.Equal(t, "volumes[1].containerPath", "/var/run/postgresql")
	db.Equal(t, "volumes[1].volumeName", "fastapi-db-socket")
	if !pw.DependsOn("fastapi-db") {
		t.Error("the password is set before the database is healthy")
	}
	if migrate := containers(t, rec)["migrate"][0]; !migrate.DependsOn(pw.Name) {
		t.Error("the migration does not wait for the password")
	}
	rotated := name(mustDeployDev(t, func(a *singleserver.Args) { a.SecretsDigest = "9876543210" }))
	if rotated.Name == pw.Name {
		t.Error("a new secrets digest (a new dbPassword) does not run the roles container again")
	}
	external := mustDeployDev(t, withExternalDatabase)
	if n := len(containers(t, external)["db-roles"]) + len(containers(t, external)["db-revoke"]); n != 0 {
		t.Errorf("an external database gets %d roles containers", n)
	}
}

// TestEarlierLoginsAreRevokedAfterTheRelease: each secrets digest has its
// own app login (a member of db.appUser); once the release's replicas are
// healthy, a container of that digest ends the earlier logins when no
// connection uses them. It is started, not waited for: the update removes
// the old replicas only after it exists.
func TestEarlierLoginsAreRevokedAfterTheRelease(t *testing.T) {
	rec := mustDeployDev(t, nil)
	byRole := containers(t, rec)
	if len(byRole["db-revoke"]) != 1 {
		t.Fatalf("want one revoker, got %d", len(byRole["db-revoke"]))
	}
	revoke, id := byRole["db-revoke"][0], releaseOfSecrets(t, rec)
	if revoke.Name != "fastapi-db-revoke-"+id {
		t.Errorf("the revoker %s does not carry the secrets digest %s", revoke.Name, id)
	}
	if script := fmt.Sprint(revoke.Get(t, "entrypoints")); !strings.Contains(script, service.RevokeOldLogins) {
		t.Errorf("the revoker does not run RevokeOldLogins: %s", script)
	}
	envs := fmt.Sprint(revoke.Get(t, "envs"))
	for _, want := range []string{"APP_USER=app_rw", "APP_LOGIN=app_rw_" + id, "PGUSER=app"} {
		if !strings.Contains(envs, want) {
			t.Errorf("the revoker's env lacks %s: %s", want, envs)
		}
	}
	for _, app := range byRole["app"] {
		if !revoke.DependsOn(app.Name) {
			t.Errorf("the revoker does not wait for replica %s", app.Name)
		}
	}
	revoke.Equal(t, "mustRun", false)
	revoke.Equal(t, "networkMode", "none")
	revoke.Equal(t, "readOnly", true)
	if revoke.Has("attach") || revoke.Has("wait") {
		t.Error("the update waits for the revoker, which waits for the update to remove the old replicas")
	}
	roles := byRole["db-roles"][0]
	if envs := fmt.Sprint(roles.Get(t, "envs")); !strings.Contains(envs, "APP_LOGIN=app_rw_"+id) {
		t.Errorf("the roles step does not make the login: %s", envs)
	}
}

// TestReplicasStopInTheirProxysWay: the replicas run uvicorn's workers
// under the replica supervisor: behind Traefik they serve on for the drain after
// SIGTERM; behind nginx they stay up, refusing connections, for the
// linger after uvicorn exited; either is added to the stop timeout.
func TestReplicasStopInTheirProxysWay(t *testing.T) {
	for proxy, want := range map[string]struct {
		edit          func(*singleserver.Args)
		drain, linger int
	}{
		"traefik": {withTraefikACME, singleserver.TraefikDrainSeconds, 0},
		"nginx":   {nil, 0, singleserver.NginxLingerSeconds},
	} {
		for _, app := range containers(t, mustDeployDev(t, want.edit))["app"] {
			cmd := app.Get(t, "command").([]any)
			if len(cmd) < 10 || cmd[0] != "python3" || cmd[2] != singleserver.ReplicaSupervisor || cmd[3] != fmt.Sprint(want.drain) || cmd[4] != fmt.Sprint(want.linger) ||
				cmd[7] != "python3" || cmd[8] != "-c" || cmd[9] != service.AdoptInheritedSocket {
				t.Errorf("%s: %s: command %q is not uvicorn under the replica supervisor (drain %d, linger %d)", proxy, app.Name, cmd, want.drain, want.linger)
			}
			app.Equal(t, "stopTimeout", 30+want.drain+want.linger)
			app.Equal(t, "destroyGraceSeconds", 30+want.drain+want.linger)
		}
	}
}

// TestDockerObjectsAreDeletedBeforeTheyAreReplaced: an explicit
// replacement (`pulumi up --replace`, the driver's rerun of a failed
// migration) created the new container first, and the engine refused its
// name ("The container name ... is already in use"). Not images: they
// are not named objects two cannot share, and replacing one delete-first
// deleted the running replicas first (TestANewImageIsCreatedFirst).
func TestDockerObjectsAreDeletedBeforeTheyAreReplaced(t *testing.T) {
	rec := mustDeployDev(t, withMonitoring)
	for _, r := range rec.All() {
		if r.Type == "docker:index/remoteImage:RemoteImage" || r.Type == "docker:index/image:Image" {
			continue
		}
		if strings.HasPrefix(r.Type, "docker:index/") && !r.DeleteBeforeReplace {
			t.Errorf("%s %s is created before the one it replaces is deleted", r.Type, r.Name)
		}
	}
}
