package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/spf13/cobra"

	k8sops "github.com/fastapi-infra/fastapi-infra/components/kubernetes/operations"
	"github.com/fastapi-infra/fastapi-infra/components/singleserver/operations"
	"github.com/fastapi-infra/fastapi-infra/deploy"
	"github.com/fastapi-infra/fastapi-infra/internal/cluster"
	"github.com/fastapi-infra/fastapi-infra/stacks"
)

// operator is what backup and restore do on either architecture.
type operator interface {
	BackupNow(ctx context.Context) (string, error)
	Backups(ctx context.Context) ([]string, error)
	Restore(ctx context.Context, backup string, progress io.Writer) error
}

func backupCommand(g *globals, _ *terminal) *cobra.Command {
	return stackVerb(g, "backup", "back the stack's own database up now",
		`Takes a backup of the stack's own database now (a single server's container,
an in-cluster one) and prints its name; exits non-zero when it fails. An
external database is backed up by its provider. It holds the stack's lock,
the one an up takes, meanwhile: refused while an update runs, and an up is
refused while it runs.`,
		func(ctx context.Context, o deploy.Options) error {
			t, err := deploy.Prepare(ctx, o, deploy.Needs{})
			if err != nil {
				return err
			}
			unlock, err := t.Lock(ctx, "backup", os.Stderr)
			if err != nil {
				return err
			}
			defer holdLock(unlock)()
			server, err := databaseOf(ctx, t)
			if err != nil {
				return err
			}
			report, err := server.BackupNow(ctx)
			fmt.Println(report)
			return err
		})
}

func restoreCommand(g *globals, term *terminal) *cobra.Command {
	var from, toTime string
	var latest bool
	c := stackVerb(g, "restore", "list the backups, or put one back with --from, --to-time or --latest",
		`Without a flag: the stack's backups, newest first. With --from NAME: that
backup put back into the stack's own database, after a question (--yes
skips it; a production stack's restore asks for its name even then); the
app stops meanwhile, behind the maintenance page, and every change since is
lost. With an off-host repository (db.backup.s3.*) also --to-time TIME (RFC
3339, e.g. 2026-12-06T10:15:00Z): the state at that second, from the full
backup before it and the archived WAL; and --latest: the newest state the
archive holds (after the host was lost: ./infra refresh, ./infra up, then
this). Before it overwrites anything it takes a backup of what is there
and says its name. It holds the stack's lock, the one an up takes,
meanwhile. Ctrl-C says what state the stack is in and the command that
finishes.`,
		func(ctx context.Context, o deploy.Options) error {
			point, err := operations.ParsePoint(from, toTime, latest)
			if err != nil {
				return err
			}
			t, err := deploy.Prepare(ctx, o, deploy.Needs{})
			if err != nil {
				return err
			}
			what := point.String()
			if from != "" && point.Time.IsZero() {
				what = from
			}
			restoring := from != "" || toTime != "" || latest
			if restoring {
				if err := term.canAsk(g, "restore replaces the data of", t.Name()); err != nil {
					return err
				}
				if err := term.confirm(g, fmt.Sprintf("Restore %s into stack %s? Its app stops meanwhile and every change since that backup is lost. (yes/no) ", what, t.Name())); err != nil {
					return err
				}
				if err := term.productionName(t, "restore "+what+" into it"); err != nil {
					return err
				}
				// The lock an up takes: no release starts replicas
				// beside a restore that stopped them, and no restore
				// starts in the middle of a release.
				unlock, err := t.Lock(ctx, "restore", os.Stderr)
				if err != nil {
					return err
				}
				defer holdLock(unlock)()
			}
			server, err := databaseOf(ctx, t)
			if err != nil {
				return err
			}
			if !restoring {
				backups, err := server.Backups(ctx)
				if err != nil {
					return err
				}
				fmt.Printf("backups of stack %s, newest first (restore one with --from NAME):\n%s\n", t.Name(), strings.Join(backups, "\n"))
				return nil
			}
			// Ctrl-C in the middle: the restore's own steps run on in the
			// database's container; what the stack is left with is said,
			// never "nothing was changed".
			steps := &lastLine{w: os.Stderr}
			onInterrupt(func() {
				fmt.Fprintf(os.Stderr, "\nrestore: interrupted after %q. Stack %s may have its app replicas stopped and its maintenance page up, and the restore may still be running in its database's container. Finish it with: ./infra restore %s %s --yes (it runs the whole restore again; a dump's restore is one transaction, pgBackRest's --delta finishes a partial one)\n", steps.last(), t.Name(), t.Name(), point.Flags())
			})
			defer onInterrupt(nil)
			if toTime != "" || latest {
				pitr, ok := server.(interface {
					RestoreTo(context.Context, operations.Point, io.Writer) error
				})
				if !ok {
					return fmt.Errorf("stack %s: --to-time and --latest need a single server's off-host repository (db.backup.s3.*); restore a backup with --from NAME", t.Name())
				}
				err = pitr.RestoreTo(ctx, point, steps)
			} else {
				err = server.Restore(ctx, from, steps)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "restore: done; stack %s serves %s\n", t.Name(), what)
			return nil
		})
	c.Flags().StringVar(&from, "from", "", "the backup to restore (without a flag: the list)")
	c.Flags().StringVar(&toTime, "to-time", "", "the moment to restore, RFC 3339 (2026-12-06T10:15:00Z); needs db.backup.s3.*")
	c.Flags().BoolVar(&latest, "latest", false, "the newest state the archive holds; needs db.backup.s3.*")
	return c
}

// lastLine passes progress on and keeps its last line, for an interrupt's
// report.
type lastLine struct {
	w    io.Writer
	mu   sync.Mutex
	line string
}

func (l *lastLine) Write(p []byte) (int, error) {
	l.mu.Lock()
	if s := strings.TrimSpace(string(p)); s != "" {
		l.line = s[strings.LastIndex(s, "\n")+1:]
	}
	l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lastLine) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.line
}

// databaseOf reaches a deployed stack's own database: a single server's
// through the Docker engine it deploys to, an in-cluster one's through the
// API server.
func databaseOf(ctx context.Context, t deploy.Target) (operator, error) {
	if t.Arch == stacks.Kubernetes {
		return runningService(t.Config)
	}
	return runningServer(ctx, t.Stack, t.Config)
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
	r.Engine, err = deploy.DockerClient(cfg)
	if err != nil {
		return r, err
	}
	return r, nil
}

// singleServerOf reaches the engine of a prepared single-server stack.
func singleServerOf(t deploy.Target) (operations.Running, error) {
	engine, err := deploy.DockerClient(t.Config)
	if err != nil {
		return operations.Running{}, err
	}
	return operations.Running{Engine: engine, Prefix: deploy.DockerNamePrefix(t.Config, t.Name())}, nil
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
