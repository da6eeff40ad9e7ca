package service

import (
	"strings"
	"testing"
)

// TestRestoreGrantsTheAppRole: a restore gives the app role the restored
// tables with the same statements as the role step (backup.sh cannot
// import them, so this holds the two together).
func TestRestoreGrantsTheAppRole(t *testing.T) {
	for _, line := range strings.Split(strings.TrimSpace(GrantApp), "\n") {
		if !strings.Contains(backupScript, line) {
			t.Errorf("backup.sh's restore does not run %q", line)
		}
	}
	if !strings.Contains(SetupRoles, GrantApp) {
		t.Error("the role step does not grant the app role the existing tables")
	}
}
