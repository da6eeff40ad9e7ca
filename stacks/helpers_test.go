package stacks

import (
	"testing"

	"github.com/fastapi-infra/fastapi-infra/internal/mocktest"
	"github.com/fastapi-infra/fastapi-infra/internal/pki"
)

// testCA is a throwaway CA, what db.caCert takes.
func testCA(t *testing.T) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA("fastapi-infra test database CA")
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

const testPassword = mocktest.TestPassword

// stackConfig is a shipped stack file plus the secret a user sets.
func stackConfig(t *testing.T, stack string) mocktest.Config {
	t.Helper()
	return mocktest.ShippedStack(t, stack)
}

// run runs the program as the engine would and returns what it registered.
func run(t *testing.T, stack string, c mocktest.Config) (*mocktest.Recorder, error) {
	t.Helper()
	rec := &mocktest.Recorder{}
	err := mocktest.Run(t, stack, c, Run, rec)
	return rec, err
}
