//go:build e2e

package singleserver

import (
	"strings"
	"testing"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/service"
	"github.com/fastapi-infra/fastapi-infra/internal/pki"
)

// dbTLSInit turns on TLS in a new PostgreSQL data directory with the
// certificate uploaded beside it (the server takes a key only when its own
// user owns it, 0600, so it is copied in as that user).
const dbTLSInit = `set -eu
install -m 600 /etc/dbtls/server.key "$PGDATA/server.key"
install -m 644 /etc/dbtls/server.crt "$PGDATA/server.crt"
printf "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n" >>"$PGDATA/postgresql.conf"
`

// TestExternalDatabaseVerifiedOnRealDocker: an external database reached
// with db.sslmode verify-full and db.caCert. A PostgreSQL server with a
// certificate from a test CA stands in for the managed one, in the same
// program on a network of its own under its own name; the component's
// migration and replicas also join that network (a transformation, the
// one thing the test adds to them) and connect with the CA file the
// component gives them, and the connection is TLS. Then, in a replica,
// the same URL with another CA, and with the server's address instead of
// its name, is refused: libpq really verifies, so the positive result is
// not TLS without a check.
func TestExternalDatabaseVerifiedOnRealDocker(t *testing.T) {
	t.Parallel() // measures no load: runs beside another such test, after the load tests
	r := newRealServer(t, "dev")
	p := r.prefix
	dbHost := p + "-managed-db"
	ca, err := pki.NewCA("fastapi-infra test managed-database CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue(pki.Subject{CommonName: dbHost, Names: []string{dbHost}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	const password = "managed-db-test-pw"
	args := r.args()
	args.Service.Database = service.Database{Mode: service.DatabaseExternal, Host: dbHost, Port: 5432, Name: "app", User: "app",
		Password: pulumi.ToSecret(pulumi.String(password)).(pulumi.StringOutput), SSLMode: "verify-full", CACert: string(ca.CertPEM)}
	r.extra = func(ctx *pulumi.Context, prov pulumi.ProviderResource) ([]pulumi.ResourceOption, error) {
		net, err := r.fixtureNetwork(ctx, prov, "managed")
		if err != nil {
			return nil, err
		}
		image, err := r.fixtureImage(ctx, prov, "POSTGRES")
		if err != nil {
			return nil, err
		}
		managed, err := docker.NewContainer(ctx, "managed-db", &docker.ContainerArgs{
			Name:  pulumi.String(dbHost),
			Image: image.ImageId,
			Envs:  pulumi.ToStringArray([]string{"POSTGRES_USER=app", "POSTGRES_DB=app", "POSTGRES_PASSWORD_FILE=/etc/dbtls/password"}),
			Tmpfs: pulumi.StringMap{"/var/lib/postgresql/data": pulumi.String("rw,size=256m")},
			Uploads: docker.ContainerUploadArray{
				docker.ContainerUploadArgs{File: pulumi.String("/docker-entrypoint-initdb.d/tls.sh"), Content: pulumi.String(dbTLSInit), Executable: pulumi.Bool(true)},
				docker.ContainerUploadArgs{File: pulumi.String("/etc/dbtls/server.crt"), Content: pulumi.String(string(cert))},
				docker.ContainerUploadArgs{File: pulumi.String("/etc/dbtls/server.key"), Content: pulumi.ToSecret(pulumi.String(string(key))).(pulumi.StringOutput)},
				docker.ContainerUploadArgs{File: pulumi.String("/etc/dbtls/password"), Content: pulumi.ToSecret(pulumi.String(password)).(pulumi.StringOutput)},
			},
			NetworksAdvanced: docker.ContainerNetworksAdvancedArray{docker.ContainerNetworksAdvancedArgs{Name: net.Name, Aliases: pulumi.ToStringArray([]string{dbHost})}},
			// Ready once the final server answers over TCP (the
			// entrypoint's first one, which runs the init scripts,
			// listens on its socket only).
			Healthcheck: docker.ContainerHealthcheckArgs{Tests: pulumi.ToStringArray([]string{"CMD", "pg_isready", "-h", "127.0.0.1", "-U", "app"}),
				Interval: pulumi.String("1s"), Timeout: pulumi.String("3s"), Retries: pulumi.Int(60)},
			Wait: pulumi.Bool(true), WaitTimeout: pulumi.Int(90),
			LogDriver: pulumi.String("json-file"), LogOpts: fixtureLogOpts,
		}, pulumi.Provider(prov))
		if err != nil {
			return nil, err
		}
		// The migration and the replicas reach it by name.
		reaches := func(name string) bool {
			return strings.Contains(name, "-migrate-") || strings.Contains(name, "-app-")
		}
		return []pulumi.ResourceOption{joinNetwork(reaches, net.Name, nil, managed)}, nil
	}
	r.up(args) // the migration, then the replicas, connect with verify-full
	app := r.apps()[0]
	check := func(url string) string {
		t.Helper()
		out, _, err := r.docker.Exec(r.ctx, app, "python3", "-c", `import sys, psycopg2
try:
    c = psycopg2.connect(sys.argv[1]); cur = c.cursor()
    cur.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"); print("connected ssl=%s %s" % cur.fetchone())
    cur.execute("SELECT count(*) FROM alembic_version"); print("migrated:", cur.fetchone()[0])
except psycopg2.OperationalError as e:
    print("refused:", str(e).strip().splitlines()[-1])`, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s -> %s", url[strings.Index(url, "@")+1:], strings.ReplaceAll(strings.TrimSpace(out), "\n", "; "))
		return strings.TrimSpace(out)
	}
	url := r.exec(app, "cat", "/run/secrets/DATABASE_URL")
	if !strings.HasSuffix(url, "?sslmode=verify-full&sslrootcert="+service.CACertFile) {
		t.Fatalf("the replica's DATABASE_URL does not verify with the given CA: ...%s", url[strings.Index(url, "@"):])
	}
	if got := check(url); !strings.HasPrefix(got, "connected ssl=True TLSv1.3") || !strings.Contains(got, "migrated: 1") {
		t.Errorf("with db.caCert: %s", got)
	}

	// Another CA: the server's certificate does not chain to it.
	other, err := pki.NewCA("some other CA")
	if err != nil {
		t.Fatal(err)
	}
	if out, code, err := r.docker.Exec(r.ctx, app, "python3", "-c", "import sys; open('/tmp/other-ca.pem', 'w').write(sys.argv[1])", string(other.CertPEM)); err != nil || code != 0 {
		t.Fatalf("writing the other CA: %v %s", err, out)
	}
	if got := check(strings.Replace(url, service.CACertFile, "/tmp/other-ca.pem", 1)); !strings.Contains(got, "refused:") || !strings.Contains(got, "certificate verify failed") {
		t.Errorf("a server certificate from another CA was not refused: %s", got)
	}
	// The right CA, but not the name the certificate is for.
	ip := strings.TrimSpace(r.exec(app, "python3", "-c", "import socket, sys; print(socket.gethostbyname(sys.argv[1]))", dbHost))
	if got := check(strings.Replace(url, "@"+dbHost+":", "@"+ip+":", 1)); !strings.Contains(got, "refused:") || !strings.Contains(got, "does not match host name") {
		t.Errorf("verify-full accepted a certificate for another name (%s): %s", ip, got)
	}
}
