// Package operations runs the day-2 operations of a deployed Kubernetes
// service with an in-cluster database, through the API server: a backup
// now, the list of backups, a restore. The driver (./infra backup,
// ./infra restore) and the lab's restore drill run the same code. Each
// action is a Job made from the backup CronJob's own template (the
// database's image, its user, the backups claim, the password file), as
// `kubectl create job --from=cronjob/...` makes one.
package operations

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/fastapi-infra/fastapi-infra/components/service"
	"github.com/fastapi-infra/fastapi-infra/internal/cluster"
)

// API is what the operations ask of the API server (cluster.Client).
type API interface {
	Do(ctx context.Context, method, path, contentType string, body, into any) error
}

// Running is a deployed service: its namespace and app.name.
type Running struct {
	API       API
	Namespace string
	App       string
	// Poll is how often a wait looks again; default 1 s.
	Poll time.Duration
}

var _ API = (*cluster.Client)(nil)

type obj = map[string]any

func (r Running) batch(p string) string {
	return "/apis/batch/v1/namespaces/" + r.Namespace + "/" + p
}

// deployment is the API path of the app's Deployment.
func (r Running) deployment() string {
	return "/apis/apps/v1/namespaces/" + r.Namespace + "/deployments/" + r.App
}

// pods lists the namespace's pods that the query's labelSelector picks.
func (r Running) pods(ctx context.Context, q url.Values, into any) error {
	return r.API.Do(ctx, http.MethodGet, "/api/v1/namespaces/"+r.Namespace+"/pods?"+q.Encode(), "", nil, into)
}

// backupAction runs an action of backup.sh in a Job from the backup
// CronJob's template and returns its log.
func (r Running) backupAction(ctx context.Context, action ...string) (string, error) {
	var cron struct {
		Spec struct {
			JobTemplate struct {
				Spec obj `json:"spec"`
			} `json:"jobTemplate"`
		} `json:"spec"`
	}
	cronName := r.App + "-db-backup"
	if err := r.API.Do(ctx, http.MethodGet, r.batch("cronjobs/"+cronName), "", nil, &cron); err != nil {
		return "", fmt.Errorf("finding the backup CronJob %s in namespace %s (is db.mode in-cluster with db.backup.schedule set, and the stack up?): %w", cronName, r.Namespace, err)
	}
	spec := cron.Spec.JobTemplate.Spec
	containers, _ := dig(spec, "template", "spec", "containers").([]any)
	if len(containers) == 0 {
		return "", fmt.Errorf("the CronJob %s has no container", cronName)
	}
	containers[0].(obj)["command"] = service.BackupCommand(action...)
	return r.runJob(ctx, fmt.Sprintf("%s-db-%s-%d", r.App, action[0], time.Now().Unix()), "backup", spec)
}

// runJob creates a Job of the spec, waits until it ends and returns its
// pod's log; a failed Job is an error with that log.
func (r Running) runJob(ctx context.Context, name, component string, spec obj) (string, error) {
	spec["ttlSecondsAfterFinished"] = 3600 // a failed one stays an hour
	spec["backoffLimit"] = 0
	job := obj{"apiVersion": "batch/v1", "kind": "Job",
		"metadata": obj{"name": name, "namespace": r.Namespace,
			"labels": obj{"app.kubernetes.io/name": r.App, "app.kubernetes.io/component": component, "app.kubernetes.io/managed-by": "fastapi-infra-driver"}},
		"spec": spec}
	if err := r.API.Do(ctx, http.MethodPost, r.batch("jobs"), "application/json", job, nil); err != nil {
		return "", fmt.Errorf("creating the Job %s: %w", name, err)
	}
	var status struct {
		Status struct{ Succeeded, Failed int } `json:"status"`
	}
	created := time.Now()
	err := r.wait(ctx, 15*time.Minute, "the Job "+name, func() (bool, error) {
		if err := r.API.Do(ctx, http.MethodGet, r.batch("jobs/"+name), "", nil, &status); err != nil {
			return false, err
		}
		if status.Status.Succeeded > 0 || status.Status.Failed > 0 {
			return true, nil
		}
		if time.Since(created) > unschedulableAfter {
			return false, r.unschedulable(ctx, name)
		}
		return false, nil
	})
	logs, logErr := r.jobLogs(ctx, name)
	if err == nil && status.Status.Succeeded == 0 {
		err = fmt.Errorf("the Job %s failed; its log:\n%s", name, strings.TrimSpace(logs))
	}
	if err == nil && logErr != nil {
		err = logErr
	}
	if err == nil {
		// Its log is read: a Job that worked is not kept (one that failed
		// stays an hour for a look). Its pod goes with it.
		err = r.API.Do(ctx, http.MethodDelete, r.batch("jobs/"+name)+"?propagationPolicy=Background", "", nil, nil)
	}
	return logs, err
}

