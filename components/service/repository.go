package service

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Repository is an off-host, encrypted backup repository: S3-compatible
// object storage that pgBackRest archives the database's WAL into and
// takes its scheduled full backups into, so that a database survives the
// loss of its host and can be restored to any second the archive covers.
// Empty Endpoint: none (the scheduled pg_dump into a volume on the same
// host, as before).
//
// Why pgBackRest (and not WAL-G): it is Debian's own package (the image is
// built from Debian's packages; WAL-G is a Go module of its own with cgo
// parts), it is made for exactly this (full, differential and incremental
// backups, WAL archiving, retention, repository encryption, point-in-time
// restore) and it verifies the repository's TLS certificate by default.
type Repository struct {
	// Endpoint is https://host[:port] of the S3 API.
	Endpoint string
	Bucket   string
	Region   string
	// Path is the folder in the bucket that holds this stack's repository.
	Path string
	// PathStyle addresses the bucket in the URL's path (most self-hosted
	// stores) instead of its host name (AWS).
	PathStyle bool
	// CACert is the PEM of a private CA the endpoint's certificate chains
	// to; empty: the system's roots.
	CACert string
	// HostAddress is the endpoint host's IP address when DNS does not
	// know it: the containers that reach the store get it in /etc/hosts.
	HostAddress string
	// AccessKey, SecretKey and EncryptionKey are secrets: the store's
	// credentials and the passphrase the repository is encrypted with
	// (AES-256), which a restore needs too.
	AccessKey, SecretKey, EncryptionKey pulumi.StringOutput
	// ArchiveTimeout is PostgreSQL's archive_timeout in seconds: a WAL
	// segment is archived at least this often while anything is written,
	// so it bounds the writes a host loss takes with it (the RPO).
	ArchiveTimeout int
}

// Enabled says whether the stack has an off-host repository.
func (r Repository) Enabled() bool { return r.Endpoint != "" }

// Host is the endpoint's host name.
func (r Repository) Host() string {
	host, _ := r.hostPort()
	return host
}

// Stanza is pgBackRest's name for the stack's database in its repository
// (one cluster per repository path).
const Stanza = "main"

// PgBackRestConfigFile is where the database and backup containers read
// pgBackRest's configuration: a secret file (it holds the store's keys
// and the encryption passphrase), never an environment variable.
const PgBackRestConfigFile = "/run/secrets/" + PgBackRestConfigName

// PgBackRestConfigName and PgBackRestCAName are the two files' names in
// the secrets folder. Not PGBACKREST_*: a container's NAME_FILE variable
// of that name would be read by pgBackRest as an option of its own.
const (
	PgBackRestConfigName = "REPOSITORY_CONF"
	PgBackRestCAName     = "REPOSITORY_CA_CERT"
)

// PgBackRestCAFile is the repository's CA certificate beside it.
const PgBackRestCAFile = "/run/secrets/" + PgBackRestCAName

// PgBackRest is the start of every pgBackRest command of the stack.
func PgBackRest(command ...string) []string {
	return append([]string{"pgbackrest", "--config=" + PgBackRestConfigFile, "--stanza=" + Stanza}, command...)
}

// ArchiveSettings are the PostgreSQL server settings that archive every WAL
// segment into the repository: `-c` options for the server's command line.
func (r Repository) ArchiveSettings() []string {
	return []string{
		"-c", "archive_mode=on",
		"-c", "archive_command=" + strings.Join(PgBackRest("archive-push", "%p"), " "),
		"-c", fmt.Sprintf("archive_timeout=%d", r.ArchiveTimeout),
	}
}

// PgTarget is where pgBackRest finds the cluster it backs up or restores.
type PgTarget struct {
	DataDir, SocketDir string
	Port               int
	User               string
}

// PgBackRestConfig renders pgbackrest.conf (a secret: it holds the keys).
// keep is how many full backups the repository keeps; the WAL they need is
// kept with them, older WAL expires.
func (r Repository) PgBackRestConfig(pg PgTarget, keep int) pulumi.StringOutput {
	return pulumi.All(r.AccessKey, r.SecretKey, r.EncryptionKey).ApplyT(func(v []any) string {
		return r.render(pg, keep, v[0].(string), v[1].(string), v[2].(string))
	}).(pulumi.StringOutput)
}

// render is the file's text; the Go tests read it through PgBackRestConfig.
func (r Repository) render(pg PgTarget, keep int, accessKey, secretKey, encryptionKey string) string {
	host, port := r.hostPort()
	style := "host"
	if r.PathStyle {
		style = "path"
	}
	lines := []string{
		"[global]",
		"repo1-type=s3",
		"repo1-s3-endpoint=" + host,
		"repo1-storage-port=" + port,
		"repo1-s3-bucket=" + r.Bucket,
		"repo1-s3-region=" + r.Region,
		"repo1-s3-uri-style=" + style,
		"repo1-s3-key=" + accessKey,
		"repo1-s3-key-secret=" + secretKey,
		"repo1-path=" + r.Path,
		"repo1-cipher-type=aes-256-cbc",
		"repo1-cipher-pass=" + encryptionKey,
		fmt.Sprintf("repo1-retention-full=%d", keep),
		"repo1-storage-verify-tls=y",
	}
	if r.CACert != "" {
		lines = append(lines, "repo1-storage-ca-file="+PgBackRestCAFile)
	}
	lines = append(lines,
		"compress-type=zst",
		// Backups start at once (a checkpoint now, not at the next
		// scheduled one): a manual backup and the one before a restore
		// should not wait minutes.
		"start-fast=y",
		// Logs go to the container's output only; its root file system
		// may be read-only, and the lock folder is a tmpfs.
		"log-level-console=info",
		"log-level-stderr=warn",
		"log-level-file=off",
		"lock-path=/tmp/pgbackrest",
		"",
		"["+Stanza+"]",
		"pg1-path="+pg.DataDir,
		"pg1-socket-path="+pg.SocketDir,
		fmt.Sprintf("pg1-port=%d", pg.Port),
		"pg1-user="+pg.User,
		"",
	)
	return strings.Join(lines, "\n")
}

// hostPort splits the endpoint (validated: https://host[:port]).
func (r Repository) hostPort() (string, string) {
	u, err := url.Parse(r.Endpoint)
	if err != nil {
		return r.Endpoint, "443"
	}
	if p := u.Port(); p != "" {
		return u.Hostname(), p
	}
	return u.Hostname(), "443"
}
