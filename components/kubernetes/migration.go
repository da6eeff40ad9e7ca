package kubernetes

import (
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
	return s.Name + "-migrate-" + service.ReleaseID(append([]string{s.Image.Ref}, s.Migration.Command...)...)
}

// migrationFailurePolicy runs a migration pod again when the cluster took
// it away (a node drain, a preemption) instead of calling that a failed
// migration; any other failure ends the Job (backoffLimit 0). A FailJob
// rule would end it sooner, but the provider does not recognise the Failed
// condition it leaves (reason PodFailurePolicy) and would wait out its
// timeout: only BackoffLimitExceeded and DeadlineExceeded fail the await
// (cloud-ready-checks v1.3.0, pkg/kubernetes/job/check.go), as the real-pod
// test saw.
func migrationFailurePolicy() batchv1.PodFailurePolicyArgs {
	return batchv1.PodFailurePolicyArgs{Rules: batchv1.PodFailurePolicyRuleArray{
		batchv1.PodFailurePolicyRuleArgs{
			Action: pulumi.String("Ignore"),
			OnPodConditions: batchv1.PodFailurePolicyOnPodConditionsPatternArray{batchv1.PodFailurePolicyOnPodConditionsPatternArgs{
				Type: pulumi.String("DisruptionTarget"), Status: pulumi.String("True"),
			}},
		},
	}}
}

// ExitCodeReporter runs the migration command as a child and, when it
// fails, says so with its exit code as the last log line. The container's
// last log lines become its termination message (FallbackToLogsOnError),
// which `pulumi up` prints; without a message the provider prints only
// the exit code, with one only the message. python3 is what the app
// command already needs, so the image has it; signals reach the command.
//
// First it waits (up to DB_WAIT_SECONDS, 120) until DATABASE_URL's host
// accepts a connection: an in-cluster database pod that rolls in the same
// update (a new password Secret rolls it) is out of its headless Service's
// DNS until every container is ready, its password sidecar included, and
// the provider's StatefulSet await can return before that (seen in the
// lab: "could not translate host name" from a migration run 1 s into the
// update, which backoffLimit 0 made a failed up).
const ExitCodeReporter = `import os, signal, socket, subprocess, sys, time, urllib.parse
url = os.environ.get("DATABASE_URL", "")
if url:
    u = urllib.parse.urlsplit(url)
    wait = int(os.environ.get("DB_WAIT_SECONDS", "120"))
    deadline = time.time() + wait
    while True:
        try:
            socket.create_connection((u.hostname, u.port or 5432), timeout=3).close()
            break
        except OSError as e:
            if time.time() > deadline:
                print("fastapi-infra: the database %s:%s did not accept a connection within %d s: %s" % (u.hostname, u.port or 5432, wait, e), file=sys.stderr)
                sys.exit(3)
            time.sleep(1)
p = subprocess.Popen(sys.argv[1:])
for s in (signal.SIGTERM, signal.SIGINT):
    signal.signal(s, lambda n, _: p.send_signal(n))
code = p.wait()
if code != 0:
    print("fastapi-infra: the migration %s exited with code %d" % (" ".join(sys.argv[1:]), code), file=sys.stderr)
sys.exit(code if code >= 0 else 128 - code)
`

// migrationCommand is the exec-form migration command under ExitCodeReporter.
func migrationCommand(command []string) []string {
	return append([]string{"python3", "-c", ExitCodeReporter}, command...)
}

// buildMigrationJob runs the migration command once per release. The
// provider awaits the Job: a failure fails `pulumi up` before the Deployment,
// which depends on the Job, is touched, so the old ReplicaSet keeps serving.
func (b *builder) buildMigrationJob() error {
	s := b.args.Service
	if s.Migration.Strategy != service.MigrationJob {
		return nil
	}
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
			PodFailurePolicy:      migrationFailurePolicy(),
			Template: corev1.PodTemplateSpecArgs{
				Metadata: metav1.ObjectMetaArgs{Labels: b.labels("migration")},
				Spec: corev1.PodSpecArgs{
					RestartPolicy:                pulumi.String("Never"),
					NodeSelector:                 b.nodeSelector(),
					ServiceAccountName:           b.account.Metadata.Name(),
					AutomountServiceAccountToken: pulumi.Bool(false),
					SecurityContext:              podSecurityContext(),
					ImagePullSecrets:             b.imagePullSecrets(),
					Containers:                   corev1.ContainerArray{b.migrationContainer(s.Migration.Command)},
					Volumes:                      b.podVolumes(),
				},
			},
		},
	}, b.opts(pulumi.DeleteBeforeReplace(true), pulumi.DependsOn(b.databaseDeps()))...)
	b.job = job
	return err
}
