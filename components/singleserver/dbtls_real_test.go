//go:build e2e

package singleserver

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/service"
	"github.com/fastapi-infra/fastapi-infra/internal/dockerplan"
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
// certificate from a test CA stands in for the managed one, on the private
// network under its own name; the component's migration and replicas (as
// registered) connect with the CA file the component gives them, and the
// connection is TLS. Then, in a replica, the same URL with another CA, and
// with the server's address instead of its name, is refused: libpq really
// verifies, so the positive result is not TLS without a check.
func TestExternalDatabaseVerifiedOnRealDocker(t *testing.T) {
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
	plan := r.plan(args)

	// The networks first, for the stand-in to join.
	if err := r.engine.Apply(r.ctx, dockerplan.Plan{Networks: plan.Networks, Volumes: plan.Volumes}, &r.d); err != nil {
		t.Fatal(err)
	}
	managed := dockerplan.Container{Logical: "managed-db", Name: dbHost, Create: dockerplan.CreateBody{
		Image: r.images["POSTGRES"],
		Env:   []string{"POSTGRES_USER=app", "POSTGRES_DB=app", "POSTGRES_PASSWORD=" + password},
		HostConfig: dockerplan.HostConfig{RestartPolicy: dockerplan.RestartPolicy{Name: "no"}, LogConfig: dockerplan.LogConfig{Type: "json-file"},
			Tmpfs: map[string]string{"/var/lib/postgresql/data": "rw,size=256m"}},
		Networking: &dockerplan.NetworkingConfig{EndpointsConfig: map[string]dockerplan.EndpointSettings{p + "-private": {Aliases: []string{dbHost}}}},
	}, Uploads: []dockerplan.Upload{
		{Path: "/docker-entrypoint-initdb.d/tls.sh", Content: []byte(dbTLSInit), Mode: 0o755},
		{Path: "/etc/dbtls/server.crt", Content: cert, Mode: 0o444}, {Path: "/etc/dbtls/server.key", Content: key, Mode: 0o444},
	}}
	if err := r.engine.Apply(r.ctx, dockerplan.Plan{Containers: []dockerplan.Container{managed}}, &r.d); err != nil {
		t.Fatal(err)
	}
	// Ready once the final server answers over TCP (the entrypoint's first
	// one, which runs the init scripts, listens on its socket only).
	waitFor(t, "the managed database", 60*time.Second, func() error {
		out, code, err := r.engine.Exec(r.ctx, r.d.IDs[dbHost], "pg_isready", "-h", "127.0.0.1", "-U", "app")
		if err == nil && code != 0 {
			err = fmt.Errorf("pg_isready: exit %d %s", code, out)
		}
		return err
	})

	r.up(plan) // the migration, then the replicas, connect with verify-full
	app := r.apps()[0]
	check := func(url string) string {
		t.Helper()
		out, _, err := r.engine.Exec(r.ctx, r.d.IDs[app], "python3", "-c", `import sys, psycopg2
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
	if out, code, err := r.engine.Exec(r.ctx, r.d.IDs[app], "python3", "-c", "import sys; open('/tmp/other-ca.pem', 'w').write(sys.argv[1])", string(other.CertPEM)); err != nil || code != 0 {
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
