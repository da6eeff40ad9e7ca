package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/fastapi-infra/fastapi-infra/components/singleserver/operations"
	"github.com/fastapi-infra/fastapi-infra/deploy"
	"github.com/fastapi-infra/fastapi-infra/internal/dockerplan"
	"github.com/fastapi-infra/fastapi-infra/stacks"
)

// database runs `backup` (a backup now) and `restore` (without --from: the
// list of backups) on a deployed single server, through the Docker engine
// its stack deploys to.
func database(ctx context.Context, op string, s auto.Stack, cfg auto.ConfigMap, from string, yes bool, term *terminal) error {
	server, err := runningServer(ctx, s, cfg)
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
	if deploy.Architecture(cfg) == stacks.Kubernetes {
		return r, fmt.Errorf("backup and restore are for the single server; stack %s is kubernetes (see the README's Data section)", s.Name())
	}
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
	r.Engine = dockerplan.NewEngine(socket)
	return r, nil
}
