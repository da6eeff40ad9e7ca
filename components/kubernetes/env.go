package kubernetes

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"path"
	"slices"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// autoNamed is metadata without a name: Pulumi names the object with a
// random suffix and, for ConfigMaps and Secrets, replaces it under a new name
// when its data changes. The Deployment refers to the new name, so a config
// change rolls the pods without a checksum annotation.
func (b *builder) autoNamed(component string) *metav1.ObjectMetaArgs {
	return &metav1.ObjectMetaArgs{Namespace: pulumi.String(b.args.Namespace), Labels: b.labels(component)}
}

// buildEnv creates the Secret with the app role's DATABASE_URL and the
// secret env, the migration's Secret with the owner's DATABASE_URL (which
// no app container refers to), the ConfigMap with the plain env, and the
// database's CA when DATABASE_URL verifies the server.
func (b *builder) buildEnv() error {
	s := b.args.Service
	secretData := pulumi.StringMap{"DATABASE_URL": b.appURL}
	for _, k := range slices.Sorted(maps.Keys(s.SecretEnv)) {
		secretData[k] = s.SecretEnv[k]
	}
	var err error
	b.envSecret, err = corev1.NewSecret(b.ctx, b.name+"-env-secret", &corev1.SecretArgs{
		Metadata:   b.autoNamed("api"),
		Type:       pulumi.String("Opaque"),
		StringData: pulumi.ToSecret(secretData).(pulumi.StringMapOutput),
	}, b.opts()...)
	if err != nil {
		return err
	}
	if s.Migration.Strategy != service.MigrationNone {
		b.ownerSecret, err = corev1.NewSecret(b.ctx, b.name+"-migration-secret", &corev1.SecretArgs{
			Metadata:   b.autoNamed("migration"),
			Type:       pulumi.String("Opaque"),
			StringData: pulumi.StringMap{"DATABASE_URL": pulumi.ToSecret(b.ownerURL).(pulumi.StringOutput)},
		}, b.opts()...)
		if err != nil {
			return err
		}
	}
	if db := s.Database; db.UsesCACert() {
		b.dbCA, err = corev1.NewConfigMap(b.ctx, b.name+"-db-ca", &corev1.ConfigMapArgs{
			Metadata: b.autoNamed("api"),
			Data:     pulumi.StringMap{path.Base(service.CACertFile): pulumi.String(db.CACert)},
		}, b.opts()...)
		if err != nil {
			return err
		}
	}
	plain := pulumi.StringMap{}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		plain[k] = pulumi.String(s.Env[k])
	}
	b.envConfig, err = corev1.NewConfigMap(b.ctx, b.name+"-env", &corev1.ConfigMapArgs{
		Metadata: b.autoNamed("api"),
		Data:     plain,
	}, b.opts()...)
	if err != nil {
		return err
	}
	if s.Registry.Server == "" {
		return nil
	}
	dockerConfig := s.Registry.Password.ApplyT(func(pw string) (string, error) {
		auth := base64.StdEncoding.EncodeToString([]byte(s.Registry.Username + ":" + pw))
		out, err := json.Marshal(map[string]any{"auths": map[string]any{
			s.Registry.Server: map[string]string{"username": s.Registry.Username, "password": pw, "auth": auth},
		}})
		return string(out), err
	}).(pulumi.StringOutput)
	b.pullSecret, err = corev1.NewSecret(b.ctx, b.name+"-pull-secret", &corev1.SecretArgs{
		Metadata:   b.autoNamed("api"),
		Type:       pulumi.String("kubernetes.io/dockerconfigjson"),
		StringData: pulumi.StringMap{".dockerconfigjson": pulumi.ToSecret(dockerConfig).(pulumi.StringOutput)},
	}, b.opts()...)
	return err
}

// envFrom gives a container the ConfigMap and the Secret: secret values
// reach the pod only through the Secret, never inline in the pod spec.
func (b *builder) envFrom() corev1.EnvFromSourceArray {
	return corev1.EnvFromSourceArray{
		corev1.EnvFromSourceArgs{ConfigMapRef: corev1.ConfigMapEnvSourceArgs{Name: b.envConfig.Metadata.Name()}},
		corev1.EnvFromSourceArgs{SecretRef: corev1.SecretEnvSourceArgs{Name: b.envSecret.Metadata.Name()}},
	}
}

func (b *builder) imagePullSecrets() corev1.LocalObjectReferenceArray {
	if b.pullSecret == nil {
		return nil
	}
	return corev1.LocalObjectReferenceArray{corev1.LocalObjectReferenceArgs{Name: b.pullSecret.Metadata.Name()}}
}