// unschedulableAfter is how long a Job's pod may wait for a node before the
// operation says why it cannot have one, instead of waiting in silence.
var unschedulableAfter = time.Minute

// unschedulable is an error when the Job's pod is still waiting for a node
// (not enough CPU or memory, no node matching its selector).
func (r Running) unschedulable(ctx context.Context, job string) error {
	var pods struct {
		Items []struct {
			Status struct {
				Phase      string
				Conditions []struct{ Type, Status, Reason, Message string }
			} `json:"status"`
		} `json:"items"`
	}
	q := url.Values{"labelSelector": {"job-name=" + job}}
	if err := r.pods(ctx, q, &pods); err != nil {
		return err
	}
	for _, p := range pods.Items {
		for _, c := range p.Status.Conditions {
			if p.Status.Phase == "Pending" && c.Type == "PodScheduled" && c.Status == "False" {
				return fmt.Errorf("the Job %s's pod cannot be scheduled (%s): %s; give the namespace's nodes room, then run it again", job, c.Reason, c.Message)
			}
		}
	}
	return nil
}

// jobLogs is the log of the Job's (last) pod.
func (r Running) jobLogs(ctx context.Context, job string) (string, error) {
	var pods struct {
		Items []struct {
			Metadata struct{ Name string } `json:"metadata"`
		} `json:"items"`
	}
	q := url.Values{"labelSelector": {"job-name=" + job}}
	if err := r.pods(ctx, q, &pods); err != nil {
		return "", err
	}
	if len(pods.Items) == 0 {
		return "", fmt.Errorf("the Job %s has no pod", job)
	}
	var logs string
	err := r.API.Do(ctx, http.MethodGet, "/api/v1/namespaces/"+r.Namespace+"/pods/"+pods.Items[len(pods.Items)-1].Metadata.Name+"/log", "", nil, &logs)
	return logs, err
}

// actions are backup.sh's actions run here.
func (r Running) actions() service.BackupActions {
	return service.BackupActions{Run: r.backupAction, Where: "on the backups claim"}
}

// BackupNow takes a backup at once, outside the schedule, and returns the
// backup Job's report of it.
func (r Running) BackupNow(ctx context.Context) (string, error) {
	return r.actions().Now(ctx)
}

// Backups lists the backups on the backups claim, newest first.
func (r Running) Backups(ctx context.Context) ([]string, error) {
	return r.actions().List(ctx)
}

// Restore puts a backup back: it puts the maintenance page up, scales the
// app's Deployment to 0 (an HPA does not scale a Deployment at 0),
// restores the dump in one transaction from a Job of the backup CronJob's
// template, runs the release's migration again from a Job of its
// migration Job's template (the dump may be of an older schema), and
// scales the Deployment back, waiting until every replica is ready, and
// takes the page down. A
// restore that fails changes nothing in the database and scales the app
// back.
func (r Running) Restore(ctx context.Context, backup string, progress io.Writer) error {
	if err := r.actions().Check(ctx, backup); err != nil {
		return err
	}
	deployment := r.deployment()
	var d struct {
		Spec struct{ Replicas int } `json:"spec"`
	}
	if err := r.API.Do(ctx, http.MethodGet, deployment, "", nil, &d); err != nil {
		return fmt.Errorf("finding the Deployment %s: %w", r.App, err)
	}
	replicas := max(d.Spec.Replicas, 1)
	// The Ingress answers with the maintenance page meanwhile, not 503s
	// of its own.
	maintained := r.Maintenance(ctx, true, "Restoring a backup; the service is back in a minute.")
	if maintained != nil {
		fmt.Fprintf(progress, "restore: no maintenance page (%v); the Ingress answers 503 while the app is at 0\n", maintained)
	} else {
		fmt.Fprintf(progress, "restore: maintenance page on\n")
	}
	fmt.Fprintf(progress, "restore: scaling the Deployment %s from %d replicas to 0\n", r.App, replicas)
	if err := r.scale(ctx, 0); err != nil {
		return err
	}
	restoreErr := func() error {
		fmt.Fprintf(progress, "restore: restoring %s\n", backup)
		if _, err := r.backupAction(ctx, "restore", backup); err != nil {
			return err
		}
		return r.migrateAgain(ctx, progress)
	}()
	fmt.Fprintf(progress, "restore: scaling the Deployment %s back to %d replicas\n", r.App, replicas)
	if err := r.scale(ctx, replicas); err != nil {
		return err
	}
	if maintained == nil {
		if err := r.Maintenance(ctx, false, ""); err != nil {
			return fmt.Errorf("taking the maintenance page down (./infra maintenance off takes it down): %w", err)
		}
		fmt.Fprintf(progress, "restore: maintenance page off\n")
	}
	return restoreErr
}

