package stacks

import (
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"github.com/fastapi-infra/fastapi-infra/internal/mocktest"
)

// TestTheProgramRefusesADatabaseMajorUpgrade: plain `pulumi up` runs the
// program without the driver, so the program itself refuses a db.image of
// another major than its last update's databaseImage output, before it
// registers anything but the read of that output; the same major passes,
// and the output records what runs.
func TestTheProgramRefusesADatabaseMajorUpgrade(t *testing.T) {
	last := func(image string) *mocktest.Recorder {
		return &mocktest.Recorder{StackOutputs: resource.PropertyMap{databaseImageOutput: resource.NewStringProperty(image)}}
	}
	rec := last("postgres:15.8")
	err := mocktest.Run(t, "dev", stackConfig(t, "dev").Set(FullKey("db.image"), "postgres:16.4"), Run, rec)
	if err == nil {
		t.Fatal("postgres:15.8 -> postgres:16.4 was let through")
	}
	for _, want := range []string{"fastapi-infra:db.image: postgres:16.4 is PostgreSQL 16, but the stack's database runs postgres:15.8, PostgreSQL 15",
		"Nothing was changed", "./infra backup dev", "./infra restore dev"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, err)
		}
	}
	if types := rec.Types(); len(types) != 0 {
		t.Errorf("a refused upgrade registered %v, want nothing", types)
	}
	rec = last("postgres:15.8")
	if err := mocktest.Run(t, "dev", stackConfig(t, "dev").Set(FullKey("db.image"), "postgres:15.10"), Run, rec); err != nil {
		t.Errorf("a minor update was refused: %v", err)
	}
	if err := mocktest.Run(t, "staging", stackConfig(t, "prod").Set(FullKey("db.image"), "postgres:17"), Run, last("postgres:15")); err != nil {
		t.Errorf("an external database has no image of the stack's to guard: %v", err)
	}
}

func TestPostgresMajor(t *testing.T) {
	for ref, want := range map[string]int{"postgres:15": 15, "postgres:16.4-bookworm": 16, "fastapi-infra-postgres:15": 15,
		"registry.example.com:5000/postgres:17.1": 17, "postgres:9.6": 9, "postgres:15@sha256:ab": 15, "fastapi-infra-postgres:15-624483d65a00": 15,
		"fastapi-infra-postgres:624483d65a00": 0, "pg:123456789012": 0,
		"postgres": 0, "registry.example.com:5000/postgres": 0, "postgres:latest": 0, "postgres@sha256:ab": 0} {
		got, ok := PostgresMajor(ref)
		if got != want || ok != (want != 0) {
			t.Errorf("%s: %d %v, want %d", ref, got, ok, want)
		}
	}
}
