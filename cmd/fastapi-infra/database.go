package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	k8sops "github.com/fastapi-infra/fastapi-infra/components/kubernetes/operations"
	"github.com/fastapi-infra/fastapi-infra/components/singleserver/operations"
	"github.com/fastapi-infra/fastapi-infra/deploy"
	"github.com/fastapi-infra/fastapi-infra/internal/cluster"
	"github.com/fastapi-infra/fastapi-infra/internal/dockerapi"
	"github.com/fastapi-infra/fastapi-infra/stacks"
)

// operator is what backup and restore do on either architecture.
type operator interface {
	BackupNow(ctx context.Context) (string, error)
	Backups(ctx context.Context) ([]string, error)
	Restore(ctx context.Context, backup string, progress io.Writer) error
}

// database runs `backup` (a backup now) and `restore` (without --from: the
// list of backups) on a deployed stack's own database: a single server's
// through the Docker engine it deploys to, an in-cluster one's through the
// API server.
func database(ctx context.Context, op string, s auto.Stack, cfg auto.ConfigMap, from string, yes bool, term *terminal) error {
	var server operator
	var err error
	if deploy.Architecture(cfg) == stacks.Kubernetes {
		server, err = runningService(cfg)
	} else {
		server, err = runningServer(ctx, s, cfg)
	}
	if err != nil {
		return err
	}
	switch {
	case op == "backup":
		report, err := server.BackupNow(ctx)
		fmt.Println(report)
		return err
	case from == "":
		backups, err := server.Backups(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("backups of stack %s, newest first (restore one with --from NAME):\n%s\n", s.Name(), strings.Join(backups, "\n"))
		return nil
	}
	if !yes {
		if !term.interactive() {
			return fmt.Errorf("restore replaces the data of stack %s and there is no terminal to ask on; run it with --yes to go ahead without asking", s.Name())
		}
		if answer := term.ask(fmt.Sprintf("Restore %s into stack %s? Its app stops meanwhile and every change since that backup is lost. (yes/no) ", from, s.Name())); answer != "yes" && answer != "y" {
			return errDeclined
		}
	}
	if err := server.Restore(ctx, from, os.Stderr); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "restore: done; stack %s serves the data of %s\n", s.Name(), from)
	return nil
}

// runningServer finds the stack's backup container in its outputs (its
// Docker name gives the stack's name prefix) and the engine's socket.
func runningServer(ctx context.Context, s auto.Stack, cfg auto.ConfigMap) (operations.Running, error) {
	var r operations.Running
	outs, err := s.Outputs(ctx)
	if err != nil {
		return r, err
	}
	names, _ := outs["containers"].Value.([]any)
	for _, n := range names {
		if name, _ := n.(string); strings.HasSuffix(name, "-backup") {
			r.Prefix = strings.TrimSuffix(name, "-backup")
		}
	}
	if r.Prefix == "" {
		return r, fmt.Errorf("stack %s has no backup container: run ./infra up %s first, and keep db.backup.schedule set (an external database is backed up by its provider)", s.Name(), s.Name())
	}
	socket, err := deploy.DockerSocket(cfg)
	if err != nil {
		return r, err
	}
	r.Engine = dockerapi.NewClient(socket)
	return r, nil
}

// runningService reaches a Kubernetes stack's namespace as its provider
// does.
func runningService(cfg auto.ConfigMap) (k8sops.Running, error) {
	access, namespace, app, err := deploy.KubernetesTarget(cfg)
	if err != nil {
		return k8sops.Running{}, err
	}
	client, err := cluster.Connect(access)
	if err != nil {
		return k8sops.Running{}, err
	}
	return k8sops.Running{API: client, Namespace: namespace, App: app}, nil
}
