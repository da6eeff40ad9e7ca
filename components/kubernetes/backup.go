package kubernetes

import (
	"fmt"

	batchv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/batch/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// buildBackup dumps the in-cluster database on db.backup.schedule: a
// CronJob (UTC, never two at once) runs backup.sh's "now" in the
// database's own image, as the database's user under the restricted
// profile, into a claim of its own that is retained like the data claim.
// A failed backup is a failed Job, kept with its log (FallbackToLogsOnError)
// among the last three failures, and kube_job_status_failed where
// kube-state-metrics runs.
func (b *builder) buildBackup() error {
	db := b.args.Service.Database
	if db.Mode != service.DatabaseInCluster || db.Backup.Schedule == "" {
		return nil
	}
	name := b.args.Service.Name + "-db-backup"
	spec := corev1.PersistentVolumeClaimSpecArgs{
		AccessModes: pulumi.StringArray{pulumi.String("ReadWriteOnce")},
		Resources:   corev1.VolumeResourceRequirementsArgs{Requests: pulumi.StringMap{"storage": pulumi.String(db.StorageSize)}},
	}
	if db.StorageClass != "" {
		spec.StorageClassName = pulumi.String(db.StorageClass)
	}
	claimOpts := db.DataOptions(db.RetainOnDelete)
	claim, err := corev1.NewPersistentVolumeClaim(b.ctx, b.name+"-db-backups", &corev1.PersistentVolumeClaimArgs{
		Metadata: b.meta(b.args.Service.Name+"-db-backups", "backup"),
		Spec:     spec,
	}, b.opts(claimOpts...)...)
	if err != nil {
		return err
	}
	sc := containerSecurityContext()
	sc.RunAsUser, sc.RunAsGroup = pulumi.Int(postgresUser), pulumi.Int(postgresUser)
	pod := podSecurityContext()
	pod.RunAsUser, pod.RunAsGroup, pod.FsGroup = pulumi.Int(postgresUser), pulumi.Int(postgresUser), pulumi.Int(postgresUser)
	tmpVol, tmpMount := tmpVolume()
	env := corev1.EnvVarArray{}
	for _, kv := range [][2]string{
		{"BACKUP_SCHEDULE", db.Backup.Schedule}, {"BACKUP_KEEP", fmt.Sprint(db.Backup.Keep)}, {"BACKUP_DIR", service.BackupDir},
		{"PGHOST", fmt.Sprintf("%s-db.%s.svc", b.args.Service.Name, b.args.Namespace)}, {"PGPORT", fmt.Sprint(db.Port)},
		{"PGUSER", db.User}, {"PGDATABASE", db.Name}, {"PGPASSWORD_FILE", ownerPasswordFile}, {"APP_USER", db.AppUser},
	} {
		env = append(env, corev1.EnvVarArgs{Name: pulumi.String(kv[0]), Value: pulumi.String(kv[1])})
	}
	limits := pulumi.StringMap{"cpu": pulumi.String("500m"), "memory": pulumi.String("256Mi"), "ephemeral-storage": pulumi.String("128Mi")}
	_, err = batchv1.NewCronJob(b.ctx, b.name+"-db-backup", &batchv1.CronJobArgs{
		Metadata: b.meta(name, "backup"),
		Spec: batchv1.CronJobSpecArgs{
			Schedule:          pulumi.String(db.Backup.Schedule),
			TimeZone:          pulumi.String("Etc/UTC"),
			ConcurrencyPolicy: pulumi.String("Forbid"),
			// A run missed by more than an hour (the cluster was down) is
			// skipped, not started late on top of the next.
			StartingDeadlineSeconds:    pulumi.Int(3600),
			SuccessfulJobsHistoryLimit: pulumi.Int(3),
			FailedJobsHistoryLimit:     pulumi.Int(3),
			JobTemplate: batchv1.JobTemplateSpecArgs{
				Metadata: metav1.ObjectMetaArgs{Labels: b.labels("backup")},
				Spec: batchv1.JobSpecArgs{
					BackoffLimit:          pulumi.Int(1),
					ActiveDeadlineSeconds: pulumi.Int(3600),
					Template: corev1.PodTemplateSpecArgs{
						Metadata: metav1.ObjectMetaArgs{Labels: b.labels("backup")},
						Spec: corev1.PodSpecArgs{
							RestartPolicy:                pulumi.String("Never"),
							NodeSelector:                 b.nodeSelector(),
							AutomountServiceAccountToken: pulumi.Bool(false),
							SecurityContext:              pod,
							Containers: corev1.ContainerArray{corev1.ContainerArgs{
								Name:            pulumi.String("backup"),
								Image:           pulumi.String(db.Image),
								Command:         pulumi.ToStringArray(service.BackupCommand("now")),
								Env:             env,
								Resources:       corev1.ResourceRequirementsArgs{Requests: limits, Limits: limits},
								SecurityContext: sc,
								VolumeMounts: corev1.VolumeMountArray{
									corev1.VolumeMountArgs{Name: pulumi.String("backups"), MountPath: pulumi.String(service.BackupDir)},
									passwordMount(),
									tmpMount,
								},
								TerminationMessagePolicy: pulumi.String("FallbackToLogsOnError"),
							}},
							Volumes: corev1.VolumeArray{
								corev1.VolumeArgs{Name: pulumi.String("backups"), PersistentVolumeClaim: corev1.PersistentVolumeClaimVolumeSourceArgs{ClaimName: claim.Metadata.Name().Elem()}},
								passwordVolume(b.dbSecret),
								tmpVol,
							},
						},
					},
				},
			},
		},
	}, b.opts(pulumi.DependsOn([]pulumi.Resource{b.database}))...)
	return err
}
