package kubernetes

import (
	"path"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// The app image runs as this user and group (see app/Dockerfile); high ids
// never collide with a host user.
const (
	runAsUser  = 10001
	runAsGroup = 10001
)

// podSecurityContext is the pod half of the "restricted" Pod Security
// Standard.
func podSecurityContext() *corev1.PodSecurityContextArgs {
	return &corev1.PodSecurityContextArgs{
		RunAsNonRoot:   pulumi.Bool(true),
		RunAsUser:      pulumi.Int(runAsUser),
		RunAsGroup:     pulumi.Int(runAsGroup),
		FsGroup:        pulumi.Int(runAsGroup),
		SeccompProfile: corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")},
	}
}

// containerSecurityContext is the container half: no privilege escalation,
// no capabilities, a read-only root file system (tmpVolume gives /tmp).
func containerSecurityContext() *corev1.SecurityContextArgs {
	return &corev1.SecurityContextArgs{
		RunAsNonRoot:             pulumi.Bool(true),
		RunAsUser:                pulumi.Int(runAsUser),
		RunAsGroup:               pulumi.Int(runAsGroup),
		AllowPrivilegeEscalation: pulumi.Bool(false),
		ReadOnlyRootFilesystem:   pulumi.Bool(true),
		Privileged:               pulumi.Bool(false),
		Capabilities:             corev1.CapabilitiesArgs{Drop: pulumi.StringArray{pulumi.String("ALL")}},
		SeccompProfile:           corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")},
	}
}

// tmpVolume is writable scratch space (Python, uvicorn and alembic write
// there) on an otherwise read-only root file system.
func tmpVolume() (corev1.VolumeArgs, corev1.VolumeMountArgs) {
	return corev1.VolumeArgs{Name: pulumi.String("tmp"), EmptyDir: corev1.EmptyDirVolumeSourceArgs{SizeLimit: pulumi.String("64Mi")}},
		corev1.VolumeMountArgs{Name: pulumi.String("tmp"), MountPath: pulumi.String("/tmp")}
}

// resources sets requests equal to limits: the pod is Guaranteed QoS, so
// it is the last to be evicted and its latency does not depend on neighbours.
func (b *builder) resources() *corev1.ResourceRequirementsArgs {
	r := b.args.Service.Resources
	amounts := pulumi.StringMap{
		"cpu":               pulumi.String(r.CPU.String()),
		"memory":            pulumi.String(r.Memory.String()),
		"ephemeral-storage": pulumi.String("128Mi"),
	}
	return &corev1.ResourceRequirementsArgs{Requests: amounts, Limits: amounts}
}

// nodeSelector places every pod of the service; nil leaves it to the
// scheduler.
func (b *builder) nodeSelector() pulumi.StringMap {
	if len(b.args.NodeSelector) == 0 {
		return nil
	}
	return pulumi.ToStringMap(b.args.NodeSelector)
}

// container is the common part of the app, migration and init containers.
// podVolumes are the volumes of a pod of app containers: /tmp, and the
// database's CA when there is one.
func (b *builder) podVolumes() corev1.VolumeArray {
	tmp, _ := tmpVolume()
	vols := corev1.VolumeArray{tmp}
	if b.dbCA != nil {
		vols = append(vols, corev1.VolumeArgs{Name: pulumi.String("db-ca"), ConfigMap: corev1.ConfigMapVolumeSourceArgs{
			Name: b.dbCA.Metadata.Name(), DefaultMode: pulumi.Int(0o444),
		}})
	}
	return vols
}

// migrationContainer is the app's container running the migration, as the
// database's owner: DATABASE_URL from the migration's Secret, which an
// explicit env entry takes over envFrom's.
func (b *builder) migrationContainer(command []string) corev1.ContainerArgs {
	c := b.container("migrate", migrationCommand(command))
	c.Env = corev1.EnvVarArray{corev1.EnvVarArgs{Name: pulumi.String("DATABASE_URL"), ValueFrom: corev1.EnvVarSourceArgs{
		SecretKeyRef: corev1.SecretKeySelectorArgs{Name: b.ownerSecret.Metadata.Name(), Key: pulumi.String("DATABASE_URL")},
	}}}
	return c
}

func (b *builder) container(name string, command []string) corev1.ContainerArgs {
	_, tmpMount := tmpVolume()
	mounts := corev1.VolumeMountArray{tmpMount}
	if b.dbCA != nil {
		mounts = append(mounts, corev1.VolumeMountArgs{Name: pulumi.String("db-ca"), MountPath: pulumi.String(path.Dir(service.CACertFile)), ReadOnly: pulumi.Bool(true)})
	}
	return corev1.ContainerArgs{
		Name:            pulumi.String(name),
		Image:           pulumi.String(b.args.Service.Image.Ref),
		ImagePullPolicy: pulumi.String(b.args.ImagePullPolicy),
		Command:         pulumi.ToStringArray(command),
		EnvFrom:         b.envFrom(),
		Resources:       b.resources(),
		SecurityContext: containerSecurityContext(),
		VolumeMounts:    mounts,
		// A container that fails leaves its last log lines as its
		// termination message, which `pulumi up` prints with the error.
		TerminationMessagePolicy: pulumi.String("FallbackToLogsOnError"),
	}
}
