package stacks

import (
	"strconv"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/monitoring"
	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// Spec converts validated config into the neutral service spec. It is only
// called after validate passed, so parse errors cannot happen here.
func (c *Config) Spec() service.Spec {
	cpu, _ := service.ParseCPU(c.CPU)
	mem, _ := service.ParseMemory(c.Memory)
	dbCPU, _ := service.ParseCPU(c.DBCPU)
	dbMem, _ := service.ParseMemory(c.DBMemory)
	secretEnv := map[string]pulumi.StringOutput{}
	for name, v := range c.SecretEnv {
		secretEnv[name] = pulumi.ToSecret(pulumi.String(v)).(pulumi.StringOutput)
	}
	s := service.Spec{
		Name:      c.AppName,
		Image:     service.Image{Ref: c.Image, BuildContext: c.BuildContext, Dockerfile: c.Dockerfile},
		Port:      c.Port,
		Module:    c.Module,
		Workers:   c.Workers,
		Replicas:  c.Replicas,
		Env:       c.Env,
		SecretEnv: secretEnv,
		Health:    service.Health{LivePath: c.LivePath, ReadyPath: c.ReadyPath},
		Migration: service.Migration{
			Strategy: service.MigrationStrategy(c.MigrationStrategy),
			Command:  c.MigrationCommand,
		},
		Resources:            service.Resources{CPU: cpu, Memory: mem},
		ShutdownGraceSeconds: c.ShutdownGraceSeconds,
		Domain:               c.Domain,
		TLS: service.TLS{
			Mode:          service.TLSMode(c.TLSMode),
			Cert:          c.tlsCert.output(),
			Key:           c.tlsKey.output(),
			ACMEEmail:     c.TLSACMEEmail,
			ACMEServer:    c.TLSACMEServer,
			ACMECA:        c.TLSACMECA,
			SecretName:    c.TLSSecretName,
			ClusterIssuer: c.TLSClusterIssuer,
		},
		ProxyHeaders: c.ProxyHeaders,
		Database: service.Database{
			Mode:           service.DatabaseMode(c.DBMode),
			Image:          c.DBImage,
			Host:           c.DBHost,
			Port:           c.DBPort,
			Name:           c.DBName,
			User:           c.DBUser,
			Password:       c.dbPassword.output(),
			AppUser:        c.DBAppUser,
			AppPassword:    c.dbAppPassword.output(),
			SSLMode:        c.DBSSLMode,
			CACert:         c.DBCACert,
			RetainOnDelete: c.DBRetainOnDelete,
			StorageSize:    c.DBStorageSize,
			StorageClass:   c.DBStorageClass,
			Backup:         service.Backup{Schedule: c.DBBackupSchedule, Keep: c.DBBackupKeep},
			Resources:      service.Resources{CPU: dbCPU, Memory: dbMem},
		},
	}
	if c.RegistryServer != "" {
		s.Registry = service.Registry{Server: c.RegistryServer, Username: c.RegistryUsername, Password: c.registryPassword.output()}
	}
	return s
}

// Alerts are the service's alert rules with the stack's thresholds; the
// scrape job is named after the service in both architectures, and the
// rules select it. Only called after validate checked the thresholds.
func (c *Config) Alerts() monitoring.Group {
	ratio, _ := strconv.ParseFloat(c.ErrorRatio, 64)
	p95, _ := strconv.ParseFloat(c.P95Seconds, 64)
	return monitoring.Alerts(c.AppName, c.AppName, monitoring.Thresholds{
		DownMinutes: c.DownMinutes, ErrorRatio: ratio, P95Seconds: p95, RestartsPerHour: c.RestartsPerHour,
	})
}

// Receivers are the alert channels the stack configures.
func (c *Config) Receivers() monitoring.Receivers {
	return monitoring.Receivers{
		WebhookURL: c.alertWebhookURL.plain,
		SlackURL:   c.alertSlackURL.plain, SlackChannel: c.SlackChannel,
		EmailTo: c.EmailTo, EmailFrom: c.EmailFrom, SMTPHost: c.SMTPHost, SMTPUser: c.SMTPUsername, SMTPPassword: c.alertSMTPPassword.plain,
	}
}

// Routing is the stack's grouping and repetition of notifications.
func (c *Config) Routing() monitoring.Routing {
	return monitoring.Routing{GroupWait: c.GroupWait, GroupInterval: c.GroupInterval, RepeatInterval: c.RepeatInterval}
}

// alertLabels go on every alert that leaves the stack's Prometheus, so a
// notification says where it comes from.
func (c *Config) alertLabels() map[string]string {
	return map[string]string{"stack": c.stack, "environment": c.Environment}
}

// backupMaxAge is the longest gap of db.backup.schedule (0 without
// backups): how old the newest backup may be. Only called after validate
// checked the schedule.
func (c *Config) backupMaxAge() time.Duration {
	if c.DBBackupSchedule == "" {
		return 0
	}
	s, err := service.ParseSchedule(c.DBBackupSchedule)
	if err != nil {
		return 0
	}
	return s.LongestGap()
}
