package singleserver

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// migrationID is the same for the same image and command: the migration
// runs once per release, not on every `up` as a compose one-shot does.
func (b *builder) migrationID() string {
	s := b.args.Service
	return service.ReleaseID(append([]string{s.Image.Ref, s.Image.BuildContext}, s.Migration.Command...)...)
}

// buildMigration runs the migration command once, after the database is
// healthy. pulumi-docker records a one-shot container's exit code but does
// not fail on it, so the gate below checks it: a non-zero exit fails
// `pulumi up` with the code and the last log lines, and since every app
// container takes the gate as an input, none of the new release is created
// and the running one keeps serving.
func (b *builder) buildMigration() error {
	s := b.args.Service
	if s.Migration.Strategy == service.MigrationNone {
		// The replicas still wait until the database has its password.
		b.gate = b.rolesGate
		return nil
	}
	id := b.migrationID()
	deps := []pulumi.Resource{b.migrationSecrets.carrier}
	if b.database != nil {
		deps = append(deps, b.database, b.rolesSet)
	}
	var err error
	// The app's own hardening: the migration runs the same image with the
	// same secrets, but as the database's owner.
	b.migration, err = docker.NewContainer(b.ctx, b.name+"-migrate-"+id, b.hardened(&docker.ContainerArgs{
		Name:             pulumi.String(b.dockerName("migrate-" + id)),
		Image:            b.appImage,
		Command:          pulumi.ToStringArray(s.Migration.Command),
		Envs:             pulumi.ToStringArray(append(plainEnv(s.Env), b.migrationSecrets.env...)),
		Volumes:          docker.ContainerVolumeArray{b.migrationSecrets.mount},
		NetworksAdvanced: b.privateNetwork(),
		// One shot: run to the end, keep the exit code and logs.
		MustRun: pulumi.Bool(false), Restart: pulumi.String("no"), Attach: pulumi.Bool(true), Logs: pulumi.Bool(true), Rm: pulumi.Bool(false),
		// What the driver looks for to run a failed migration again.
		Labels: docker.ContainerLabelArray{docker.ContainerLabelArgs{Label: pulumi.String(RoleLabel), Value: pulumi.String(MigrationRole)},
			// Created only once the database has the configured password.
			docker.ContainerLabelArgs{Label: pulumi.String("fastapi-infra.db-roles"), Value: b.rolesGate}},
	}), b.opts(pulumi.DependsOn(deps))...)
	if err != nil {
		return err
	}
	name := b.dockerName("migrate-" + id)
	b.gate = exitGate(b.migration, id, func(code int, logs string, urn pulumi.URN) error {
		return fmt.Errorf("the migration %s (%s) exited with code %d; its last log lines:\n%s\n%s",
			name, strings.Join(s.Migration.Command, " "), code, logs, migrationFailedHint(urn))
	})
	return nil
}

// exitGate resolves to ok once the one-shot container c exited 0; a
// non-zero exit fails it with failed(code, its last log lines indented,
// its URN). pulumi-docker records a one-shot's exit code without failing
// on it, so whatever takes the gate as an input is never created after a
// failure.
func exitGate(c *docker.Container, ok string, failed func(code int, logs string, urn pulumi.URN) error) pulumi.StringOutput {
	return pulumi.All(c.ExitCode, c.ContainerLogs, c.URN()).ApplyT(func(v []any) (string, error) {
		code, _ := v[0].(int)
		logs, _ := v[1].(string)
		urn, _ := v[2].(pulumi.URN)
		if code != 0 {
			return "", failed(code, indent(lastLines(demuxLogs(logs), 20)), urn)
		}
		return ok, nil
	}).(pulumi.StringOutput)
}

// RoleLabel and MigrationRole mark the migration container, so that the
// driver (deploy.FailedMigrations) can find one that failed in the state.
const (
	RoleLabel     = "fastapi-infra.role"
	MigrationRole = "migration"
)

// migrationFailedHint says what a failed migration left and how to run it
// again: the failed run stays in the state as a created container, so a
// plain `pulumi up` would only read its exit code again.
func migrationFailedHint(urn pulumi.URN) string {
	return "Nothing of the new release was created: the running release keeps serving. " +
		"Fix the cause (or wait out a passing one) and run `./infra up` again: it replaces the failed migration, which runs again. " +
		"With the Pulumi CLI: pulumi up --replace '" + string(urn) + "'."
}

// demuxLogs strips the 8-byte frame headers (stream, 0, 0, 0, length) that
// Docker puts before each chunk of a non-TTY container's attached output.
func demuxLogs(raw string) string {
	var out strings.Builder
	b := []byte(raw)
	for len(b) >= 8 && b[0] <= 2 && b[1] == 0 && b[2] == 0 && b[3] == 0 {
		n := int(binary.BigEndian.Uint32(b[4:8]))
		if n > len(b)-8 {
			n = len(b) - 8
		}
		out.Write(b[8 : 8+n])
		b = b[8+n:]
	}
	out.Write(b) // anything left was not framed
	return out.String()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// indent sets log lines apart from the message around them.
func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}
