package dockerplan

import (
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/service"
	"github.com/fastapi-infra/fastapi-infra/components/singleserver"
	"github.com/fastapi-infra/fastapi-infra/internal/mocktest"
)

// testArgs is a single server as the real-Docker tests run it.
func testArgs() singleserver.Args {
	pw := pulumi.ToSecret(pulumi.String("pw-1")).(pulumi.StringOutput)
	cpu, _ := service.ParseCPU("500m")
	mem, _ := service.ParseMemory("512Mi")
	return singleserver.Args{
		Service: service.Spec{
			Name: "t1", Image: service.Image{Ref: "app:1"}, Module: "app.main:app", Port: 8000, Workers: 2, Replicas: 2,
			ProxyHeaders: true, ShutdownGraceSeconds: 10, Domain: "localhost", TLS: service.TLS{Mode: service.TLSSelfSigned},
			Health:    service.Health{LivePath: "/health/live", ReadyPath: "/health/ready"},
			Migration: service.Migration{Strategy: service.MigrationJob, Command: []string{"alembic", "upgrade", "head"}},
			Resources: service.Resources{CPU: cpu, Memory: mem},
			Database: service.Database{Mode: service.DatabaseContainer, Image: "postgres:15", Port: 5432, Name: "app", User: "app",
				Password: pw, AppUser: "app_rw", AppPassword: pw, SSLMode: "disable", RetainOnDelete: true},
		},
		Subnet: "172.31.9.0/24", ProxyImage: "nginx:1", HTTPPort: 18080, HTTPSPort: 18443, SecretsDigest: "d1",
	}
}

func record(t *testing.T, args singleserver.Args) Plan {
	t.Helper()
	rec := &mocktest.Recorder{Outputs: Outputs}
	err := mocktest.Run(t, "real", mocktest.Config{Values: map[string]string{}}, func(ctx *pulumi.Context) error {
		_, err := singleserver.New(ctx, args.Service.Name, &args)
		return err
	}, rec)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := FromRecording(rec.All())
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

func TestPlanOfTheSingleServer(t *testing.T) {
	p := record(t, testArgs())
	var order []string
	byRole := map[string]Container{}
	for _, c := range p.Containers {
		// The name without the prefix, the replica number and the ids.
		var parts []string
		for _, part := range strings.Split(strings.TrimPrefix(c.Name, "t1-"), "-") {
			if len(part) != 10 && len(part) > 1 {
				parts = append(parts, part)
			}
		}
		role := strings.Join(parts, "-")
		order = append(order, role)
		byRole[role] = c
	}
	// An order the provider could take (dependencies first): the
	// database and its password file, the password applied, the app's
	// secrets, the migration, the replicas, then the proxy.
	if want := []string{"db", "db-secrets-carrier", "db-roles", "migration-secrets-carrier", "migrate", "secrets-carrier", "app", "app", "proxy"}; !slices.Equal(order, want) {
		t.Fatalf("containers in order %v, want %v", order, want)
	}
	if len(p.Networks) != 2 || !p.Networks[0].Internal && !p.Networks[1].Internal {
		t.Errorf("networks %+v: want the internal private one and the edge", p.Networks)
	}
	app := byRole["app"]
	if app.Create.User != "10001:10001" || !slices.Contains(app.Create.HostConfig.CapDrop, "ALL") || app.Create.HostConfig.Memory != 512<<20 ||
		app.Create.HostConfig.NanoCPUs != 5e8 || app.Create.Healthcheck == nil || !app.Wait {
		t.Errorf("an app replica's create: %+v", app.Create)
	}
	carrier := byRole["secrets-carrier"]
	if !slices.ContainsFunc(carrier.Uploads, func(u Upload) bool {
		return u.Path == "/run/secrets/DATABASE_URL" && strings.Contains(string(u.Content), ":pw-1@") && u.Mode == 0o444
	}) || !carrier.NoStart || carrier.Create.HostConfig.NetworkMode != "none" {
		t.Errorf("the secrets' carrier: %+v", carrier)
	}
	if len(app.Uploads) > 0 || !slices.ContainsFunc(app.Create.HostConfig.Binds, func(b string) bool { return strings.HasSuffix(b, ":/run/secrets:ro") }) {
		t.Errorf("the app's secret files: uploads %+v, binds %v", app.Uploads, app.Create.HostConfig.Binds)
	}
	// Volumes not retained on delete go with the deployment; the
	// database's stays.
	if !slices.ContainsFunc(p.Scratch, func(v string) bool { return strings.HasPrefix(v, "t1-secrets-") }) || slices.Contains(p.Scratch, "t1-db-data") {
		t.Errorf("scratch volumes %v: want the release's secrets, not the database's", p.Scratch)
	}
	if !byRole["migrate"].OneShot || byRole["migrate"].Create.HostConfig.RestartPolicy.Name != "no" {
		t.Errorf("the migration is not a one-shot: %+v", byRole["migrate"])
	}
	proxy := byRole["proxy"]
	if len(proxy.Connect) != 1 || proxy.Create.Networking == nil || proxy.Create.Networking.EndpointsConfig["t1-private"].IPAMConfig.IPv4Address != "172.31.9.254" {
		t.Errorf("the proxy's networks: %+v %+v", proxy.Create.Networking, proxy.Connect)
	}
	if b := proxy.Create.HostConfig.PortBindings["443/tcp"]; len(b) != 1 || b[0].HostPort != "18443" {
		t.Errorf("the proxy's published ports: %+v", proxy.Create.HostConfig.PortBindings)
	}
}

// TestUntranslatedInputFails: an input the component sets that the plan
// does not carry to the engine is an error, not a silent difference.
func TestUntranslatedInputFails(t *testing.T) {
	rec := &mocktest.Recorder{Outputs: Outputs}
	err := mocktest.Run(t, "real", mocktest.Config{Values: map[string]string{}}, func(ctx *pulumi.Context) error {
		_, err := dockerContainer(ctx)
		return err
	}, rec)
	if err != nil {
		t.Fatal(err)
	}
	_, err = FromRecording(rec.All())
	if err == nil || !strings.Contains(err.Error(), "inputs [privileged] are not translated to the Engine API") {
		t.Fatalf("FromRecording: %v", err)
	}
}