// migrateAgain runs the newest migration Job's pod template once more.
func (r Running) migrateAgain(ctx context.Context, progress io.Writer) error {
	var jobs struct{ Items []jobItem }
	q := url.Values{"labelSelector": {"app.kubernetes.io/name=" + r.App + ",app.kubernetes.io/component=migration"}}
	if err := r.API.Do(ctx, http.MethodGet, r.batch("jobs?"+q.Encode()), "", nil, &jobs); err != nil {
		return err
	}
	if len(jobs.Items) == 0 {
		fmt.Fprintln(progress, "restore: no migration Job (migration.strategy is not job): the app's pods migrate as they start")
		return nil
	}
	newest := slices.MaxFunc(jobs.Items, func(a, b jobItem) int {
		return strings.Compare(a.Metadata.CreationTimestamp, b.Metadata.CreationTimestamp)
	})
	// The controller's own labels on the template name the old Job.
	if labels, ok := dig(newest.Spec.Template, "metadata", "labels").(obj); ok {
		for k := range labels {
			if strings.Contains(k, "controller-uid") || strings.HasSuffix(k, "job-name") {
				delete(labels, k)
			}
		}
	}
	fmt.Fprintf(progress, "restore: running the migration of %s again\n", newest.Metadata.Name)
	_, err := r.runJob(ctx, fmt.Sprintf("%s-migrate-restore-%d", r.App, time.Now().Unix()), "migration",
		obj{"template": newest.Spec.Template, "activeDeadlineSeconds": max(newest.Spec.ActiveDeadlineSeconds, 900)})
	return err
}

// jobItem is what migrateAgain reads of a Job.
type jobItem struct {
	Metadata struct {
		Name              string `json:"name"`
		CreationTimestamp string `json:"creationTimestamp"`
	} `json:"metadata"`
	Spec struct {
		Template              obj `json:"template"`
		ActiveDeadlineSeconds int `json:"activeDeadlineSeconds"`
	} `json:"spec"`
}

// scale sets the Deployment's replicas and waits until that many pods are
// ready (or, for 0, until none is left).
func (r Running) scale(ctx context.Context, replicas int) error {
	deployment := r.deployment()
	if err := r.API.Do(ctx, http.MethodPatch, deployment+"/scale", "application/merge-patch+json", obj{"spec": obj{"replicas": replicas}}, nil); err != nil {
		return fmt.Errorf("scaling the Deployment %s to %d: %w", r.App, replicas, err)
	}
	return r.wait(ctx, 5*time.Minute, fmt.Sprintf("the Deployment %s at %d ready replicas", r.App, replicas), func() (bool, error) {
		var d struct {
			Status struct{ Replicas, ReadyReplicas, UpdatedReplicas int } `json:"status"`
		}
		if err := r.API.Do(ctx, http.MethodGet, deployment, "", nil, &d); err != nil {
			return false, err
		}
		if d.Status.Replicas != replicas || d.Status.ReadyReplicas != replicas {
			return false, nil
		}
		if replicas > 0 {
			return true, nil
		}
		// At 0, also until the last pod finished its requests and is gone.
		var pods struct{ Items []any }
		q := url.Values{"labelSelector": {"app.kubernetes.io/name=" + r.App + ",app.kubernetes.io/component=api"}}
		err := r.pods(ctx, q, &pods)
		return err == nil && len(pods.Items) == 0, err
	})
}

func (r Running) wait(ctx context.Context, within time.Duration, what string, done func() (bool, error)) error {
	poll := r.Poll
	if poll == 0 {
		poll = time.Second
	}
	deadline := time.Now().Add(within)
	for {
		ok, err := done()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %s for %s", within, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// dig follows keys through nested objects.
func dig(o obj, keys ...string) any {
	var cur any = o
	for _, k := range keys {
		m, ok := cur.(obj)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}
