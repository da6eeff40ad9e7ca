package kubernetes_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/kubernetes"
	"github.com/fastapi-infra/fastapi-infra/components/monitoring"
	"github.com/fastapi-infra/fastapi-infra/components/service"
	"github.com/fastapi-infra/fastapi-infra/internal/mocktest"
	"github.com/fastapi-infra/fastapi-infra/internal/pki"
)

// prodArgs is a service like the one the prod stack asks for (three to
// twelve pods behind ingress-nginx with cert-manager, a managed database
// verified with its CA, PDB, HPA, NetworkPolicies, the Prometheus
// Operator), built from the component's own inputs: the stacks tests
// check that the prod stack's config becomes such Args.
func prodArgs(t *testing.T) kubernetes.Args {
	t.Helper()
	ca, err := pki.NewCA("managed database test CA")
	if err != nil {
		t.Fatal(err)
	}
	s := mocktest.ServiceSpec()
	s.Name = "fastapi"
	s.Image.Ref = "ghcr.io/acme/fastapi-app:1.0.0"
	s.Workers, s.Replicas, s.ShutdownGraceSeconds = 1, 3, 30
	s.Domain = "api.example.com"
	s.TLS = service.TLS{Mode: service.TLSCertManager, ClusterIssuer: "letsencrypt-prod"}
	s.Resources.CPU, _ = service.ParseCPU("1")
	s.Resources.Memory, _ = service.ParseMemory("512Mi")
	db := &s.Database
	db.Mode, db.Host, db.Image = service.DatabaseExternal, "postgres.prod.example.internal", ""
	db.Password, db.AppUser, db.AppPassword = secret(mocktest.TestPassword), "app_runtime", secret(mocktest.TestAppPassword)
	db.SSLMode, db.CACert = "verify-full", string(ca.CertPEM)
	db.StorageSize = "10Gi"
	db.Resources.CPU, _ = service.ParseCPU("1")
	db.Resources.Memory, _ = service.ParseMemory("1Gi")
	db.Backup = service.Backup{Schedule: "30 3 * * *", Keep: 7}
	return kubernetes.Args{
		Service: s, Namespace: "fastapi-prod", CreateNamespace: true,
		IngressClass: "nginx", IngressNamespace: "ingress-nginx", ImagePullPolicy: "Always",
		TrustedProxies: []string{"10.244.0.0/16"}, BodyLimit: "10m",
		PodDisruptionBudget: true, NetworkPolicy: true,
		Autoscaling: &kubernetes.Autoscaling{MinReplicas: 3, MaxReplicas: 12, CPUTarget: 70},
		Monitoring: &kubernetes.Monitoring{Operator: true, Namespace: "monitoring", Interval: "15s",
			Rules: monitoring.Alerts("fastapi", "fastapi", monitoring.Thresholds{DownMinutes: 3, ErrorRatio: 0.05, P95Seconds: 0.5, RestartsPerHour: 3}).
				WithLabels(map[string]string{"stack": "prod", "environment": "production"}),
			Alerting: &kubernetes.Alerting{Routing: monitoring.Routing{GroupWait: "30s", GroupInterval: "5m", RepeatInterval: "1h"}}},
	}
}

func secret(v string) pulumi.StringOutput {
	return pulumi.ToSecret(pulumi.String(v)).(pulumi.StringOutput)
}

// inClusterDev turns prodArgs into a development cluster's service with
// its own database (which serves no TLS), watched by postgres_exporter
// with the database rules.
func inClusterDev(a *kubernetes.Args) {
	db := &a.Service.Database
	db.Mode, db.Host, db.Image, db.SSLMode, db.CACert = service.DatabaseInCluster, "", "postgres:15", "prefer", ""
	a.Monitoring.PostgresExporterImage = "quay.io/prometheuscommunity/postgres-exporter:v0.17.1"
	a.Monitoring.Rules.Rules = append(a.Monitoring.Rules.Rules, monitoring.DatabaseAlerts("fastapi", 24*time.Hour, 0)...)
}

// deployProd registers prodArgs, changed by edit, on the mock engine.
func deployProd(t *testing.T, edit func(*kubernetes.Args)) *mocktest.Recorder {
	t.Helper()
	args := prodArgs(t)
	if edit != nil {
		edit(&args)
	}
	return deployArgs(t, args)
}

