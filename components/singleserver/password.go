package singleserver

import (
	"fmt"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// socketDir is where PostgreSQL puts its unix socket; the database shares
// it with the password container through a volume.
const socketDir = "/var/run/postgresql"

// setPasswordScript applies dbPassword through the shared socket.
const setPasswordScript = "set -eu\n" + service.SetRolePassword

// buildDatabasePassword applies dbPassword to the running database. The
// image's entrypoint sets the password only when it creates the data
// directory, so without this a changed dbPassword reached the app while
// the database kept the old one, and every new connection failed to
// authenticate. A one-shot container of the database's image runs
// ALTER ROLE through the shared socket after the database is healthy,
// once per secrets digest (its name carries it, so a rotation runs it
// again); the migration and the replicas wait for it, and its exit code
// gates them as the migration's does. Old replicas keep their open
// connections; their new ones fail until the new release (which carries
// the new password) has replaced them.
func (b *builder) buildDatabasePassword() error {
	db := b.args.Service.Database
	if db.Mode == service.DatabaseExternal {
		b.passwordGate = pulumi.String("external").ToStringOutput()
		return nil
	}
	id := service.ReleaseID(b.args.SecretsDigest)
	name := b.dockerName("db-password-" + id)
	var err error
	b.passwordSet, err = docker.NewContainer(b.ctx, b.name+"-db-password-"+id, &docker.ContainerArgs{
		Name:        pulumi.String(name),
		Image:       b.dbImage,
		Entrypoints: pulumi.StringArray{pulumi.String("bash"), pulumi.String("-c"), pulumi.String(setPasswordScript)},
		Envs:        pulumi.ToStringArray(append([]string{"PGUSER=" + db.User, fmt.Sprintf("PGPORT=%d", db.Port)}, b.dbSecrets.env...)),
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
	b.passwordGate = exitGate(b.passwordSet, id, func(code int, logs string, _ pulumi.URN) error {
		return fmt.Errorf("setting the database password (%s) exited with code %d; its log:\n%s\nNothing that connects to the database was changed.", name, code, logs)
	})
	return nil
}
