package kubernetes

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	batchv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/batch/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// MigrationJobName ties the Job to what it migrates to: a new image or
// command is a new Job (Jobs are immutable), the same release keeps its
// completed Job and runs nothing again.
func MigrationJobName(s service.Spec) string {
	sum := sha256.Sum256([]byte(s.Image.Ref + "\x00" + strings.Join(s.Migration.Command, "\x00")))
	return s.Name + "-migrate-" + hex.EncodeToString(sum[:])[:10]
}

// buildMigrationJob runs the migration command once per release. The
// provider awaits the Job: a failure fails `pulumi up` before the Deployment,
// which depends on the Job, is touched, so the old ReplicaSet keeps serving.
func (b *builder) buildMigrationJob() error {
	s := b.args.Service
	if s.Migration.Strategy != service.MigrationJob {
		return nil
	}
	tmp, _ := tmpVolume()
	meta := b.meta(MigrationJobName(s), "migration")
	meta.Annotations = pulumi.StringMap{
		// A Job left failed by an earlier update is replaced on the next one
		// instead of being awaited forever.
		"pulumi.com/replaceUnready": pulumi.String("true"),
	}
	job, err := batchv1.NewJob(b.ctx, b.name+"-migration", &batchv1.JobArgs{
		Metadata: meta,
		Spec: batchv1.JobSpecArgs{
			// No blind retry: a migration that failed half-way needs a
			// person, and a retry of a non-transactional step can make it worse.
			BackoffLimit:          pulumi.Int(0),
			ActiveDeadlineSeconds: pulumi.Int(900),
			Template: corev1.PodTemplateSpecArgs{
				Metadata: metav1.ObjectMetaArgs{Labels: b.labels("migration")},
				Spec: corev1.PodSpecArgs{
					RestartPolicy:                pulumi.String("Never"),
					ServiceAccountName:           b.account.Metadata.Name(),
					AutomountServiceAccountToken: pulumi.Bool(false),
					SecurityContext:              podSecurityContext(),
					ImagePullSecrets:             b.imagePullSecrets(),
					Containers:                   corev1.ContainerArray{b.container("migrate", s.Migration.Command)},
					Volumes:                      corev1.VolumeArray{tmp},
				},
			},
		},
	}, b.opts(pulumi.DeleteBeforeReplace(true))...)
	b.job = job
	return err
}