func TestDeploymentPodSpec(t *testing.T) {
	rec := deployProd(t, nil)
	d := rec.One(t, "kubernetes:apps/v1:Deployment")
	c := "spec.template.spec.containers[0]"
	d.Equal(t, "metadata.namespace", "fastapi-prod")
	d.Equal(t, c+".image", "ghcr.io/acme/fastapi-app:1.0.0")
	d.Equal(t, c+".command", []any{"python3", "-m", "uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000", "--workers", "1", "--proxy-headers", "--forwarded-allow-ips", "10.244.0.0/16"})
	// Only the ingress controller's addresses, never every peer; without
	// any, only a sidecar on loopback.
	trusted := deployProd(t, func(a *kubernetes.Args) { a.TrustedProxies = []string{"10.244.0.0/16", "192.0.2.10"} }).One(t, "kubernetes:apps/v1:Deployment")
	trusted.Equal(t, c+".command[12]", "10.244.0.0/16,192.0.2.10")
	deployProd(t, func(a *kubernetes.Args) { a.TrustedProxies = nil }).One(t, "kubernetes:apps/v1:Deployment").Equal(t, c+".command[12]", "127.0.0.1")
	d.Equal(t, c+".ports[0].containerPort", 8000)
	d.Equal(t, c+".livenessProbe.httpGet.path", "/health/live")
	d.Equal(t, c+".livenessProbe.httpGet.port", "http")
	d.Equal(t, c+".readinessProbe.httpGet.path", "/health/ready")
	d.Equal(t, c+".readinessProbe.httpGet.port", "http")
	d.Equal(t, c+".startupProbe.httpGet.path", "/health/live")
	d.Equal(t, c+".startupProbe.failureThreshold", 30)
	d.Equal(t, c+".resources.limits.cpu", "1")
	d.Equal(t, c+".resources.limits.memory", "512Mi")
	d.Equal(t, c+".resources.requests.memory", "512Mi")
	d.Equal(t, c+".lifecycle.preStop.sleep.seconds", 5)
	d.Equal(t, "spec.template.spec.terminationGracePeriodSeconds", 35)
	d.Equal(t, "spec.strategy.rollingUpdate.maxUnavailable", 0)
	d.Equal(t, "spec.strategy.rollingUpdate.maxSurge", 1)
	d.Equal(t, "spec.template.spec.automountServiceAccountToken", false)
	d.Equal(t, "spec.template.spec.securityContext.runAsNonRoot", true)
	d.Equal(t, "spec.template.spec.securityContext.seccompProfile.type", "RuntimeDefault")
	d.Equal(t, c+".securityContext.readOnlyRootFilesystem", true)
	d.Equal(t, c+".securityContext.allowPrivilegeEscalation", false)
	d.Equal(t, c+".securityContext.runAsNonRoot", true)
	d.Equal(t, c+".securityContext.capabilities.drop", []any{"ALL"})
	d.Equal(t, c+".volumeMounts[0].mountPath", "/tmp")
	d.Equal(t, "spec.template.spec.volumes[0].emptyDir.sizeLimit", "64Mi")
	d.Equal(t, "spec.template.spec.topologySpreadConstraints[0].topologyKey", "kubernetes.io/hostname")
	d.Equal(t, "spec.template.spec.topologySpreadConstraints[0].maxSkew", 1)
	// With the HPA on, the first up starts its minimum, and the count is
	// the HPA's after that.
	d.Equal(t, "spec.replicas", 3)
	if !slices.Equal(d.IgnoreChanges, []string{"spec.replicas"}) {
		t.Errorf("with the HPA on, ignoreChanges %q, want spec.replicas left to the HPA after the first up", d.IgnoreChanges)
	}
	if d.Has("spec.template.spec.imagePullSecrets[0]") {
		t.Error("imagePullSecrets without registry credentials")
	}
	// Env comes from the ConfigMap and the Secret by reference, never inline.
	if d.Has(c + ".env") {
		t.Error("the app container has inline env")
	}
	cm, secret := rec.Named(t, "fastapi-env"), rec.Named(t, "fastapi-env-secret")
	d.Equal(t, c+".envFrom[0].configMapRef.name", cm.Name+mocktest.AutoNameSuffix)
	d.Equal(t, c+".envFrom[1].secretRef.name", secret.Name+mocktest.AutoNameSuffix)
	// db.caCert (prod verifies its managed database) as the file that
	// DATABASE_URL's sslrootcert names.
	ca := rec.Named(t, "fastapi-db-ca")
	if !strings.Contains(ca.Str(t, "data.DB_CA_CERT"), "-----BEGIN CERTIFICATE-----") {
		t.Error("the db-ca ConfigMap does not hold db.caCert")
	}
	d.Equal(t, c+".volumeMounts[1].mountPath", "/run/secrets")
	d.Equal(t, c+".volumeMounts[1].readOnly", true)
	d.Equal(t, "spec.template.spec.volumes[1].name", "db-ca")
	d.Equal(t, "spec.template.spec.volumes[1].configMap.name", ca.Name+mocktest.AutoNameSuffix)
	if service.CACertFile != "/run/secrets/DB_CA_CERT" {
		t.Errorf("service.CACertFile moved to %s: the mount above no longer holds it", service.CACertFile)
	}
}

func TestSecretHoldsDatabaseURLAsSecret(t *testing.T) {
	rec := deployProd(t, func(a *kubernetes.Args) {
		a.Service.SecretEnv = map[string]pulumi.StringOutput{"API_KEY": secret("k-123")}
	})
	// The app's Secret: its own role (db.appUser), verifying the server.
	// The migration's: the owner, which may change the schema.
	const query = "@postgres.prod.example.internal:5432/app?sslmode=verify-full&sslrootcert=/run/secrets/DB_CA_CERT"
	for name, data := range map[string]map[string]string{
		"fastapi-env-secret": {
			"DATABASE_URL": "postgresql://app_runtime:" + mocktest.TestAppPassword + query,
			"API_KEY":      "k-123",
		},
		"fastapi-migration-secret": {"DATABASE_URL": "postgresql://app:" + mocktest.TestPassword + query},
	} {
		s := rec.Named(t, name)
		for key, want := range data {
			v, secret, ok := s.At("stringData." + key)
			if !ok || v.StringValue() != want {
				t.Errorf("%s: stringData.%s = %v, want %q", name, key, v, want)
			}
			if !secret {
				t.Errorf("%s: stringData.%s is not marked secret", name, key)
			}
		}
	}
	// The Job's container takes DATABASE_URL from the migration's Secret
	// (over envFrom's); no app container refers to it.
	job := rec.One(t, "kubernetes:batch/v1:Job")
	job.Equal(t, "spec.template.spec.containers[0].env[0].name", "DATABASE_URL")
	job.Equal(t, "spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef.name", "fastapi-migration-secret"+mocktest.AutoNameSuffix)
	if d := rec.One(t, "kubernetes:apps/v1:Deployment"); strings.Contains(fmt.Sprint(d.Inputs), "migration-secret") {
		t.Error("the Deployment refers to the owner's Secret")
	}
	// The plain ConfigMap never carries it.
	cm := rec.Named(t, "fastapi-env")
	if strings.Contains(fmt.Sprint(cm.Get(t, "data")), mocktest.TestPassword) {
		t.Error("the password is in the ConfigMap")
	}
}

