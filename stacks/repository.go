package stacks

import (
	"net/netip"
	"net/url"
	"regexp"
	"strings"

	"github.com/fastapi-infra/fastapi-infra/components/service"
)

var (
	// bucketName is S3's rule for a bucket: 3-63 characters of lower-case
	// letters, digits, '.' and '-', starting and ending with a letter or a
	// digit (the rest of the rules are checked beside it).
	bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	region     = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
)

// minEncryptionKey is the shortest backupEncryptionKey accepted: the
// passphrase guards every backup the repository holds.
const minEncryptionKey = 20

// validateBackupRepository checks db.backup.s3.* and its secrets, and that a
// production single server keeps its backups off the host.
func (c *Config) validateBackupRepository(p *problems, prod bool) {
	s3 := c.DB.BackupS3
	p.between("db.backup.archiveTimeout", c.DB.BackupArchiveTimeout, 1, 60)
	if s3.Endpoint == "" {
		for _, k := range []struct {
			key string
			set bool
		}{{"db.backup.s3.bucket", s3.Bucket != ""}, {"db.backup.s3.path", s3.Path != ""}, {"db.backup.s3.caCert", s3.CACert != ""},
			{"backupS3AccessKey", c.backupAccessKey.set}, {"backupS3SecretKey", c.backupSecretKey.set}, {"backupEncryptionKey", c.backupCipherKey.set}} {
			if k.set {
				p.add(k.key, "is set but db.backup.s3.endpoint is not: set the endpoint (https://host[:port] of the S3 API), or remove %s", k.key)
			}
		}
		if prod && c.Architecture == SingleServer && c.DB.Mode == service.DatabaseContainer && !c.DB.BackupSameHost {
			p.add("db.backup.s3.endpoint", "is required for a production single server: its backups must survive the loss of the host. Set db.backup.s3.endpoint, db.backup.s3.bucket and the secrets backupS3AccessKey, backupS3SecretKey and backupEncryptionKey; or set db.backup.sameHost true to keep them on this host knowingly")
		}
		return
	}
	switch {
	case c.DB.Mode == service.DatabaseExternal:
		p.add("db.backup.s3.endpoint", "is for the stack's own database; an external (managed) database is backed up by its provider, point-in-time recovery included: remove db.backup.s3.*")
		return
	case c.Architecture == Kubernetes:
		p.add("db.backup.s3.endpoint", "is built for a single server's database so far; the in-cluster database keeps its pg_dump CronJob: remove db.backup.s3.*, or use an external database in production")
		return
	case c.DB.BackupSchedule == "":
		p.add("db.backup.schedule", "is empty, but db.backup.s3.endpoint asks for backups: set when the full backups run (a cron expression in UTC such as \"30 3 * * *\")")
	}
	if c.DB.BackupSameHost {
		p.add("db.backup.sameHost", "is true but db.backup.s3.endpoint sends the backups off the host: remove one of them")
	}
	if problem := endpointProblem(s3.Endpoint); problem != "" {
		p.add("db.backup.s3.endpoint", "%s, got %q", problem, s3.Endpoint)
	}
	if s3.HostAddress != "" {
		if _, err := netip.ParseAddr(s3.HostAddress); err != nil {
			p.add("db.backup.s3.hostAddress", "must be an IP address such as 10.0.0.5 (the endpoint's host name is written into the database's /etc/hosts with it), got %q", s3.HostAddress)
		}
	}
	if problem := bucketProblem(s3.Bucket); problem != "" {
		p.add("db.backup.s3.bucket", "%s, got %q", problem, s3.Bucket)
	}
	p.match("db.backup.s3.region", s3.Region, region, "a region name such as us-east-1 (lower-case letters, digits and '-')")
	if s3.Path != "" && (!strings.HasPrefix(s3.Path, "/") || strings.ContainsAny(s3.Path, " \t\n\"'") || strings.Contains(s3.Path, "..")) {
		p.add("db.backup.s3.path", "must be a folder in the bucket starting with '/' such as /fastapi-infra/prod (no spaces, quotes or '..'), got %q", s3.Path)
	}
	if s3.CACert != "" {
		if err := checkCACerts(s3.CACert); err != nil {
			p.add("db.backup.s3.caCert", "%v", err)
		}
	}
	p.secret("backupS3AccessKey", c.backupAccessKey, true)
	p.secret("backupS3SecretKey", c.backupSecretKey, true)
	p.secret("backupEncryptionKey", c.backupCipherKey, true)
	if c.backupCipherKey.set && len(c.backupCipherKey.plain) < minEncryptionKey {
		p.add("backupEncryptionKey", "must be at least %d characters (it guards every backup in the repository): pulumi config set --secret backupEncryptionKey \"$(openssl rand -base64 32)\"", minEncryptionKey)
	}
	for _, k := range []struct {
		key string
		v   secretValue
	}{{"backupS3AccessKey", c.backupAccessKey}, {"backupS3SecretKey", c.backupSecretKey}, {"backupEncryptionKey", c.backupCipherKey}} {
		// pgBackRest reads them from an ini file: one line each.
		if strings.ContainsAny(k.v.plain, "\n\r") {
			p.add(k.key, "must be one line")
		}
	}
}

// endpointProblem says what is wrong with an S3 endpoint, or "".
func endpointProblem(endpoint string) string {
	const want = "must be https://host[:port] of the S3 API such as https://s3.eu-west-1.amazonaws.com (TLS is required and verified; no path)"
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil || u.Fragment != "" {
		return want
	}
	if _, err := netip.ParseAddr(u.Hostname()); err == nil {
		// Seen with pgBackRest 2.45: "unable to find hostname '172.17.0.1'
		// in certificate common name or subject alternative names", an IP
		// SAN notwithstanding.
		return "must name the store's host, not its address: pgBackRest verifies the certificate by name only. Put the address in db.backup.s3.hostAddress"
	}
	return ""
}

// bucketProblem says what is wrong with an S3 bucket name, or "".
func bucketProblem(bucket string) string {
	const rule = "must be an S3 bucket name: 3-63 lower-case letters, digits, '.' and '-', starting and ending with a letter or digit, no '..', not an IP address"
	switch {
	case bucket == "":
		return "is required with db.backup.s3.endpoint (the bucket that holds the repository)"
	case !bucketName.MatchString(bucket) || strings.Contains(bucket, ".."):
		return rule
	case strings.HasPrefix(bucket, "xn--") || strings.HasSuffix(bucket, "-s3alias"):
		return rule + " (the prefix xn-- and the suffix -s3alias are reserved)"
	}
	if _, err := netip.ParseAddr(bucket); err == nil {
		return rule
	}
	return ""
}

// backupRepository is the stack's off-host repository for the service spec
// (empty without db.backup.s3.endpoint).
func (c *Config) backupRepository() service.Repository {
	s3 := c.DB.BackupS3
	if s3.Endpoint == "" {
		return service.Repository{}
	}
	path := s3.Path
	if path == "" {
		path = "/fastapi-infra/" + c.App.Name + "-" + c.stack
	}
	return service.Repository{
		Endpoint: strings.TrimSuffix(s3.Endpoint, "/"), Bucket: s3.Bucket, Region: s3.Region, Path: path, PathStyle: s3.PathStyle, CACert: s3.CACert,
		HostAddress: s3.HostAddress,
		AccessKey:   c.backupAccessKey.output(), SecretKey: c.backupSecretKey.output(), EncryptionKey: c.backupCipherKey.output(),
		ArchiveTimeout: c.DB.BackupArchiveTimeout,
	}
}
