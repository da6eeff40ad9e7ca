package deploy

import (
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
)

// TestSummarize: a failure's message from the engine's diagnostic events,
// as the Automation API's event stream carries them, not from the text
// the CLI prints (its layout changes with the next CLI version).
func TestSummarize(t *testing.T) {
	const stack = "urn:pulumi:dev::fastapi-infra::pulumi:pulumi:Stack::fastapi-infra-dev"
	cases := []struct {
		name   string
		diags  []apitype.DiagnosticEvent
		stderr string
		want   string
	}{
		{"a single server's failed migration", []apitype.DiagnosticEvent{
			{URN: stack, Severity: "warning", Message: "some deprecation\n"},
			{URN: stack, Severity: "error", Message: `an unhandled error occurred: waiting for RPCs: marshaling properties: awaiting input property "labels": the migration fastapi-migrate-71a31dff9a (alembic upgrade head) exited with code 3; its last log lines:
    INFO  [alembic] upgrade 0001 -> 0002
    sqlalchemy.exc.ProgrammingError: relation "items" already exists
Nothing of the new release was created: the running release keeps serving.
`},
		}, "", `the migration fastapi-migrate-71a31dff9a (alembic upgrade head) exited with code 3; its last log lines:
    INFO  [alembic] upgrade 0001 -> 0002
    sqlalchemy.exc.ProgrammingError: relation "items" already exists
Nothing of the new release was created: the running release keeps serving.`},
		{"a provider's error beside the stack's generic one", []apitype.DiagnosticEvent{
			{URN: stack, Severity: "error", Message: "update failed"},
			{URN: "urn:pulumi:prod::fastapi-infra::fastapi-infra:index:KubernetesService$kubernetes:batch/v1:Job::fastapi-migration", Severity: "error",
				Message: "<{%reset%}>2 errors occurred:\n\t* [Pod ns/fastapi-migrate-1]: [Error] boom\n\t* [BackoffLimitExceeded] Job has reached the specified backoff limit\n<{%reset%}>"},
			{URN: stack, Severity: "info", Message: "a line the program printed"},
		}, "", `kubernetes:batch/v1:Job (fastapi-migration): 2 errors occurred:
	* [Pod ns/fastapi-migrate-1]: [Error] boom
	* [BackoffLimitExceeded] Job has reached the specified backoff limit`},
		{"no engine run at all", nil, "error: could not create stack: stack 'dev' already exists\n",
			"could not create stack: stack 'dev' already exists"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Summarize(tc.diags, tc.stderr); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// TestLockedErrorNamesTheHolder: a second update of a locked stack says
// who holds the lock since when, as the file backend wrote it.
func TestLockedErrorNamesTheHolder(t *testing.T) {
	stderr := "error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end or delete the lock file with `pulumi cancel`.\n" +
		"  file:///home/ops/.fastapi-infra/state/.pulumi/locks/organization/fastapi-infra/dev/5f1c.json: created by ops@laptop (pid 4242) at 2026-12-07T06:50:00Z\n"
	err := LockedError("up", "dev", stderr)
	for _, want := range []string{"up dev: the stack is locked: held by ops@laptop (pid 4242) at 2026-12-07T06:50:00Z.", "pulumi cancel --stack dev"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v\nlacks %q", err, want)
		}
	}
}
