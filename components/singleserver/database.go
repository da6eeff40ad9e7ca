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
	data, err := b.volume("db-data", db.DataOptions(db.RetainOnDelete)...)
	if err != nil {
		return err
	}
	b.dbData = data
	image, err := b.image("db", db.Image)
	if err != nil {
		return err
	}
	b.dbImage = image
	// What it shares with the roles and backup containers: the
	// passwords as files, in one volume whose files each rotation's
	// carrier rewrites (so the database's own inputs stay the same and a
	// rotation never restarts it: the roles container applies the new
	// passwords with ALTER ROLE), and the socket folder.
	passwords := map[string]pulumi.StringOutput{ownerPasswordFile: db.Password, appPasswordFile: db.AppPassword,
		monitorPasswordFile: db.MonitorPassword(), appLoginFile: pulumi.String(b.appLogin()).ToStringOutput()}
	repo := db.Backup.Repository
	var command pulumi.StringArrayInput
	if repo.Enabled() {
		// pgBackRest's configuration holds the store's keys and the
		// encryption passphrase: a secret file beside the passwords.
		passwords[service.PgBackRestConfigName] = repo.PgBackRestConfig(b.pgTarget(), db.Backup.Keep)
		if repo.CACert != "" {
			passwords[service.PgBackRestCAName] = pulumi.String(repo.CACert).ToStringOutput()
		}
		// As the official image takes it: "postgres" and the server's
		// options, here the WAL archiving into the repository.
		command = pulumi.ToStringArray(append([]string{"postgres"}, repo.ArchiveSettings()...))
	}
	if b.dbSecrets, err = b.secretVolume("db-secrets", "db-secrets-"+b.secretsID(), passwords); err != nil {
		return err
	}
	if b.dbSocket, err = b.volume("db-socket"); err != nil {
		return err
	}
	// The image's entrypoint reads the password file only when it makes
	// a new data directory.
	uploads := docker.ContainerUploadArray{docker.ContainerUploadArgs{File: pulumi.String(initRolesPath), Content: pulumi.String(initRolesScript), Executable: pulumi.Bool(true)}}
	fileEnv := []string{"POSTGRES_PASSWORD_FILE=" + secretsDir + ownerPasswordFile}
	b.database, err = docker.NewContainer(b.ctx, b.name+"-db", &docker.ContainerArgs{
		Name:  pulumi.String(b.dockerName("db")),
		Image: image,
		// PGPORT: db.port, which DATABASE_URL names; the server, pg_isready
		// and psql read it.
		Envs:             pulumi.ToStringArray(append([]string{"POSTGRES_DB=" + db.Name, "POSTGRES_USER=" + db.User, "APP_USER=" + db.AppUser, "PGPORT=" + strconv.Itoa(db.Port)}, fileEnv...)),
		Uploads:          uploads,
		Command:          command,
		Hosts:            b.repositoryHosts(),
		NetworksAdvanced: b.databaseNetworks(b.databaseHost()),
		// As the postgres user from the start (the image's entrypoint runs
		// so on Kubernetes too), with no capability and no way to gain
		// one: as root it needed CHOWN, DAC_OVERRIDE, FOWNER, SETUID and
		// SETGID to fix the folders' owners and drop to postgres, and
		// the folders are postgres's already (the image's, which a new
		// volume copies). The root file system stays writable: the roles
		// script for a new data directory is an upload, and Docker's
		// archive API refuses one into a read-only root.
		User:         pulumi.String(postgresUser),
		Capabilities: docker.ContainerCapabilitiesArgs{Drops: pulumi.StringArray{pulumi.String("ALL")}},
		SecurityOpts: pulumi.StringArray{pulumi.String("no-new-privileges:true")},
		Volumes: docker.ContainerVolumeArray{
			docker.ContainerVolumeArgs{VolumeName: data.Name, ContainerPath: pulumi.String(dataDir)},
			docker.ContainerVolumeArgs{VolumeName: b.dbSocket.Name, ContainerPath: pulumi.String(socketDir)},
			b.dbSecrets.mount,
		},
		// Over TCP, not the default socket: on a new volume the entrypoint
		// first runs a server on the socket only (to create the database)
		// and stops it again; a socket check called that one ready, and the
		// migration could start between the two servers (seen in the
		// restore drill: psql exit 2 right after "healthy").
		Healthcheck: b.healthcheck("pg_isready", "-h", "127.0.0.1", "-U", db.User, "-d", db.Name),
		Restart:     pulumi.String("unless-stopped"),
		// db.cpu and db.memory: a runaway query slows the database, not the
		// app and proxy beside it; no swap beyond the limit.
		Memory:     pulumi.Int(db.Resources.Memory.Megabytes()),
		MemorySwap: pulumi.Int(db.Resources.Memory.Megabytes()),
		Cpus:       pulumi.String(cpus(db.Resources.CPU.Value)),
		ShmSize:    shmSize(db.Resources.Memory.Megabytes()),
		LogDriver:  pulumi.String(b.logDriver()),
		LogOpts:    b.logOptions(),
		// PostgreSQL checkpoints on SIGTERM (smart shutdown); give it time.
		StopTimeout:         pulumi.Int(60),
		DestroyGraceSeconds: pulumi.Int(60),
		// Created means healthy: migrations start only against a database
		// that answers.
		Wait:        pulumi.Bool(true),
		WaitTimeout: pulumi.Int(120),
	}, b.opts(pulumi.DependsOn([]pulumi.Resource{data, b.dbSecrets.carrier}))...)
	return err
}

// pgTarget is where pgBackRest finds the cluster: the data volume and the
// socket folder, as the database and backup containers mount them.
func (b *builder) pgTarget() service.PgTarget {
	db := b.args.Service.Database
	return service.PgTarget{DataDir: dataDir, SocketDir: socketDir, Port: db.Port, User: db.User}
}

// dataDir is where the database's data volume is mounted.
const dataDir = "/var/lib/postgresql/data"

// shmSize is the database's /dev/shm: Docker's default 64 MiB is too
// small for parallel queries' shared memory, so a quarter of the memory
// limit; without a limit (0), Docker's default, left unset since the
// provider reads 64 back and a 0 would be a change on every `up`.
func shmSize(memoryMB int) pulumi.IntPtrInput {
	if memoryMB/4 == 0 {
		return nil
	}
	return pulumi.Int(memoryMB / 4)
}

// secretsID changes with the secrets: the names of what a rotation must
// run again (the roles step, each carrier) carry it.
func (b *builder) secretsID() string { return service.ReleaseID(b.args.SecretsDigest) }

// secretsLabel restarts a container that read the database's passwords
// when it started (the backup loop, the exporter) after a rotation:
// labels are fixed at creation, so a new value is a new container.
func (b *builder) secretsLabel() docker.ContainerLabelArgs {
	return docker.ContainerLabelArgs{Label: pulumi.String("fastapi-infra.secrets"), Value: pulumi.String(b.secretsID())}
}

// postgresUser is the database image's postgres user and group, 999 as in
// the official image.
const postgresUser = "999:999"
