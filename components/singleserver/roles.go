package singleserver

import (
	"fmt"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// socketDir is where PostgreSQL puts its unix socket; the database shares
// it with the roles container through a volume.
const socketDir = "/var/run/postgresql"

// setupRolesScript applies the roles through the shared socket.
const setupRolesScript = "set -eu\n" + service.SetupRoles

// Files of the database's secrets volume.
const (
	ownerPasswordFile = "PGPASSWORD"
	appPasswordFile   = "APP_PGPASSWORD"
)

// initRolesScript sets up the roles on a new data directory, from the
// database image's entrypoint (the official image's
// /docker-entrypoint-initdb.d, which ours follows), before anything
// connects: the roles container runs once per secrets digest, so a data
// volume lost and made again (the restore drill does it) would otherwise
// have no app role until the next rotation, and a restore into it would
// fail on its grants. The password files are the database container's
// uploads; the official entrypoint unsets POSTGRES_PASSWORD_FILE before
// the scripts run, so their paths are written out.
var initRolesScript = `#!/usr/bin/env bash
set -eu
export PGUSER="$POSTGRES_USER" PGDATABASE="$POSTGRES_DB" \
	PGPASSWORD_FILE=` + secretsDir + `POSTGRES_PASSWORD APP_PASSWORD_FILE=` + secretsDir + appPasswordFile + `
` + service.SetupRoles

// initRolesPath is where the database image's entrypoint finds it.
const initRolesPath = "/docker-entrypoint-initdb.d/50-fastapi-infra-roles.sh"

// buildDatabaseRoles makes the running database's roles what the stack
// says (service.SetupRoles): the owner's password is dbPassword, and the
// app's role exists with its password and may only read and write rows.
// The image's entrypoint sets a password only when it creates the data
// directory, so without this a changed dbPassword reached the app while
// the database kept the old one, and every new connection failed to
// authenticate. A one-shot container of the database's image runs psql
// through the shared socket after the database is healthy, once per
// secrets digest (its name carries it, so a rotation runs it again); the
// migration and the replicas wait for it, and its exit code gates them as
// the migration's does. Old replicas keep their open connections; their
// new ones fail until the new release (which carries the new password)
// has replaced them.
func (b *builder) buildDatabaseRoles() error {
	db := b.args.Service.Database
	if db.Mode == service.DatabaseExternal {
		b.rolesGate = pulumi.String("external").ToStringOutput()
		return nil
	}
	id := service.ReleaseID(b.args.SecretsDigest)
	name := b.dockerName("db-roles-" + id)
	env := []string{
		"PGUSER=" + db.User, "PGDATABASE=" + db.Name, fmt.Sprintf("PGPORT=%d", db.Port), "APP_USER=" + db.AppUser,
		"PGPASSWORD_FILE=" + secretsDir + ownerPasswordFile, "APP_PASSWORD_FILE=" + secretsDir + appPasswordFile,
	}
	var err error
	b.rolesSet, err = docker.NewContainer(b.ctx, b.name+"-db-roles-"+id, &docker.ContainerArgs{
		Name:        pulumi.String(name),
		Image:       b.dbImage,
		Entrypoints: pulumi.StringArray{pulumi.String("bash"), pulumi.String("-c"), pulumi.String(setupRolesScript)},
		Envs:        pulumi.ToStringArray(env),
		// The database's own user (999 in the official image and ours).
		User:         pulumi.String("999:999"),
		NetworkMode:  pulumi.String("none"),
		Volumes:      docker.ContainerVolumeArray{b.dbSecrets.mount, docker.ContainerVolumeArgs{VolumeName: b.dbSocket.Name, ContainerPath: pulumi.String(socketDir)}},
		Capabilities: docker.ContainerCapabilitiesArgs{Drops: pulumi.StringArray{pulumi.String("ALL")}},
		SecurityOpts: pulumi.StringArray{pulumi.String("no-new-privileges:true")},
		ReadOnly:     pulumi.Bool(true),
		Tmpfs:        scratchTmpfs,
		LogDriver:    pulumi.String(b.logDriver()),
		LogOpts:      b.logOptions(),
		// One shot: run to the end, keep the exit code and logs.
		MustRun: pulumi.Bool(false), Restart: pulumi.String("no"), Attach: pulumi.Bool(true), Logs: pulumi.Bool(true), Rm: pulumi.Bool(false),
	}, b.opts(pulumi.DependsOn([]pulumi.Resource{b.database, b.dbSecrets.carrier}))...)
	if err != nil {
		return err
	}
	b.rolesGate = exitGate(b.rolesSet, id, func(code int, logs string, _ pulumi.URN) error {
		return fmt.Errorf("setting up the database roles (%s) exited with code %d; its log:\n%s\nNothing that connects to the database was changed.", name, code, logs)
	})
	return nil
}
