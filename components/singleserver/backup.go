package singleserver

import (
	"strconv"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// BackupRole is the backup container's fastapi-infra.role label.
const BackupRole = "backup"

// buildBackup runs the scheduled pg_dump of the container database
// (db.backup.schedule, db.backup.keep) in a container of its own: the
// database's image, on the private network, writing custom-format dumps to
// the retained backups volume. A failed backup logs the cause, exits the
// `now` action non-zero and turns the container unhealthy until a backup
// succeeds again.
func (b *builder) buildBackup() error {
	db := b.args.Service.Database
	if db.Mode == service.DatabaseExternal || db.Backup.Schedule == "" {
		return nil
	}
	dumps, err := b.volume("backups", db.DataOptions(true)...)
	if err != nil {
		return err
	}
	secrets := b.dbSecrets
	env := []string{
		"BACKUP_SCHEDULE=" + db.Backup.Schedule, "BACKUP_KEEP=" + strconv.Itoa(db.Backup.Keep), "BACKUP_DIR=" + service.BackupDir,
		"PGPORT=" + strconv.Itoa(db.Port), "PGUSER=" + db.User, "PGDATABASE=" + db.Name,
		"APP_USER=" + db.AppUser,
	}
	volumes := docker.ContainerVolumeArray{
		secrets.mount,
		docker.ContainerVolumeArgs{VolumeName: dumps.Name, ContainerPath: pulumi.String(service.BackupDir)},
	}
	// Root, for the volume Docker makes root-owned, but with no
	// capability at all: it can write what root owns and nothing else of
	// the host's; the dumps are 0600.
	user, dir, networks := "0:0", service.BackupDir, b.privateNetwork()
	if db.Backup.Repository.Enabled() {
		// pgBackRest copies the data files itself: as their owner, the
		// data volume read-only, the server reached on its socket (trusted
		// locally), the repository through the archive network. Its
		// status files go to /tmp (the backups volume is root's); the
		// driver takes a restore's pg_dump as root (ExecAs).
		env = append(env, "BACKUP_REPOSITORY=pgbackrest", "PGHOST="+socketDir, "STATUS_DIR=/tmp")
		user, dir, networks = postgresUser, "/tmp", b.databaseNetworks()
		volumes = append(volumes,
			docker.ContainerVolumeArgs{VolumeName: b.dbData.Name, ContainerPath: pulumi.String(dataDir), ReadOnly: pulumi.Bool(true)},
			docker.ContainerVolumeArgs{VolumeName: b.dbSocket.Name, ContainerPath: pulumi.String(socketDir)})
	} else {
		env = append(env, "PGHOST="+b.databaseHost())
	}
	env = append(env, secrets.env...)
	healthy := `[ ! -e ` + dir + `/.last-failure ] || [ ` + dir + `/.last-success -nt ` + dir + `/.last-failure ]`
	b.backup, err = docker.NewContainer(b.ctx, b.name+"-backup", &docker.ContainerArgs{
		Name:        pulumi.String(b.dockerName("backup")),
		Image:       b.dbImage,
		Entrypoints: pulumi.ToStringArray(service.BackupCommand()),
		Command:     pulumi.StringArray{pulumi.String("loop")},
		// libpq has no PGPASSWORD_FILE: the script reads the file into
		// its own PGPASSWORD, never the container's environment.
		Envs:             pulumi.ToStringArray(env),
		Labels:           docker.ContainerLabelArray{docker.ContainerLabelArgs{Label: pulumi.String(RoleLabel), Value: pulumi.String(BackupRole)}, b.secretsLabel()},
		NetworksAdvanced: networks,
		Hosts:            b.repositoryHosts(),
		Volumes:          volumes,
		User:             pulumi.String(user),
		Capabilities:     docker.ContainerCapabilitiesArgs{Drops: pulumi.StringArray{pulumi.String("ALL")}},
		SecurityOpts:     pulumi.StringArray{pulumi.String("no-new-privileges:true")},
		ReadOnly:         pulumi.Bool(true),
		Tmpfs:            scratchTmpfs,
		Healthcheck: docker.ContainerHealthcheckArgs{
			Tests: pulumi.StringArray{pulumi.String("CMD-SHELL"), pulumi.String(healthy)}, Interval: pulumi.String("30s"), Timeout: pulumi.String("5s"), Retries: pulumi.Int(1),
		},
		Restart:    pulumi.String("unless-stopped"),
		Memory:     pulumi.Int(256),
		MemorySwap: pulumi.Int(256),
		Cpus:       pulumi.String("0.5"),
		LogDriver:  pulumi.String(b.logDriver()),
		LogOpts:    b.logOptions(),
		// A dump in progress is cut; the next one is whole (dumps are
		// renamed into place only when complete).
		StopTimeout: pulumi.Int(10),
	}, b.opts(pulumi.DependsOn([]pulumi.Resource{b.database, b.rolesSet, dumps, secrets.carrier}))...)
	return err
}
