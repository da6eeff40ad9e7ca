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
	// monitorPasswordFile is service.MonitorUser's, the exporter's role;
	// the exporter's own secrets volume holds it alone.
	monitorPasswordFile = "MONITOR_PGPASSWORD"
	// appLoginFile names the app's current login role (appLogin), for
	// the database's entrypoint to make on a new data directory.
	appLoginFile = "APP_LOGIN"
)

// appLogin is the role the replicas of this secrets digest log in as: a
// member of db.appUser made by the roles step, one per rotation, so a new
// app password never fails the connections the running release opens
// (see service.SetupRoles and RevokeOldLogins). The digest's id is an
// HMAC: the name says nothing of the secrets.
func (b *builder) appLogin() string {
	return b.args.Service.Database.AppUser + "_" + b.secretsID()
}

// initRolesScript sets up the roles on a new data directory, from the
// database image's entrypoint (the official image's
// /docker-entrypoint-initdb.d, which ours follows), before anything
// connects: the roles container runs once per secrets digest, so a data
// volume lost and made again (the restore drill does it) would otherwise
// have no app role until the next rotation, and a restore into it would
// fail on its grants. The password files are the database container's
// uploads; the official entrypoint unsets POSTGRES_PASSWORD_FILE before
// the scripts run, so their paths are written out. The files are the
// database's secrets volume's.
var initRolesScript = `#!/usr/bin/env bash
set -eu
export PGUSER="$POSTGRES_USER" PGDATABASE="$POSTGRES_DB" \
	PGPASSWORD_FILE=` + secretsDir + ownerPasswordFile + ` APP_PASSWORD_FILE=` + secretsDir + appPasswordFile + ` \
	MONITOR_USER=` + service.MonitorUser + ` MONITOR_PASSWORD_FILE=` + secretsDir + monitorPasswordFile + ` \
	APP_LOGIN="$(cat ` + secretsDir + appLoginFile + `)"
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
// the migration's does. The database container itself is not replaced:
// its password files are in a volume the new carrier rewrites, and its
// entrypoint reads them only for a new data directory.
func (b *builder) buildDatabaseRoles() error {
	db := b.args.Service.Database
	if db.Mode == service.DatabaseExternal {
		b.rolesGate = pulumi.String("external").ToStringOutput()
		return nil
	}
	id := b.secretsID()
	name := b.dockerName("db-roles-" + id)
	env := []string{
		"PGUSER=" + db.User, "PGDATABASE=" + db.Name, fmt.Sprintf("PGPORT=%d", db.Port), "APP_USER=" + db.AppUser,
		"PGPASSWORD_FILE=" + secretsDir + ownerPasswordFile, "APP_PASSWORD_FILE=" + secretsDir + appPasswordFile,
		"APP_LOGIN=" + b.appLogin(),
		"MONITOR_USER=" + service.MonitorUser, "MONITOR_PASSWORD_FILE=" + secretsDir + monitorPasswordFile,
	}
	var err error
	args := b.onSocket(name, setupRolesScript, env, b.dbSecrets.mount)
	// One shot: run to the end, keep the exit code and logs.
	args.Attach, args.Logs = pulumi.Bool(true), pulumi.Bool(true)
	b.rolesSet, err = docker.NewContainer(b.ctx, b.name+"-db-roles-"+id, args,
		b.opts(pulumi.DependsOn([]pulumi.Resource{b.database, b.dbSecrets.carrier}))...)
	if err != nil {
		return err
	}
	b.rolesGate = exitGate(b.rolesSet, id, func(code int, logs string, _ pulumi.URN) error {
		return fmt.Errorf("setting up the database roles (%s) exited with code %d; its log:\n%s\nNothing that connects to the database was changed.", name, code, logs)
	})
	return nil
}

// buildRevoker ends the app's earlier logins (service.RevokeOldLogins)
// once the release's new replicas are healthy and the old ones, which the
// update removes last, have closed their connections. It is not waited
// for (the update removes the old replicas only after every new resource
// exists, and the revoker waits for exactly that), so it never holds up
// an update; it runs once per secrets digest, on the database's socket.
func (b *builder) buildRevoker() error {
	db := b.args.Service.Database
	if db.Mode == service.DatabaseExternal {
		return nil
	}
	id := b.secretsID()
	deps := []pulumi.Resource{b.rolesSet}
	for _, app := range b.apps {
		deps = append(deps, app)
	}
	env := []string{"PGUSER=" + db.User, "PGDATABASE=" + db.Name, fmt.Sprintf("PGPORT=%d", db.Port),
		"APP_USER=" + db.AppUser, "APP_LOGIN=" + b.appLogin()}
	// Started and left to run: its exit is not waited for.
	var err error
	b.revoker, err = docker.NewContainer(b.ctx, b.name+"-db-revoke-"+id,
		b.onSocket(b.dockerName("db-revoke-"+id), "set -eu\n"+service.RevokeOldLogins, env), b.opts(pulumi.DependsOn(deps))...)
	return err
}

// onSocket is a container of the database's image that runs script with
// bash as the database's own user (999 in the official image and ours),
// with no network, only the database's socket folder (and the volumes
// given): the roles step and the revoker, whose psql the socket trusts.
// It runs once: not restarted, not removed, its exit not required.
func (b *builder) onSocket(name, script string, env []string, volumes ...docker.ContainerVolumeArgs) *docker.ContainerArgs {
	mounts := docker.ContainerVolumeArray{}
	for _, v := range volumes {
		mounts = append(mounts, v)
	}
	mounts = append(mounts, docker.ContainerVolumeArgs{VolumeName: b.dbSocket.Name, ContainerPath: pulumi.String(socketDir)})
	return &docker.ContainerArgs{
		Name:         pulumi.String(name),
		Image:        b.dbImage,
		Entrypoints:  pulumi.StringArray{pulumi.String("bash"), pulumi.String("-c"), pulumi.String(script)},
		Envs:         pulumi.ToStringArray(env),
		User:         pulumi.String(postgresUser),
		NetworkMode:  pulumi.String("none"),
		Volumes:      mounts,
		Capabilities: docker.ContainerCapabilitiesArgs{Drops: pulumi.StringArray{pulumi.String("ALL")}},
		SecurityOpts: pulumi.StringArray{pulumi.String("no-new-privileges:true")},
		ReadOnly:     pulumi.Bool(true),
		Tmpfs:        scratchTmpfs,
		LogDriver:    pulumi.String(b.logDriver()),
		LogOpts:      b.logOptions(),
		MustRun:      pulumi.Bool(false), Restart: pulumi.String("no"), Rm: pulumi.Bool(false),
	}
}
