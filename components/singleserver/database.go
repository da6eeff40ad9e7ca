package singleserver

import (
	"strconv"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// databaseHost is the database's name on the private network.
func (b *builder) databaseHost() string {
	if b.args.Service.Database.Mode == service.DatabaseExternal {
		return b.args.Service.Database.Host
	}
	return b.dockerName("db")
}

// buildDatabase runs PostgreSQL on a named volume. The volume is retained
// on delete unless db.retainOnDelete is false: replacing the container or
// destroying the stack keeps the data, and the next `up` finds it again by
// name.
func (b *builder) buildDatabase() error {
	db := b.args.Service.Database
	if db.Mode == service.DatabaseExternal {
		return nil
	}
	data, err := b.volume("db-data", db.RetainOnDelete)
	if err != nil {
		return err
	}
	image, err := b.image("db", db.Image)
	if err != nil {
		return err
	}
	b.dbImage = image
	// What the roles and backup containers share with it: the passwords
	// as files (renewed with the secrets) and the socket folder.
	passwords := map[string]pulumi.StringOutput{ownerPasswordFile: db.Password, appPasswordFile: db.AppPassword}
	if b.dbSecrets, err = b.secretVolume("db-secrets-"+service.ReleaseID(b.args.SecretsDigest), passwords); err != nil {
		return err
	}
	if b.dbSocket, err = b.volume("db-socket", false); err != nil {
		return err
	}
	uploads, fileEnv := secretFiles(map[string]pulumi.StringOutput{"POSTGRES_PASSWORD": db.Password, appPasswordFile: db.AppPassword})
	uploads = append(uploads, docker.ContainerUploadArgs{File: pulumi.String(initRolesPath), Content: pulumi.String(initRolesScript), Executable: pulumi.Bool(true)})
	b.database, err = docker.NewContainer(b.ctx, b.name+"-db", &docker.ContainerArgs{
		Name:  pulumi.String(b.dockerName("db")),
		Image: image,
		// PGPORT: db.port, which DATABASE_URL names; the server, pg_isready
		// and psql read it.
		Envs:             pulumi.ToStringArray(append([]string{"POSTGRES_DB=" + db.Name, "POSTGRES_USER=" + db.User, "APP_USER=" + db.AppUser, "PGPORT=" + strconv.Itoa(db.Port)}, fileEnv...)),
		Uploads:          uploads,
		NetworksAdvanced: b.privateNetwork(b.databaseHost()),
		Volumes: docker.ContainerVolumeArray{
			docker.ContainerVolumeArgs{VolumeName: data.Name, ContainerPath: pulumi.String("/var/lib/postgresql/data")},
			docker.ContainerVolumeArgs{VolumeName: b.dbSocket.Name, ContainerPath: pulumi.String(socketDir)},
		},
		// Over TCP, not the default socket: on a new volume the entrypoint
		// first runs a server on the socket only (to create the database)
		// and stops it again; a socket check called that one ready, and the
		// migration could start between the two servers (seen in the
		// restore drill: psql exit 2 right after "healthy").
		Healthcheck: healthcheck("pg_isready", "-h", "127.0.0.1", "-U", db.User, "-d", db.Name),
		Restart:     pulumi.String("unless-stopped"),
		// db.cpu and db.memory: a runaway query slows the database, not the
		// app and proxy beside it; no swap beyond the limit.
		Memory:     pulumi.Int(db.Resources.Memory.Megabytes()),
		MemorySwap: pulumi.Int(db.Resources.Memory.Megabytes()),
		Cpus:       pulumi.String(cpus(db.Resources.CPU.Value)),
		// Docker's default 64 MiB /dev/shm is too small for parallel
		// queries' shared memory; a quarter of the memory limit.
		ShmSize:   pulumi.Int(db.Resources.Memory.Megabytes() / 4),
		LogDriver: pulumi.String(b.logDriver()),
		LogOpts:   b.logOptions(),
		// PostgreSQL checkpoints on SIGTERM (smart shutdown); give it time.
		StopTimeout:         pulumi.Int(60),
		DestroyGraceSeconds: pulumi.Int(60),
		// Created means healthy: migrations start only against a database
		// that answers.
		Wait:        pulumi.Bool(true),
		WaitTimeout: pulumi.Int(120),
	}, b.opts(pulumi.DependsOn([]pulumi.Resource{data}))...)
	return err
}
