package deploy

import "testing"

func TestServiceOf(t *testing.T) {
	for name, want := range map[string]string{
		"app-1-3f2a9c0d1e": "app", "app-12-3f2a9c0d1e": "app", "db": "db", "proxy": "proxy",
		"migrate-3f2a9c0d1e": "migrate", "db-roles-82f3e9c695": "db-roles", "db-revoke-82f3e9c695": "db-revoke",
		"secrets-3f2a9c0d1e-carrier": "secrets", "postgres-exporter": "postgres-exporter", "backup": "backup",
	} {
		if got := ServiceOf(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
}
