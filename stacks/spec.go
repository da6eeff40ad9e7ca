package stacks

import (
	"maps"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/monitoring"
	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// Spec converts validated config into the neutral service spec. It is only
// called after validate passed, so parse errors cannot happen here.
func (c *Config) Spec() service.Spec {
	secretEnv := map[string]pulumi.StringOutput{}
	for name, v := range c.SecretEnv {
		secretEnv[name] = pulumi.ToSecret(pulumi.String(v)).(pulumi.StringOutput)
	}
	s := service.Spec{
		Name:      c.App.Name,
		Image:     service.Image{Ref: c.App.Image, BuildContext: c.App.BuildContext, Dockerfile: c.App.Dockerfile},
		Port:      c.App.Port,
		Module:    c.App.Module,
		Workers:   c.App.Workers,
		Replicas:  c.App.Replicas,
		Env:       c.appEnv(),
		SecretEnv: secretEnv,
		Health:    service.Health{LivePath: c.App.LivePath, ReadyPath: c.App.ReadyPath},
		Migration: service.Migration{
			Strategy: c.App.MigrationStrategy,
			Command:  c.App.MigrationCommand,
		},
		Resources:            service.Resources{CPU: c.App.CPU, Memory: c.App.Memory},
		ShutdownGraceSeconds: c.App.ShutdownGraceSeconds,
		Domain:               c.Domain,
		TLS: service.TLS{
			Mode:          c.TLS.Mode,
			Cert:          c.tlsCert.output(),
			Key:           c.tlsKey.output(),
			ACMEEmail:     c.TLS.ACMEEmail,
			ACMEServer:    c.TLS.ACMEServer,
			ACMECA:        c.TLS.ACMECA,
			SecretName:    c.TLS.SecretName,
			ClusterIssuer: c.TLS.ClusterIssuer,
		},
		ProxyHeaders: c.App.ProxyHeaders,
		Database: service.Database{
			Mode:           c.DB.Mode,
			Image:          c.DB.Image,
			Host:           c.DB.Host,
			Port:           c.DB.Port,
			Name:           c.DB.Name,
			User:           c.DB.User,
			Password:       c.dbPassword.output(),
			AppUser:        c.DB.AppUser,
			AppPassword:    c.dbAppPassword.output(),
			SSLMode:        c.DB.SSLMode,
			CACert:         c.DB.CACert,
			RetainOnDelete: c.DB.RetainOnDelete,
			Protect:        c.Environment == "production",
			StorageSize:    c.DB.StorageSize,
			StorageClass:   c.DB.StorageClass,
			Backup:         service.Backup{Schedule: c.DB.BackupSchedule, Keep: c.DB.BackupKeep, Repository: c.backupRepository()},
			Resources:      service.Resources{CPU: c.DB.CPU, Memory: c.DB.Memory},
		},
	}
	if c.Registry.Server != "" {
		s.Registry = service.Registry{Server: c.Registry.Server, Username: c.Registry.Username, Password: c.registryPassword.output()}
	}
	return s
}

// Alerts are the service's alert rules with the stack's thresholds; the
// scrape job is named after the service in both architectures, and the
// rules select it. Only called after validate checked the thresholds.
func (c *Config) Alerts() monitoring.Group {
	return monitoring.Alerts(c.App.Name, c.App.Name, monitoring.Thresholds{
		DownMinutes: c.Monitoring.DownMinutes, ErrorRatio: c.Monitoring.ErrorRatio, P95Seconds: c.Monitoring.P95Seconds, RestartsPerHour: c.Monitoring.RestartsPerHour,
	})
}

// Receivers are the alert channels the stack configures.
func (c *Config) Receivers() monitoring.Receivers {
	return monitoring.Receivers{
		WebhookURL: c.alertWebhookURL.plain,
		SlackURL:   c.alertSlackURL.plain, SlackChannel: c.Alerting.SlackChannel,
		EmailTo: c.Alerting.EmailTo, EmailFrom: c.Alerting.EmailFrom, SMTPHost: c.Alerting.SMTPHost, SMTPUser: c.Alerting.SMTPUsername, SMTPPassword: c.alertSMTPPassword.plain,
	}
}

// Routing is the stack's grouping and repetition of notifications.
func (c *Config) Routing() monitoring.Routing {
	return monitoring.Routing{GroupWait: c.Alerting.GroupWait, GroupInterval: c.Alerting.GroupInterval, RepeatInterval: c.Alerting.RepeatInterval}
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
	if c.DB.BackupSchedule == "" {
		return 0
	}
	s, err := service.ParseSchedule(c.DB.BackupSchedule)
	if err != nil {
		return 0
	}
	return s.LongestGap()
}

// TestRoutesEnv turns the example app's /_meta test routes on
// (app.testRoutes); without it they do not exist.
const TestRoutesEnv = "TEST_ROUTES"

// appEnv is app.env, with TestRoutesEnv when app.testRoutes is on.
func (c *Config) appEnv() map[string]string {
	if !c.App.TestRoutes {
		return c.App.Env
	}
	env := maps.Clone(c.App.Env)
	if env == nil {
		env = map[string]string{}
	}
	env[TestRoutesEnv] = "1"
	return env
}
