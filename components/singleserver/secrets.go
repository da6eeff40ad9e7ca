package singleserver

import (
	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// buildAppSecrets puts the app's secret files (DATABASE_URL, secretEnv) in a
// volume of their own, one per release, that the migration and the
// replicas mount read-only at /run/secrets.
//
// Why not upload them into each container, as the database's password is:
// pulumi-docker uploads through Docker's archive API at the root of the
// file system, which Docker refuses for a read-only one ("container rootfs
// is marked read-only"), and the app's root file system is read-only. So a
// carrier container, created and never started and not read-only, receives
// the upload; its /run/secrets is the volume, so the files land there.
// The volume is named by the release, which changes with the secrets, so a
// rotation makes a new volume and the old one goes with the old release.
//
// The migration's files are in a volume of their own: its DATABASE_URL is
// the owner's, which no replica may read.
func (b *builder) buildAppSecrets() error {
	var err error
	release := b.releaseID()
	if b.secrets, err = b.secretVolume("secrets-"+release, "secrets-"+release, b.appSecrets()); err != nil {
		return err
	}
	if b.args.Service.Migration.Strategy != service.MigrationNone {
		b.migrationSecrets, err = b.secretVolume("migration-secrets-"+release, "migration-secrets-"+release, b.migrationSecretFiles())
	}
	return err
}

// secretVolume makes the volume (Docker name <prefix>-<volume>) and the
// carrier (<prefix>-<carrier>-carrier) that writes the files into it, and
// returns what a container takes to read them. A volume named like its
// carrier comes and goes with it; one carrier of a stable volume after
// another rewrites its files in place, for containers that must keep
// running through a change of them (the database's passwords).
func (b *builder) secretVolume(volume, carrier string, files map[string]pulumi.StringOutput) (appSecrets, error) {
	vol, err := docker.NewVolume(b.ctx, b.name+"-"+volume, &docker.VolumeArgs{
		Name: pulumi.String(b.dockerName(volume)),
	}, b.opts()...)
	if err != nil {
		return appSecrets{}, err
	}
	uploads, env := secretFiles(files)
	writer, err := docker.NewContainer(b.ctx, b.name+"-"+carrier+"-carrier", &docker.ContainerArgs{
		Name:    pulumi.String(b.dockerName(carrier + "-carrier")),
		Image:   b.appImage,
		Command: pulumi.ToStringArray([]string{"true"}),
		Uploads: uploads,
		Volumes: docker.ContainerVolumeArray{docker.ContainerVolumeArgs{
			VolumeName: vol.Name, ContainerPath: pulumi.String(secretsMount),
		}},
		// Never runs: it only holds the volume's files.
		Start:   pulumi.Bool(false),
		MustRun: pulumi.Bool(false),
		Restart: pulumi.String("no"),
		// No network: it has nothing to reach.
		NetworkMode: pulumi.String("none"),
		LogDriver:   pulumi.String(b.logDriver()),
		LogOpts:     b.logOptions(),
	}, b.opts(pulumi.DependsOn([]pulumi.Resource{vol}))...)
	if err != nil {
		return appSecrets{}, err
	}
	// What the containers take: the NAME_FILE variables, the read-only
	// mount, and the carrier to wait for (the upload).
	return appSecrets{
		env:     env,
		mount:   docker.ContainerVolumeArgs{VolumeName: vol.Name, ContainerPath: pulumi.String(secretsMount), ReadOnly: pulumi.Bool(true)},
		carrier: writer,
	}, nil
}

// appSecrets is how the app's containers get their secret files.
type appSecrets struct {
	env     []string
	mount   docker.ContainerVolumeArgs
	carrier *docker.Container
}

// secretsMount is the folder of the secret files.
const secretsMount = "/run/secrets"
