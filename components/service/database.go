package service

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// CACertFile is where the app and its migration find db.caCert: a file in
// their secrets folder on both architectures (not a secret, but it travels
// with DATABASE_URL, which names it).
const CACertFile = "/run/secrets/DB_CA_CERT"

// OwnerURL is the DATABASE_URL of the owner role, for the migrations only.
// It is secret because the password is: outputs derived from a secret stay
// secret in state and logs.
func (d Database) OwnerURL(host string) pulumi.StringOutput {
	return d.url(host, d.User, d.Password)
}

// AppURL is the DATABASE_URL of the app's replicas: the least-privileged
// AppUser, or the owner when there is none (an external database without
// db.appUser).
func (d Database) AppURL(host string) pulumi.StringOutput {
	if d.AppUser == "" {
		return d.OwnerURL(host)
	}
	return d.url(host, d.AppUser, d.AppPassword)
}

// AppLoginURL is the DATABASE_URL of the app's replicas when they log in
// as login, a member of AppUser with the app's password (SetupRoles).
func (d Database) AppLoginURL(host, login string) pulumi.StringOutput {
	return d.url(host, login, d.AppPassword)
}

// UsesCACert says whether the app and its migration get db.caCert as
// CACertFile: libpq checks the server's certificate (verify-ca,
// verify-full) against it.
func (d Database) UsesCACert() bool {
	return (d.SSLMode == "verify-ca" || d.SSLMode == "verify-full") && d.CACert != ""
}

func (d Database) url(host, user string, password pulumi.StringOutput) pulumi.StringOutput {
	return password.ApplyT(func(pw string) string {
		// Written out, not url.Values: libpq and SQLAlchemy read the
		// path unescaped too, and people read this URL in a pod's env.
		q := "sslmode=" + d.SSLMode
		if d.UsesCACert() {
			q += "&sslrootcert=" + CACertFile
		}
		u := url.URL{
			Scheme:   "postgresql",
			User:     url.UserPassword(user, pw),
			Host:     fmt.Sprintf("%s:%d", host, d.Port),
			Path:     "/" + d.Name,
			RawQuery: q,
		}
		return u.String()
	}).(pulumi.StringOutput)
}

// MonitorUser is the role postgres_exporter logs in as on the stack's own
// database: a member of pg_monitor (the server's statistics, no table's
// rows but the backup record's, which backup.sh grants it), made by
// SetupRoles. The owner, which the exporter used before, could read and
// change everything, and its password sat in the exporter's container.
const MonitorUser = "fastapi_infra_monitor"

// MonitorPassword is MonitorUser's password: an HMAC of the role's name
// keyed with the owner's password, so it is as strong as dbPassword,
// rotates with it, and gives nothing away about it. Secret, as the
// password it comes from.
func (d Database) MonitorPassword() pulumi.StringOutput {
	return d.Password.ApplyT(func(owner string) string {
		h := hmac.New(sha256.New, []byte(owner))
		h.Write([]byte("fastapi-infra monitor role\x00" + MonitorUser))
		return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
	}).(pulumi.StringOutput)
}
