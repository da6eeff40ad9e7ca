package mocktest

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/fastapi-infra/fastapi-infra/components/service"
)

// ServiceSpec is a service as a program other than this project's stacks
// would hand a component: only the spec, none of the stack config's
// defaults. A container database, self-signed TLS, two replicas of two
// workers; a test changes what its architecture needs.
func ServiceSpec() service.Spec {
	cpu, _ := service.ParseCPU("500m")
	mem, _ := service.ParseMemory("256Mi")
	pw := pulumi.ToSecret(pulumi.String("fixture-pw")).(pulumi.StringOutput)
	return service.Spec{
		Name: "svc", Image: service.Image{Ref: "example/app:1.0"}, Module: "app.main:app", Port: 8000, Workers: 2, Replicas: 2,
		ShutdownGraceSeconds: 10, Domain: "svc.example.com", TLS: service.TLS{Mode: service.TLSSelfSigned}, ProxyHeaders: true,
		Health:    service.Health{LivePath: "/health/live", ReadyPath: "/health/ready"},
		Migration: service.Migration{Strategy: service.MigrationJob, Command: []string{"alembic", "upgrade", "head"}},
		Resources: service.Resources{CPU: cpu, Memory: mem},
		Database: service.Database{Mode: service.DatabaseContainer, Image: "postgres:15", Port: 5432, Name: "app", User: "app",
			Password: pw, AppUser: "app_rw", AppPassword: pw, SSLMode: "prefer", RetainOnDelete: true, StorageSize: "1Gi",
			Resources: service.Resources{CPU: cpu, Memory: mem}},
	}
}
