package singleserver_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/service"
	"github.com/fastapi-infra/fastapi-infra/components/singleserver"
	"github.com/fastapi-infra/fastapi-infra/internal/mocktest"
)

// withRepository gives the dev stack an off-host backup repository.
func withRepository(a *singleserver.Args) {
	secret := func(s string) pulumi.StringOutput { return pulumi.ToSecret(pulumi.String(s)).(pulumi.StringOutput) }
	a.Service.Database.Backup.Repository = service.Repository{
		Endpoint: "https://objects.example.internal:9000", Bucket: "db-backups", Region: "eu-west-1", Path: "/fastapi-infra/fastapi-dev",
		PathStyle: true, CACert: "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n", HostAddress: "10.0.0.5",
		AccessKey: secret("AKIAEXAMPLE"), SecretKey: secret("s3-secret-key-example"), EncryptionKey: secret("repository-passphrase-example"),
		ArchiveTimeout: 60,
	}
}

// TestDatabaseArchivesToTheRepository: with db.backup.s3.*, the database
// archives every WAL segment with pgBackRest (archive_timeout 60 s), its
// configuration a secret file beside the passwords; it and the backup
// container (alone) reach the store through a network with a way out, the
// store's name in their /etc/hosts; the backup container reads the data
// files as their owner, the volume read-only, and its keys never reach an
// environment or a command line.
func TestDatabaseArchivesToTheRepository(t *testing.T) {
	rec := mustDeployDev(t, withRepository)
	db := rec.Named(t, "fastapi-db")
	command := fmt.Sprint(db.Get(t, "command"))
	for _, want := range []string{"postgres", "archive_mode=on", "archive_command=pgbackrest --config=/run/secrets/REPOSITORY_CONF --stanza=main archive-push %p", "archive_timeout=60"} {
		if !strings.Contains(command, want) {
			t.Errorf("the database's command lacks %q: %s", want, command)
		}
	}
	archive := rec.Named(t, "fastapi-archive")
	archive.Equal(t, "name", "fastapi-archive")
	if archive.Has("internal") && archive.Get(t, "internal") == true {
		t.Error("the archive network is internal: the database cannot reach the store")
	}
	for _, name := range []string{"fastapi-db", "fastapi-backup"} {
		c := rec.Named(t, name)
		c.Equal(t, "hosts[0].host", "objects.example.internal")
		c.Equal(t, "hosts[0].ip", "10.0.0.5")
		var nets []string
		for _, n := range c.Get(t, "networksAdvanced").([]any) {
			nets = append(nets, n.(map[string]any)["name"].(string))
		}
		if !slices.Contains(nets, "fastapi-archive") || !slices.Contains(nets, "fastapi-private") {
			t.Errorf("%s is on %v, want the private and archive networks", name, nets)
		}
		all := fmt.Sprint(c.Get(t, "envs"), c.Get(t, "command"))
		for _, secret := range []string{"AKIAEXAMPLE", "s3-secret-key-example", "repository-passphrase-example"} {
			if strings.Contains(all, secret) {
				t.Errorf("%s has a repository secret in its environment or command line", name)
			}
		}
	}
	for _, c := range rec.ByType(containerType) {
		if c.Name == "fastapi-db" || c.Name == "fastapi-backup" || !c.Has("networksAdvanced") {
			continue
		}
		if strings.Contains(fmt.Sprint(c.Get(t, "networksAdvanced")), "fastapi-archive") {
			t.Errorf("%s is on the archive network", c.Name)
		}
	}

	backup := rec.Named(t, "fastapi-backup")
	backup.Equal(t, "user", "999:999")
	envs := fmt.Sprint(backup.Get(t, "envs"))
	for _, want := range []string{"BACKUP_REPOSITORY=pgbackrest", "PGHOST=/var/run/postgresql", "STATUS_DIR=/tmp", "REPOSITORY_CONF_FILE=/run/secrets/REPOSITORY_CONF"} {
		if !strings.Contains(envs, want) {
			t.Errorf("the backup container's environment lacks %q: %s", want, envs)
		}
	}
	backup.Equal(t, "volumes[2].containerPath", "/var/lib/postgresql/data")
	backup.Equal(t, "volumes[2].volumeName", "fastapi-db-data")
	backup.Equal(t, "volumes[2].readOnly", true)
	backup.Equal(t, "volumes[3].containerPath", "/var/run/postgresql")

	carrier := rec.Named(t, "fastapi-db-secrets-"+releaseOfSecrets(t, rec)+"-carrier")
	found := map[string]string{}
	for i := range 6 {
		file := carrier.Str(t, fmt.Sprintf("uploads[%d].file", i))
		if _, secret, _ := carrier.At(fmt.Sprintf("uploads[%d].content", i)); !secret {
			t.Errorf("the upload %s is not secret", file)
		}
		found[file] = carrier.Str(t, fmt.Sprintf("uploads[%d].content", i))
	}
	conf := found["/run/secrets/REPOSITORY_CONF"]
	for _, want := range []string{"repo1-s3-endpoint=objects.example.internal\n", "repo1-storage-port=9000\n", "repo1-s3-bucket=db-backups\n",
		"repo1-s3-uri-style=path\n", "repo1-s3-key=AKIAEXAMPLE\n", "repo1-cipher-type=aes-256-cbc\n", "repo1-cipher-pass=repository-passphrase-example\n",
		"repo1-retention-full=7\n", "repo1-storage-ca-file=/run/secrets/REPOSITORY_CA_CERT\n", "repo1-path=/fastapi-infra/fastapi-dev\n",
		"[main]\npg1-path=/var/lib/postgresql/data\npg1-socket-path=/var/run/postgresql\npg1-port=5432\npg1-user=app\n"} {
		if !strings.Contains(conf, want) {
			t.Errorf("pgbackrest.conf lacks %q:\n%s", want, conf)
		}
	}
	if !strings.Contains(found["/run/secrets/REPOSITORY_CA_CERT"], "BEGIN CERTIFICATE") {
		t.Errorf("the store's CA is not beside the configuration: %v", found)
	}
	if strings.Contains(conf, mocktest.TestPassword) {
		t.Error("the database password is in pgbackrest.conf")
	}

	// Without a repository nothing of it: no archive network, no command.
	plain := mustDeployDev(t, nil)
	for _, n := range plain.All() {
		if n.Name == "fastapi-archive" {
			t.Error("an archive network without a repository")
		}
	}
	if plain.Named(t, "fastapi-db").Has("command") {
		t.Errorf("the database has a command without a repository: %v", plain.Named(t, "fastapi-db").Get(t, "command"))
	}
}
