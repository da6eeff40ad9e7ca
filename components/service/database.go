package service

import (
	"fmt"
	"net/url"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// URL is the DATABASE_URL for the database at host (the container's or
// Service's name, or db.host for an external one). It is secret because the
// password is: outputs derived from a secret stay secret in state and logs.
func (d Database) URL(host string) pulumi.StringOutput {
	return d.Password.ApplyT(func(pw string) string {
		u := url.URL{
			Scheme:   "postgresql",
			User:     url.UserPassword(d.User, pw),
			Host:     fmt.Sprintf("%s:%d", host, d.Port),
			Path:     "/" + d.Name,
			RawQuery: "sslmode=" + d.SSLMode,
		}
		return u.String()
	}).(pulumi.StringOutput)
}