func TestMigrationJobGatesTheDeployment(t *testing.T) {
	rec := deployProd(t, nil)
	job, d := rec.One(t, "kubernetes:batch/v1:Job"), rec.One(t, "kubernetes:apps/v1:Deployment")
	if !d.DependsOn(job.Name) {
		t.Fatalf("the Deployment does not depend on the migration Job; deps %v", d.Dependencies)
	}
	if !job.DeleteBeforeReplace {
		t.Error("a re-run of the same Job name must delete the old one first")
	}
	job.Equal(t, "spec.template.spec.containers[0].command", []any{"python3", "-c", kubernetes.ExitCodeReporter, "alembic", "upgrade", "head"})
	job.Equal(t, "spec.template.spec.containers[0].image", "ghcr.io/acme/fastapi-app:1.0.0")
	job.Equal(t, "spec.backoffLimit", 0)
	job.Equal(t, "spec.podFailurePolicy.rules[0].action", "Ignore")
	job.Equal(t, "spec.podFailurePolicy.rules[0].onPodConditions[0].type", "DisruptionTarget")
	if job.Has("spec.podFailurePolicy.rules[1]") {
		t.Error("a FailJob rule leaves a Failed condition the provider's await does not recognise")
	}
	job.Equal(t, "spec.template.spec.containers[0].terminationMessagePolicy", "FallbackToLogsOnError")
	job.Equal(t, "spec.template.spec.restartPolicy", "Never")
	job.Equal(t, `metadata.annotations["pulumi.com/replaceUnready"]`, "true")
	job.Equal(t, "spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem", true)
	name := job.Str(t, "metadata.name")
	if !strings.HasPrefix(name, "fastapi-migrate-") {
		t.Errorf("job name %q", name)
	}
	// A new image is a new Job; the same image is the same Job.
	again := deployProd(t, nil).One(t, "kubernetes:batch/v1:Job").Str(t, "metadata.name")
	next := deployProd(t, func(a *kubernetes.Args) { a.Service.Image.Ref = "ghcr.io/acme/fastapi-app:1.0.1" }).One(t, "kubernetes:batch/v1:Job").Str(t, "metadata.name")
	if again != name || next == name {
		t.Errorf("job names: first %s, same release %s, next release %s", name, again, next)
	}
}

func TestInitContainerStrategy(t *testing.T) {
	rec := deployProd(t, func(a *kubernetes.Args) { a.Service.Migration.Strategy = service.MigrationInitContainer })
	if n := len(rec.ByType("kubernetes:batch/v1:Job")); n != 0 {
		t.Errorf("%d Jobs with the init-container strategy", n)
	}
	d := rec.One(t, "kubernetes:apps/v1:Deployment")
	d.Equal(t, "spec.template.spec.initContainers[0].command", []any{"python3", "-c", kubernetes.ExitCodeReporter, "alembic", "upgrade", "head"})
	d.Equal(t, "spec.template.spec.initContainers[0].securityContext.allowPrivilegeEscalation", false)
}

func TestServiceAndIngress(t *testing.T) {
	rec := deployProd(t, nil)
	svc := rec.One(t, "kubernetes:core/v1:Service")
	svc.Equal(t, "spec.type", "ClusterIP")
	svc.Equal(t, "spec.ports[0].port", 80)
	svc.Equal(t, "spec.ports[0].targetPort", "http")
	svc.Equal(t, `spec.selector["app.kubernetes.io/component"]`, "api")
	ing := rec.One(t, "kubernetes:networking.k8s.io/v1:Ingress")
	ing.Equal(t, "spec.ingressClassName", "nginx")
	ing.Equal(t, "spec.rules[0].host", "api.example.com")
	ing.Equal(t, "spec.tls[0].hosts", []any{"api.example.com"})
	ing.Equal(t, "spec.tls[0].secretName", "fastapi-tls")
	ing.Equal(t, "spec.rules[0].http.paths[0].backend.service.port.number", 80)
	ing.Equal(t, `metadata.annotations["cert-manager.io/cluster-issuer"]`, "letsencrypt-prod")
	ing.Equal(t, `metadata.annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"]`, "true")

	traefik := deployProd(t, func(a *kubernetes.Args) { a.IngressClass = "traefik" }).One(t, "kubernetes:networking.k8s.io/v1:Ingress")
	traefik.Equal(t, `metadata.annotations["traefik.ingress.kubernetes.io/router.entrypoints"]`, "websecure")
	traefik.Equal(t, `metadata.annotations["traefik.ingress.kubernetes.io/router.tls"]`, "true")
}

