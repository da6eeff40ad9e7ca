package mocktest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPassword stands in for `pulumi config set --secret dbPassword ...`.
const TestPassword = "s3cret-test-password"

// TestAppPassword stands in for dbAppPassword, which a stack with an
// external database and db.appUser sets (Pulumi.prod.yaml says so).
const TestAppPassword = "s3cret-test-app-password"

// TestRolloutKey stands in for the rolloutKey ./infra generates.
const TestRolloutKey = "0123456789abcdef0123456789abcdef"

// Root is the folder with Pulumi.yaml, found from the test's folder up.
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "Pulumi.yaml")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no Pulumi.yaml above the test's folder")
		}
		dir = parent
	}
}

// ShippedStack is a Pulumi.<stack>.yaml of the project plus the secrets a
// user (or ./infra) sets before the first `up`.
func ShippedStack(t testing.TB, stack string) Config {
	t.Helper()
	c := LoadStackFile(t, filepath.Join(Root(t), "Pulumi."+stack+".yaml")).
		Secret("fastapi-infra:dbPassword", TestPassword).
		Secret("fastapi-infra:rolloutKey", TestRolloutKey)
	if strings.Contains(c.Values["fastapi-infra:db"], `"appUser"`) {
		c = c.Secret("fastapi-infra:dbAppPassword", TestAppPassword)
	}
	return c
}
