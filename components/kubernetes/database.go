package kubernetes

import (
	"fmt"
	"path"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/monitoring"
	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// postgresUser is the uid of the official postgres image.
const postgresUser = 999

// databaseDeps makes what connects to an in-cluster database wait until
// the provider saw its StatefulSet ready: before that its name does not
// even resolve, and a migration would fail.
func (b *builder) databaseDeps() []pulumi.Resource {
	if b.database == nil {
		return nil
	}
	return []pulumi.Resource{b.database}
}

// buildDatabase points DATABASE_URL at the managed database, or, for
// non-production clusters, runs PostgreSQL as a one-replica StatefulSet on a
// PersistentVolumeClaim that outlives the stack.
func (b *builder) buildDatabase() error {
	db := b.args.Service.Database
	if db.Mode != service.DatabaseInCluster {
		b.appURL, b.ownerURL = db.AppURL(db.Host), db.OwnerURL(db.Host)
		return nil
	}
	name := b.args.Service.Name + "-db"
	host := fmt.Sprintf("%s.%s.svc", name, b.args.Namespace)
	b.appURL, b.ownerURL = db.AppURL(host), db.OwnerURL(host)

	// The claim (and so the volume) stays through replacement and
	// `pulumi destroy`; `db.retainOnDelete: false` opts out.
	claimOpts := db.DataOptions(db.RetainOnDelete)
	spec := corev1.PersistentVolumeClaimSpecArgs{
		AccessModes: pulumi.StringArray{pulumi.String("ReadWriteOnce")},
		Resources:   corev1.VolumeResourceRequirementsArgs{Requests: pulumi.StringMap{"storage": pulumi.String(db.StorageSize)}},
	}
	if db.StorageClass != "" {
		spec.StorageClassName = pulumi.String(db.StorageClass)
	}
	claim, err := corev1.NewPersistentVolumeClaim(b.ctx, b.name+"-db-data", &corev1.PersistentVolumeClaimArgs{
		Metadata: b.meta(name+"-data", "database"),
		Spec:     spec,
	}, b.opts(claimOpts...)...)
	if err != nil {
		return err
	}
	secret, err := corev1.NewSecret(b.ctx, b.name+"-db-secret", &corev1.SecretArgs{
		Metadata: b.autoNamed("database"),
		StringData: pulumi.StringMap{
			"POSTGRES_PASSWORD": pulumi.ToSecret(db.Password).(pulumi.StringOutput),
			"APP_PASSWORD":      pulumi.ToSecret(db.AppPassword).(pulumi.StringOutput),
			"MONITOR_PASSWORD":  pulumi.ToSecret(db.MonitorPassword()).(pulumi.StringOutput),
		},
	}, b.opts()...)
	if err != nil {
		return err
	}
	b.dbSecret = secret
	if _, err := corev1.NewService(b.ctx, b.name+"-db-service", &corev1.ServiceArgs{
		Metadata: b.meta(name, "database"),
		Spec: corev1.ServiceSpecArgs{
			ClusterIP: pulumi.String("None"),
			Selector:  b.selector("database"),
			Ports:     b.databasePorts(),
		},
	}, b.opts()...); err != nil {
		return err
	}
	scratch := func(n, path string) (corev1.VolumeArgs, corev1.VolumeMountArgs) {
		return corev1.VolumeArgs{Name: pulumi.String(n), EmptyDir: corev1.EmptyDirVolumeSourceArgs{}},
			corev1.VolumeMountArgs{Name: pulumi.String(n), MountPath: pulumi.String(path)}
	}
	runVol, runMount := scratch("run", "/var/run/postgresql")
	tmpVol, tmpMount := scratch("tmp", "/tmp")
	sc := containerSecurityContext()
	sc.RunAsUser, sc.RunAsGroup = pulumi.Int(postgresUser), pulumi.Int(postgresUser)
	pod := podSecurityContext()
	pod.RunAsUser, pod.RunAsGroup, pod.FsGroup = pulumi.Int(postgresUser), pulumi.Int(postgresUser), pulumi.Int(postgresUser)
	// Over TCP: on a new volume the entrypoint first runs a server on the
	// socket only, to create the database, and stops it; a socket probe
	// called that one ready (the single server's restore drill saw it).
	ready := corev1.ProbeArgs{
		Exec:          corev1.ExecActionArgs{Command: pulumi.ToStringArray([]string{"pg_isready", "-h", "127.0.0.1", "-U", db.User, "-d", db.Name})},
		PeriodSeconds: pulumi.Int(5),
	}
	containers := corev1.ContainerArray{b.postgresContainer(secret, sc, ready, runMount, tmpMount), b.passwordSidecar(secret, sc, runMount, tmpMount)}
	volumes := corev1.VolumeArray{
		corev1.VolumeArgs{Name: pulumi.String("data"), PersistentVolumeClaim: corev1.PersistentVolumeClaimVolumeSourceArgs{ClaimName: claim.Metadata.Name().Elem()}},
		runVol, tmpVol, passwordVolume(secret),
	}
	if b.databaseExporter() {
		vol, mount := exporterPasswordVolume(secret)
		exporter, more, err := b.exporterSidecar(sc, mount)
		if err != nil {
			return err
		}
		containers, volumes = append(containers, exporter), append(append(volumes, vol), more...)
	}
	b.database, err = appsv1.NewStatefulSet(b.ctx, b.name+"-db", &appsv1.StatefulSetArgs{
		Metadata: b.meta(name, "database"),
		Spec: appsv1.StatefulSetSpecArgs{
			ServiceName: pulumi.String(name),
			Replicas:    pulumi.Int(1),
			Selector:    metav1.LabelSelectorArgs{MatchLabels: b.selector("database")},
			Template: corev1.PodTemplateSpecArgs{
				Metadata: metav1.ObjectMetaArgs{Labels: b.labels("database"), Annotations: b.dbScrapeAnnotations()},
				Spec: corev1.PodSpecArgs{
					NodeSelector:                 b.nodeSelector(),
					AutomountServiceAccountToken: pulumi.Bool(false),
					SecurityContext:              pod,
					Containers:                   containers,
					Volumes:                      volumes,
				},
			},
		},
	}, b.opts()...)
	return err
}

// postgresContainer is PostgreSQL itself, on the claim, with db.port, the
// owner's password from the Secret, and db.cpu/db.memory.
func (b *builder) postgresContainer(secret *corev1.Secret, sc *corev1.SecurityContextArgs, ready corev1.ProbeArgs, runMount, tmpMount corev1.VolumeMountArgs) corev1.ContainerArgs {
	db := b.args.Service.Database
	return corev1.ContainerArgs{
		Name:  pulumi.String("postgres"),
		Image: pulumi.String(db.Image),
		Ports: corev1.ContainerPortArray{corev1.ContainerPortArgs{Name: pulumi.String("postgres"), ContainerPort: pulumi.Int(db.Port)}},
		Env: corev1.EnvVarArray{
			corev1.EnvVarArgs{Name: pulumi.String("POSTGRES_DB"), Value: pulumi.String(db.Name)},
			corev1.EnvVarArgs{Name: pulumi.String("POSTGRES_USER"), Value: pulumi.String(db.User)},
			corev1.EnvVarArgs{Name: pulumi.String("PGDATA"), Value: pulumi.String("/var/lib/postgresql/data/pgdata")},
			// db.port: the server, pg_isready and psql read it.
			corev1.EnvVarArgs{Name: pulumi.String("PGPORT"), Value: pulumi.String(fmt.Sprint(db.Port))},
			corev1.EnvVarArgs{Name: pulumi.String("POSTGRES_PASSWORD"), ValueFrom: corev1.EnvVarSourceArgs{
				SecretKeyRef: corev1.SecretKeySelectorArgs{Name: secret.Metadata.Name(), Key: pulumi.String("POSTGRES_PASSWORD")},
			}},
		},
		Resources: corev1.ResourceRequirementsArgs{
			// db.cpu and db.memory; requests a quarter of the CPU
			// and all the memory, so the scheduler never
			// overcommits the memory PostgreSQL will use.
			Requests: pulumi.StringMap{"cpu": pulumi.String(quarter(db.Resources.CPU)), "memory": pulumi.String(db.Resources.Memory.String()), "ephemeral-storage": pulumi.String("128Mi")},
			Limits:   pulumi.StringMap{"cpu": pulumi.String(db.Resources.CPU.String()), "memory": pulumi.String(db.Resources.Memory.String()), "ephemeral-storage": pulumi.String("128Mi")},
		},
		SecurityContext: sc,
		ReadinessProbe:  ready,
		LivenessProbe:   corev1.ProbeArgs{TcpSocket: corev1.TCPSocketActionArgs{Port: pulumi.String("postgres")}, PeriodSeconds: pulumi.Int(10)},
		VolumeMounts: corev1.VolumeMountArray{
			corev1.VolumeMountArgs{Name: pulumi.String("data"), MountPath: pulumi.String("/var/lib/postgresql/data")},
			runMount, tmpMount,
		},
	}
}

// quarter is a quarter of a CPU amount, in millicores: the database's CPU
// request. Its load is bursty (migrations, vacuum); requesting the whole
// limit would hold a core idle on small development clusters.
func quarter(cpu service.Quantity) string {
	return fmt.Sprintf("%dm", max(cpu.Value/4, 1))
}

// passwordSidecar makes the roles what the stack says on every start of
// the database pod (service.SetupRoles): the owner's password, and the
// app's least-privileged role with its password and grants. The image's
// entrypoint sets a password only when it creates the data directory, so
// a changed dbPassword would reach the app (a new Secret rolls the pod)
// while the database kept the old one. The sidecar waits for the server on
// the socket the pod shares (local connections are trusted), runs psql
// with the passwords read from the Secret's files, and only then turns
// ready: the pod, and so the StatefulSet the migration and the app wait
// for, is ready once the roles are set up.
func (b *builder) passwordSidecar(secret *corev1.Secret, sc *corev1.SecurityContextArgs, runMount, tmpMount corev1.VolumeMountArgs) corev1.ContainerArgs {
	db := b.args.Service.Database
	script := `set -eu
trap 'exit 0' TERM INT
until pg_isready -q -h /var/run/postgresql; do sleep 1; done
` + service.SetupRoles + `touch /tmp/password-applied
sleep infinity &
wait
`
	small := pulumi.StringMap{"cpu": pulumi.String("50m"), "memory": pulumi.String("64Mi"), "ephemeral-storage": pulumi.String("16Mi")}
	return corev1.ContainerArgs{
		Name:    pulumi.String("password"),
		Image:   pulumi.String(db.Image),
		Command: pulumi.StringArray{pulumi.String("bash"), pulumi.String("-c"), pulumi.String(script)},
		Env: corev1.EnvVarArray{
			corev1.EnvVarArgs{Name: pulumi.String("PGUSER"), Value: pulumi.String(db.User)},
			corev1.EnvVarArgs{Name: pulumi.String("PGDATABASE"), Value: pulumi.String(db.Name)},
			corev1.EnvVarArgs{Name: pulumi.String("PGPORT"), Value: pulumi.String(fmt.Sprint(db.Port))},
			corev1.EnvVarArgs{Name: pulumi.String("PGPASSWORD_FILE"), Value: pulumi.String(ownerPasswordFile)},
			corev1.EnvVarArgs{Name: pulumi.String("APP_USER"), Value: pulumi.String(db.AppUser)},
			corev1.EnvVarArgs{Name: pulumi.String("APP_PASSWORD_FILE"), Value: pulumi.String(appPasswordFile)},
			corev1.EnvVarArgs{Name: pulumi.String("MONITOR_USER"), Value: pulumi.String(service.MonitorUser)},
			corev1.EnvVarArgs{Name: pulumi.String("MONITOR_PASSWORD_FILE"), Value: pulumi.String(dbSecretsDir + "/" + monitorPasswordFile)},
		},
		Resources:       corev1.ResourceRequirementsArgs{Requests: small, Limits: small},
		SecurityContext: sc,
		ReadinessProbe: corev1.ProbeArgs{
			Exec:          corev1.ExecActionArgs{Command: pulumi.ToStringArray([]string{"test", "-e", "/tmp/password-applied"})},
			PeriodSeconds: pulumi.Int(2),
		},
		VolumeMounts: corev1.VolumeMountArray{
			runMount, tmpMount,
			passwordMount(),
		},
	}
}

// databasePorts are the database Service's: PostgreSQL, and the
// exporter's metrics when it runs in the pod.
func (b *builder) databasePorts() corev1.ServicePortArray {
	ports := corev1.ServicePortArray{corev1.ServicePortArgs{Name: pulumi.String("postgres"), Port: pulumi.Int(b.args.Service.Database.Port), TargetPort: pulumi.String("postgres")}}
	if b.databaseExporter() {
		ports = append(ports, corev1.ServicePortArgs{Name: pulumi.String("metrics"), Port: pulumi.Int(monitoring.PostgresExporterPort), TargetPort: pulumi.String("metrics")})
	}
	return ports
}

// dbSecretsDir is where the database's pod and backup Jobs mount its
// passwords (passwordVolume), as the files ownerPasswordFile and
// appPasswordFile.
const (
	dbSecretsDir      = "/run/secrets"
	ownerPasswordFile = dbSecretsDir + "/PGPASSWORD"
	appPasswordFile   = dbSecretsDir + "/APP_PGPASSWORD"
	// monitorPasswordFile is service.MonitorUser's password file, in the
	// password volume (the roles sidecar) and, alone, in the exporter's.
	monitorPasswordFile = "MONITOR_PGPASSWORD"
	// exporterSecretsDir is where the exporter finds it.
	exporterSecretsDir = "/run/exporter-secrets"
)

// passwordMount mounts passwordVolume at dbSecretsDir, read-only.
func passwordMount() corev1.VolumeMountArgs {
	return corev1.VolumeMountArgs{Name: pulumi.String("password"), MountPath: pulumi.String(dbSecretsDir), ReadOnly: pulumi.Bool(true)}
}

// passwordVolume is the owner's and the app role's passwords as the files
// PGPASSWORD and APP_PGPASSWORD, readable by the database's user only.
func passwordVolume(secret *corev1.Secret) corev1.VolumeArgs {
	return corev1.VolumeArgs{Name: pulumi.String("password"), Secret: corev1.SecretVolumeSourceArgs{
		SecretName: secret.Metadata.Name(),
		Items: corev1.KeyToPathArray{
			corev1.KeyToPathArgs{Key: pulumi.String("POSTGRES_PASSWORD"), Path: pulumi.String(path.Base(ownerPasswordFile))},
			corev1.KeyToPathArgs{Key: pulumi.String("APP_PASSWORD"), Path: pulumi.String(path.Base(appPasswordFile))},
			corev1.KeyToPathArgs{Key: pulumi.String("MONITOR_PASSWORD"), Path: pulumi.String(monitorPasswordFile)},
		},
		DefaultMode: pulumi.Int(0o400),
	}}
}

// exporterPasswordVolume is the exporter's role's password alone, as the
// file monitorPasswordFile: the exporter never holds the owner's.
func exporterPasswordVolume(secret *corev1.Secret) (corev1.VolumeArgs, corev1.VolumeMountArgs) {
	return corev1.VolumeArgs{Name: pulumi.String("exporter-password"), Secret: corev1.SecretVolumeSourceArgs{
		SecretName:  secret.Metadata.Name(),
		Items:       corev1.KeyToPathArray{corev1.KeyToPathArgs{Key: pulumi.String("MONITOR_PASSWORD"), Path: pulumi.String(monitorPasswordFile)}},
		DefaultMode: pulumi.Int(0o400),
	}}, corev1.VolumeMountArgs{Name: pulumi.String("exporter-password"), MountPath: pulumi.String(exporterSecretsDir), ReadOnly: pulumi.Bool(true)}
}