func TestDisruptionBudgetAndAutoscaler(t *testing.T) {
	rec := deployProd(t, nil)
	// One pod at a time however far the HPA scaled out (the lab checks
	// the budget the disruption controller computes at the HPA's maximum).
	pdb := rec.One(t, "kubernetes:policy/v1:PodDisruptionBudget")
	pdb.Equal(t, "spec.maxUnavailable", 1)
	pdb.Equal(t, "spec.unhealthyPodEvictionPolicy", "AlwaysAllow")
	if pdb.Has("spec.minAvailable") {
		t.Error("minAvailable of the HPA's minimum lets a drain evict all but that many pods at peak")
	}
	hpa := rec.One(t, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
	hpa.Equal(t, "spec.minReplicas", 3)
	hpa.Equal(t, "spec.maxReplicas", 12)
	hpa.Equal(t, "spec.metrics[0].resource.target.averageUtilization", 70)
	hpa.Equal(t, "spec.scaleTargetRef.name", "fastapi")
	hpa.Equal(t, "spec.scaleTargetRef.kind", "Deployment")

	// Rendered for kubectl apply or Argo CD, which know no ignoreChanges,
	// a count would undo the HPA on every apply.
	rendered := deployProd(t, func(a *kubernetes.Args) { a.Rendered = true }).One(t, "kubernetes:apps/v1:Deployment")
	if rendered.Has("spec.replicas") {
		t.Error("rendered manifests with an HPA carry spec.replicas")
	}
	for replicas, start := range map[int]int{1: 3, 5: 5, 40: 12} {
		d := deployProd(t, func(a *kubernetes.Args) { a.Service.Replicas = replicas }).One(t, "kubernetes:apps/v1:Deployment")
		d.Equal(t, "spec.replicas", start) // app.replicas within the HPA's 3..12
	}

	single := deployProd(t, func(a *kubernetes.Args) { a.Autoscaling, a.Service.Replicas = nil, 1 })
	pdb = single.One(t, "kubernetes:policy/v1:PodDisruptionBudget")
	if pdb.Has("spec.minAvailable") {
		t.Error("a PDB with minAvailable for one replica blocks every drain")
	}
	pdb.Equal(t, "spec.maxUnavailable", 1)
	single.One(t, "kubernetes:apps/v1:Deployment").Equal(t, "spec.replicas", 1)
	if n := len(single.ByType("kubernetes:autoscaling/v2:HorizontalPodAutoscaler")); n != 0 {
		t.Errorf("%d HPAs with kubernetes.hpa.enabled false", n)
	}
}

func TestNetworkPolicies(t *testing.T) {
	rec := deployProd(t, nil)
	var api mocktest.Resource
	for _, p := range rec.ByType("kubernetes:networking.k8s.io/v1:NetworkPolicy") {
		if p.Str(t, "metadata.name") == "fastapi-api" {
			api = p
		}
	}
	if api.Name == "" {
		t.Fatal("no NetworkPolicy for the app pods")
	}
	api.Equal(t, "spec.policyTypes", []any{"Ingress", "Egress"})
	api.Equal(t, `spec.podSelector.matchLabels["app.kubernetes.io/component"]`, "api")
	api.Equal(t, `spec.ingress[0].from[0].namespaceSelector.matchLabels["kubernetes.io/metadata.name"]`, "ingress-nginx")
	api.Equal(t, "spec.ingress[0].ports[0].port", 8000)
	// The second rule admits Prometheus (prod has monitoring on); no third.
	api.Equal(t, `spec.ingress[1].from[0].namespaceSelector.matchLabels["kubernetes.io/metadata.name"]`, "monitoring")
	if api.Has("spec.ingress[2]") {
		t.Error("ingress beyond the ingress controller and Prometheus")
	}
	api.Equal(t, "spec.egress[0].ports[0].port", 53)
	api.Equal(t, "spec.egress[0].ports[0].protocol", "UDP")
	// DNS only in the DNS pods' namespace, not in every namespace.
	api.Equal(t, `spec.egress[0].to[0].namespaceSelector.matchLabels["kubernetes.io/metadata.name"]`, "kube-system")
	if api.Has("spec.egress[0].to[1]") {
		t.Error("DNS beyond the cluster's DNS namespace")
	}
	api.Equal(t, "spec.egress[1].ports[0].port", 5432)
	// A managed database named by host, with no addresses given: its port
	// anywhere (production refuses that in the stack config).
	api.Equal(t, "spec.egress[1].to[0].ipBlock.cidr", "0.0.0.0/0")
	if api.Has("spec.egress[2]") {
		t.Error("egress beyond DNS and the database")
	}
	if n := len(rec.ByType("kubernetes:networking.k8s.io/v1:NetworkPolicy")); n != 2 {
		t.Errorf("want policies for the app and the migration pods, got %d", n)
	}

	// What the stack names: the database's ranges, node-local DNS.
	named := deployProd(t, func(a *kubernetes.Args) {
		a.DatabaseCIDRs = []string{"10.20.0.0/16", "10.21.0.0/16"}
		a.DNSCIDRs = []string{"169.254.20.10/32"}
		a.DNSNamespace = "dns"
	})
	for _, p := range named.ByType("kubernetes:networking.k8s.io/v1:NetworkPolicy") {
		if p.Str(t, "metadata.name") != "fastapi-api" {
			continue
		}
		p.Equal(t, `spec.egress[0].to[0].namespaceSelector.matchLabels["kubernetes.io/metadata.name"]`, "dns")
		p.Equal(t, "spec.egress[0].to[1].ipBlock.cidr", "169.254.20.10/32")
		p.Equal(t, "spec.egress[1].to[0].ipBlock.cidr", "10.20.0.0/16")
		p.Equal(t, "spec.egress[1].to[1].ipBlock.cidr", "10.21.0.0/16")
	}
	// An external database given by address: that address alone.
	byAddress := deployProd(t, func(a *kubernetes.Args) { a.Service.Database.Host = "10.20.3.4" })
	for _, p := range byAddress.ByType("kubernetes:networking.k8s.io/v1:NetworkPolicy") {
		if p.Str(t, "metadata.name") == "fastapi-api" {
			p.Equal(t, "spec.egress[1].to[0].ipBlock.cidr", "10.20.3.4/32")
		}
	}
}

func TestServiceAccountAndNamespace(t *testing.T) {
	rec := deployProd(t, nil)
	rec.One(t, "kubernetes:core/v1:ServiceAccount").Equal(t, "automountServiceAccountToken", false)
	ns := rec.One(t, "kubernetes:core/v1:Namespace")
	ns.Equal(t, "metadata.name", "fastapi-prod")
	ns.Equal(t, `metadata.labels["pod-security.kubernetes.io/enforce"]`, "restricted")
	existing := deployProd(t, func(a *kubernetes.Args) { a.CreateNamespace = false })
	if n := len(existing.ByType("kubernetes:core/v1:Namespace")); n != 0 {
		t.Errorf("created %d namespaces with createNamespace false", n)
	}
}

func TestPullSecretAndProvidedTLS(t *testing.T) {
	const cert, key = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"
	rec := deployProd(t, func(a *kubernetes.Args) {
		a.Service.Registry = service.Registry{Server: "ghcr.io", Username: "bot", Password: secret("ghp_token")}
		a.Service.TLS = service.TLS{Mode: service.TLSProvided, Cert: secret(cert), Key: secret(key)}
	})
	var pull, tls mocktest.Resource
	for _, s := range rec.ByType("kubernetes:core/v1:Secret") {
		switch s.Str(t, "type") {
		case "kubernetes.io/dockerconfigjson":
			pull = s
		case "kubernetes.io/tls":
			tls = s
		}
	}
	if pull.Name == "" || tls.Name == "" {
		t.Fatal("want a pull secret and a TLS secret")
	}
	if v, secret, _ := pull.At(`stringData[".dockerconfigjson"]`); !secret || !strings.Contains(v.StringValue(), `"ghcr.io"`) {
		t.Errorf("pull secret: secret=%v value=%v", secret, v)
	}
	if v, secret, _ := tls.At(`stringData["tls.key"]`); !secret || v.StringValue() != key {
		t.Error("tls.key is not passed as a secret")
	}
	tls.Equal(t, "metadata.name", "fastapi-tls")
	d := rec.One(t, "kubernetes:apps/v1:Deployment")
	d.Equal(t, "spec.template.spec.imagePullSecrets[0].name", pull.Name+mocktest.AutoNameSuffix)
}

func TestInClusterDatabaseKeepsItsVolume(t *testing.T) {
	rec := deployProd(t, inClusterDev)
	pvc := rec.Named(t, "fastapi-db-data")
	if !pvc.RetainOnDelete {
		t.Error("the database claim is not retained on delete")
	}
	if !rec.One(t, "kubernetes:core/v1:Namespace").RetainOnDelete {
		t.Error("deleting the namespace would delete the retained claim")
	}
	pvc.Equal(t, "spec.resources.requests.storage", "10Gi")
	sts := rec.One(t, "kubernetes:apps/v1:StatefulSet")
	sts.Equal(t, "spec.template.spec.containers[0].image", "postgres:15")
	sts.Equal(t, "spec.template.spec.containers[0].readinessProbe.exec.command", []any{"pg_isready", "-h", "127.0.0.1", "-U", "app", "-d", "app"})
	sts.Equal(t, "spec.template.spec.volumes[0].persistentVolumeClaim.claimName", "fastapi-db-data")
	sts.Equal(t, "spec.template.spec.containers[0].env[4].name", "POSTGRES_PASSWORD")
	if sts.Has("spec.template.spec.containers[0].env[4].value") {
		t.Error("POSTGRES_PASSWORD is inline instead of from the Secret")
	}
	var url string
	for _, s := range rec.ByType("kubernetes:core/v1:Secret") {
		if s.Name == "fastapi-env-secret" {
			url = s.Str(t, "stringData.DATABASE_URL")
		}
	}
	if !strings.Contains(url, "@fastapi-db.fastapi-prod.svc:5432/app") {
		t.Errorf("DATABASE_URL %q does not point at the in-cluster database", url)
	}
	// On real pods a migration that starts before PostgreSQL answers fails
	// (its name does not even resolve until the pod is ready): the Job, and
	// so the Deployment, waits for the StatefulSet.
	if job := rec.One(t, "kubernetes:batch/v1:Job"); !job.DependsOn(sts.Name) {
		t.Errorf("the migration Job does not wait for the database; deps %v", job.Dependencies)
	}
	sts.Equal(t, "spec.template.spec.containers[0].resources.limits", map[string]any{"cpu": "1", "memory": "1Gi", "ephemeral-storage": "128Mi"})
	sts.Equal(t, "spec.template.spec.containers[0].resources.requests", map[string]any{"cpu": "250m", "memory": "1Gi", "ephemeral-storage": "128Mi"})
	sized := deployProd(t, func(a *kubernetes.Args) {
		inClusterDev(a)
		a.Service.Database.Resources.CPU, _ = service.ParseCPU("2")
		a.Service.Database.Resources.Memory, _ = service.ParseMemory("4Gi")
	}).One(t, "kubernetes:apps/v1:StatefulSet")
	sized.Equal(t, "spec.template.spec.containers[0].resources.limits", map[string]any{"cpu": "2", "memory": "4Gi", "ephemeral-storage": "128Mi"})
	sized.Equal(t, "spec.template.spec.containers[0].resources.requests.cpu", "500m")
	optOut := deployProd(t, func(a *kubernetes.Args) {
		inClusterDev(a)
		a.Service.Database.RetainOnDelete = false
	})
	for _, claim := range optOut.ByType("kubernetes:core/v1:PersistentVolumeClaim") {
		if claim.RetainOnDelete {
			t.Errorf("db.retainOnDelete false still retains claim %s", claim.Name)
		}
	}
}

func TestMonitoringWithTheOperator(t *testing.T) {
	rec := deployProd(t, nil) // prod: monitoring on, Prometheus Operator
	var sm, pr mocktest.Resource
	for _, r := range rec.ByType("kubernetes:monitoring.coreos.com/v1:ServiceMonitor") {
		sm = r
	}
	for _, r := range rec.ByType("kubernetes:monitoring.coreos.com/v1:PrometheusRule") {
		pr = r
	}
	if sm.Name == "" || pr.Name == "" {
		t.Fatalf("want a ServiceMonitor and a PrometheusRule; types %v", rec.Types())
	}
	sm.Equal(t, "spec.endpoints[0].port", "http")
	sm.Equal(t, "spec.endpoints[0].path", "/metrics")
	sm.Equal(t, `spec.selector.matchLabels["app.kubernetes.io/name"]`, "fastapi")
	pr.Equal(t, "spec.groups[0].rules[0].alert", "FastAPIServiceDown")
	pr.Equal(t, "spec.groups[0].rules[0].for", "3m")
	if n := len(pr.Get(t, "spec.groups[0].rules").([]any)); n != 6 {
		t.Errorf("%d rules, want 6", n)
	}
	d := rec.One(t, "kubernetes:apps/v1:Deployment")
	if d.Has(`spec.template.metadata.annotations["prometheus.io/scrape"]`) {
		t.Error("scrape annotations beside a ServiceMonitor")
	}
	for _, p := range rec.ByType("kubernetes:networking.k8s.io/v1:NetworkPolicy") {
		if p.Str(t, "metadata.name") == "fastapi-api" {
			p.Equal(t, `spec.ingress[1].from[0].namespaceSelector.matchLabels["kubernetes.io/metadata.name"]`, "monitoring")
			p.Equal(t, "spec.ingress[1].ports[0].port", 8000)
		}
	}
}

// TestInClusterDatabaseExporter: with monitoring on, the in-cluster
// database's pod runs postgres_exporter (loopback, the owner's password
// file, the backup query), its Service has a metrics port that a
// ServiceMonitor scrapes as the job the database rules select, only the
// monitoring namespace may reach that port, and the rules include the
// database's. A managed database gets none of it.
func TestInClusterDatabaseExporter(t *testing.T) {
	rec := deployProd(t, inClusterDev)
	sts := rec.One(t, "kubernetes:apps/v1:StatefulSet")
	const exp = "spec.template.spec.containers[2]"
	sts.Equal(t, exp+".name", "exporter")
	sts.Equal(t, exp+".image", "quay.io/prometheuscommunity/postgres-exporter:v0.17.1")
	sts.Equal(t, exp+".args", []any{"--web.listen-address=:9187"})
	sts.Equal(t, exp+".ports[0].name", "metrics")
	sts.Equal(t, exp+".securityContext.readOnlyRootFilesystem", true)
	env := fmt.Sprint(sts.Get(t, exp+".env"))
	for _, want := range []string{"DATA_SOURCE_URI value:127.0.0.1:5432/postgres?sslmode=disable", "DATA_SOURCE_USER value:fastapi_infra_monitor",
		"DATA_SOURCE_PASS_FILE value:/run/exporter-secrets/MONITOR_PGPASSWORD", "PG_EXPORTER_EXTEND_QUERY_PATH value:" + monitoring.QueriesFile} {
		if !strings.Contains(env, want) {
			t.Errorf("the exporter's env lacks %s: %s", want, env)
		}
	}
	if strings.Contains(env, mocktest.TestPassword) {
		t.Error("the password is in the exporter's env")
	}
	// Its role's password alone, never the owner's.
	sts.Equal(t, exp+".volumeMounts[0].mountPath", "/run/exporter-secrets")
	vols := fmt.Sprint(sts.Get(t, "spec.template.spec.volumes"))
	if !strings.Contains(vols, "name:exporter-password secret:map[defaultMode:256 items:[map[key:MONITOR_PASSWORD path:MONITOR_PGPASSWORD]]") {
		t.Errorf("the exporter's password volume is not the monitor role's key alone: %s", vols)
	}
	if env := fmt.Sprint(sts.Get(t, "spec.template.spec.containers[1].env")); !strings.Contains(env, "MONITOR_USER value:fastapi_infra_monitor") {
		t.Errorf("the roles sidecar does not make the exporter's role: %s", env)
	}
	sts.Equal(t, exp+".volumeMounts[1].mountPath", monitoring.QueriesDir)
	queries := rec.Named(t, "fastapi-db-exporter")
	if !strings.Contains(queries.Str(t, "data[\"queries.yaml\"]"), "fastapi_infra_backup") {
		t.Error("the exporter's queries ConfigMap lacks the backup query")
	}
	if sts.Has(`spec.template.metadata.annotations["prometheus.io/scrape"]`) {
		t.Error("scrape annotations beside a ServiceMonitor")
	}
	svc := rec.Named(t, "fastapi-db-service")
	svc.Equal(t, "spec.ports[1].name", "metrics")
	svc.Equal(t, "spec.ports[1].port", 9187)
	sm := rec.Named(t, "fastapi-db-servicemonitor")
	sm.Equal(t, "spec.endpoints[0].port", "metrics")
	sm.Equal(t, "spec.endpoints[0].relabelings[0].targetLabel", "job")
	sm.Equal(t, "spec.endpoints[0].relabelings[0].replacement", monitoring.PostgresJob("fastapi"))
	sm.Equal(t, `spec.selector.matchLabels["app.kubernetes.io/component"]`, "database")
	rules := fmt.Sprint(rec.One(t, "kubernetes:monitoring.coreos.com/v1:PrometheusRule").Get(t, "spec.groups[0].rules"))
	for _, alert := range []string{"PostgresDown", "PostgresConnectionsNearLimit", "PostgresBackupTooOld"} {
		if !strings.Contains(rules, "alert:"+alert) {
			t.Errorf("the PrometheusRule lacks %s", alert)
		}
	}
	np := rec.Named(t, "fastapi-database-netpol")
	np.Equal(t, `spec.ingress[1].from[0].namespaceSelector.matchLabels["kubernetes.io/metadata.name"]`, "monitoring")
	np.Equal(t, "spec.ingress[1].ports[0].port", 9187)

	// Without the Operator the pod is annotated instead.
	plain := deployProd(t, func(a *kubernetes.Args) {
		inClusterDev(a)
		a.Monitoring.Operator = false
	}).One(t, "kubernetes:apps/v1:StatefulSet")
	plain.Equal(t, `spec.template.metadata.annotations["prometheus.io/port"]`, "9187")

	// The managed database (prod) is its provider's to watch.
	prod := deployProd(t, nil)
	if n := len(prod.ByType("kubernetes:apps/v1:StatefulSet")); n != 0 {
		t.Fatalf("prod runs %d StatefulSets", n)
	}
	if rules := fmt.Sprint(prod.One(t, "kubernetes:monitoring.coreos.com/v1:PrometheusRule").Get(t, "spec.groups[0].rules")); strings.Contains(rules, "Postgres") {
		t.Error("database rules for a managed database, which no exporter here watches")
	}
}

// TestAlertmanagerConfigWithTheOperator: the stack's receivers become an
// AlertmanagerConfig that routes by severity and inhibits, reading every
// URL and password from a Secret; without a receiver there is none.
func TestAlertmanagerConfigWithTheOperator(t *testing.T) {
	const hook, pw = "https://hooks.example.com/services/T0K3N", "smtp-s3cret"
	rec := deployProd(t, func(a *kubernetes.Args) {
		a.Monitoring.Alerting.Receivers = monitoring.Receivers{WebhookURL: hook, SMTPPassword: pw,
			EmailTo: "oncall@example.com", EmailFrom: "alerts@example.com", SMTPHost: "smtp.example.com:587", SMTPUser: "alerts"}
	})
	amc := rec.One(t, "kubernetes:monitoring.coreos.com/v1alpha1:AlertmanagerConfig")
	var secret mocktest.Resource
	for _, s := range rec.ByType("kubernetes:core/v1:Secret") {
		if strings.HasSuffix(s.Name, "-alerting-secret") {
			secret = s
		}
	}
	if secret.Name == "" {
		t.Fatal("no Secret with the receivers' URLs")
	}
	for key, want := range map[string]string{"webhook-url": hook, "smtp-password": pw} {
		if v, isSecret, _ := secret.At("stringData." + key); !isSecret || v.StringValue() != want {
			t.Errorf("Secret key %s: secret %v", key, isSecret)
		}
	}
	name := secret.Name + mocktest.AutoNameSuffix
	amc.Equal(t, "spec.route.receiver", "critical")
	amc.Equal(t, "spec.route.groupBy", []any{"alertname", "service", "stack"})
	amc.Equal(t, "spec.route.routes[1].receiver", "warning")
	amc.Equal(t, "spec.route.routes[1].matchers[0]", map[string]any{"name": "severity", "matchType": "=", "value": "warning"})
	amc.Equal(t, "spec.route.routes[1].repeatInterval", "3h")
	amc.Equal(t, "spec.receivers[0].webhookConfigs[0].urlSecret", map[string]any{"name": name, "key": "webhook-url"})
	amc.Equal(t, "spec.receivers[0].webhookConfigs[0].sendResolved", true)
	amc.Equal(t, "spec.receivers[1].emailConfigs[0].authPassword", map[string]any{"name": name, "key": "smtp-password"})
	amc.Equal(t, "spec.receivers[1].emailConfigs[0].to", "oncall@example.com")
	amc.Equal(t, "spec.inhibitRules[0].sourceMatch[0].value", "FastAPIServiceDown")
	for _, r := range rec.All() {
		if r.Type != "kubernetes:core/v1:Secret" && (strings.Contains(fmt.Sprint(r.Inputs), "T0K3N") || strings.Contains(fmt.Sprint(r.Inputs), pw)) {
			t.Errorf("%s %s holds a receiver's secret outside a Secret", r.Type, r.Name)
		}
	}
	pr := rec.One(t, "kubernetes:monitoring.coreos.com/v1:PrometheusRule")
	pr.Equal(t, "spec.groups[0].rules[0].labels.stack", "prod")
	if n := len(deployProd(t, nil).ByType("kubernetes:monitoring.coreos.com/v1alpha1:AlertmanagerConfig")); n != 0 {
		t.Errorf("%d AlertmanagerConfigs without a receiver", n)
	}
}

func TestMonitoringWithAnnotations(t *testing.T) {
	rec := deployProd(t, func(a *kubernetes.Args) { a.Monitoring.Operator = false })
	if n := len(rec.ByType("kubernetes:monitoring.coreos.com/v1:ServiceMonitor")); n != 0 {
		t.Errorf("%d ServiceMonitors without the operator", n)
	}
	d := rec.One(t, "kubernetes:apps/v1:Deployment")
	d.Equal(t, `spec.template.metadata.annotations["prometheus.io/scrape"]`, "true")
	d.Equal(t, `spec.template.metadata.annotations["prometheus.io/port"]`, "8000")
	d.Equal(t, `spec.template.metadata.annotations["prometheus.io/path"]`, "/metrics")
}

func TestNodeSelectorPlacesEveryPod(t *testing.T) {
	rec := deployProd(t, func(a *kubernetes.Args) {
		inClusterDev(a)
		a.NodeSelector = map[string]string{"example.com/pool": "api"}
	})
	for _, typ := range []string{"kubernetes:apps/v1:Deployment", "kubernetes:batch/v1:Job", "kubernetes:apps/v1:StatefulSet"} {
		rec.One(t, typ).Equal(t, "spec.template.spec.nodeSelector", map[string]any{"example.com/pool": "api"})
	}
	if deployProd(t, nil).One(t, "kubernetes:apps/v1:Deployment").Has("spec.template.spec.nodeSelector") {
		t.Error("a node selector without kubernetes.nodeSelector")
	}
}

// TestDatabasePortIsHonoured: db.port is the port DATABASE_URL names, so the
// in-cluster server listens there, its Service and NetworkPolicy say so.
func TestDatabasePortIsHonoured(t *testing.T) {
	rec := deployProd(t, func(a *kubernetes.Args) {
		inClusterDev(a)
		a.Service.Database.Port = 6543
	})
	sts := rec.One(t, "kubernetes:apps/v1:StatefulSet")
	sts.Equal(t, "spec.template.spec.containers[0].ports[0].containerPort", 6543)
	sts.Equal(t, "spec.template.spec.containers[0].env[3]", map[string]any{"name": "PGPORT", "value": "6543"})
	for _, svc := range rec.ByType("kubernetes:core/v1:Service") {
		if svc.Name == "fastapi-db-service" {
			svc.Equal(t, "spec.ports[0].port", 6543)
		}
	}
	rec.Named(t, "fastapi-database-netpol").Equal(t, "spec.ingress[0].ports[0].port", 6543)
	for _, s := range rec.ByType("kubernetes:core/v1:Secret") {
		if s.Has("stringData.DATABASE_URL") && !strings.Contains(s.Str(t, "stringData.DATABASE_URL"), ".svc:6543/") {
			t.Errorf("DATABASE_URL %s", s.Str(t, "stringData.DATABASE_URL"))
		}
	}
}

// TestIngressBodyLimitIsProxyBodyLimit: one key for the largest body.
func TestIngressBodyLimitIsProxyBodyLimit(t *testing.T) {
	ing := deployProd(t, func(a *kubernetes.Args) { a.BodyLimit = "25m" }).One(t, "kubernetes:networking.k8s.io/v1:Ingress")
	ing.Equal(t, `metadata.annotations["nginx.ingress.kubernetes.io/proxy-body-size"]`, "25m")
}

// TestInClusterDatabaseBackups: a CronJob dumps the in-cluster database on
// db.backup.schedule with the same backup.sh as the single server, in the
// database's image, as its user under the restricted profile, into a
// retained claim; the database's NetworkPolicy admits it.
func TestInClusterDatabaseBackups(t *testing.T) {
	rec := deployProd(t, inClusterDev)
	cron := rec.One(t, "kubernetes:batch/v1:CronJob")
	cron.Equal(t, "metadata.name", "fastapi-db-backup")
	cron.Equal(t, "spec.schedule", "30 3 * * *")
	cron.Equal(t, "spec.timeZone", "Etc/UTC")
	cron.Equal(t, "spec.concurrencyPolicy", "Forbid")
	pod := "spec.jobTemplate.spec.template.spec."
	cron.Equal(t, pod+"containers[0].image", "postgres:15")
	cron.Equal(t, pod+"containers[0].command", toAny(service.BackupCommand("now")))
	cron.Equal(t, pod+"containers[0].securityContext.runAsUser", 999)
	cron.Equal(t, pod+"containers[0].securityContext.readOnlyRootFilesystem", true)
	cron.Equal(t, pod+"securityContext.fsGroup", 999)
	cron.Equal(t, pod+"volumes[0].persistentVolumeClaim.claimName", "fastapi-db-backups")
	cron.Equal(t, pod+"volumes[1].secret.items[0].key", "POSTGRES_PASSWORD")
	cron.Equal(t, pod+"volumes[1].secret.defaultMode", 0o400)
	envs := fmt.Sprint(cron.Get(t, pod+"containers[0].env"))
	for _, want := range []string{"name:BACKUP_KEEP value:7", "name:PGHOST value:fastapi-db.fastapi-prod.svc", "name:PGPASSWORD_FILE value:/run/secrets/PGPASSWORD"} {
		if !strings.Contains(envs, want) {
			t.Errorf("the backup's environment lacks %q: %s", want, envs)
		}
	}
	if strings.Contains(envs, mocktest.TestPassword) {
		t.Error("the password is in the backup's environment")
	}
	if !rec.Named(t, "fastapi-db-backups").RetainOnDelete {
		t.Error("the backups claim is not retained on delete")
	}
	dbPolicy := rec.Named(t, "fastapi-database-netpol")
	dbPolicy.Equal(t, `spec.ingress[0].from[2].podSelector.matchLabels["app.kubernetes.io/component"]`, "backup")
	rec.Named(t, "fastapi-backup-netpol").Equal(t, "spec.egress[1].ports[0].port", 5432)

	off := deployProd(t, func(a *kubernetes.Args) {
		inClusterDev(a)
		a.Service.Database.Backup.Schedule = ""
	})
	if n := len(off.ByType("kubernetes:batch/v1:CronJob")); n != 0 {
		t.Errorf("db.backup.schedule empty still makes %d CronJobs", n)
	}
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// TestInClusterDatabaseAppliesItsPassword: a sidecar in the database pod
// applies dbPassword over the pod's socket on every start and turns ready
// only then, so a rotated password reaches the running database before
// the migration and the app connect with it.
func TestInClusterDatabaseAppliesItsPassword(t *testing.T) {
	rec := deployProd(t, inClusterDev)
	sts := rec.One(t, "kubernetes:apps/v1:StatefulSet")
	side := "spec.template.spec.containers[1]."
	sts.Equal(t, side+"name", "password")
	sts.Equal(t, side+"image", "postgres:15")
	script := fmt.Sprint(sts.Get(t, side+"command"))
	if !strings.Contains(script, service.SetupRoles) || !strings.Contains(script, "touch /tmp/password-applied") {
		t.Errorf("the sidecar does not apply the password before it is ready: %s", script)
	}
	sts.Equal(t, side+"readinessProbe.exec.command", []any{"test", "-e", "/tmp/password-applied"})
	sts.Equal(t, side+"securityContext.runAsUser", 999)
	sts.Equal(t, side+"volumeMounts[0].mountPath", "/var/run/postgresql")
	sts.Equal(t, side+"volumeMounts[2].mountPath", "/run/secrets")
	sts.Equal(t, "spec.template.spec.volumes[3].secret.items[0].key", "POSTGRES_PASSWORD")
	if strings.Contains(fmt.Sprint(sts.Get(t, side+"env")), mocktest.TestPassword) {
		t.Error("the password is in the sidecar's environment")
	}
}
