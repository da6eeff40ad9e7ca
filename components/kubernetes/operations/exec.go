package operations

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Exec runs args once in a Job's pod of the running release, made from
// the Deployment's pod template (its image, environment, secret files,
// service account, limits and securityContext), with its output written
// to out as it comes, and returns its exit code. The pod carries the
// migration's role label, not the API's: the Service never routes to it,
// the PDB and the ReplicaSet do not count it, and the migration's
// NetworkPolicy lets it reach the database and DNS only. No probes, no
// preStop, no init containers (a migration in one would run again), no
// restart. The Job goes when its exit code is read, as after Ctrl-C
// (started names it for that).
func (r Running) Exec(ctx context.Context, args []string, out io.Writer, started func(job string)) (int, error) {
	return r.ExecWith(ctx, args, Streams{Out: out}, started)
}

// Streams are a one-off command's: its output, and for `exec -i` its
// input, for `exec -t` a terminal of the size Size says.
type Streams struct {
	Out  io.Writer
	In   io.Reader
	TTY  bool
	Size func() (height, width int)
}

// Attacher connects to a running container's streams (cluster.Client,
// over the API server's attach).
type Attacher interface {
	Attach(ctx context.Context, namespace, pod, container string, in io.Reader, out io.Writer, tty bool, size func() (height, width int)) error
}

// ExecWith is Exec with the command's stdin and a terminal when s asks:
// the pod's container is made with stdin (and a TTY) and the driver
// attaches to it once it runs, as kubectl run -it does (what it printed
// before the attach is in its log, not on the terminal).
func (r Running) ExecWith(ctx context.Context, args []string, s Streams, started func(job string)) (int, error) {
	var d struct {
		Spec struct {
			Template obj `json:"template"`
		} `json:"spec"`
	}
	if err := r.API.Do(ctx, http.MethodGet, r.deployment(), "", nil, &d); err != nil {
		return 0, fmt.Errorf("finding the Deployment %s in namespace %s (is the stack up?): %w", r.App, r.Namespace, err)
	}
	template, err := oneOffTemplate(d.Spec.Template, args)
	if err != nil {
		return 0, fmt.Errorf("the Deployment %s: %w", r.App, err)
	}
	attacher, attach := r.API.(Attacher)
	attach = attach && (s.In != nil || s.TTY)
	if (s.In != nil || s.TTY) && !attach {
		return 0, fmt.Errorf("exec -i/-t: this client cannot attach to a pod")
	}
	container := ""
	if attach {
		app := template["spec"].(obj)["containers"].([]any)[0].(obj)
		container, _ = app["name"].(string)
		app["tty"] = s.TTY
		if s.In != nil {
			app["stdin"], app["stdinOnce"] = true, true
		}
	}
	name := fmt.Sprintf("%s-exec-%d", r.App, time.Now().UnixNano()%1e9)
	job := obj{"apiVersion": "batch/v1", "kind": "Job",
		"metadata": obj{"name": name, "namespace": r.Namespace,
			"labels": obj{"app.kubernetes.io/name": r.App, "app.kubernetes.io/component": "exec", "app.kubernetes.io/managed-by": "fastapi-infra-driver"}},
		"spec": obj{"template": template, "backoffLimit": 0, "ttlSecondsAfterFinished": 3600}}
	if err := r.API.Do(ctx, http.MethodPost, r.batch("jobs"), "application/json", job, nil); err != nil {
		return 0, fmt.Errorf("creating the Job %s: %w", name, err)
	}
	if started != nil {
		started(name)
	}
	defer r.RemoveJob(context.WithoutCancel(ctx), name)

	pod, err := r.startedPod(ctx, name)
	if err != nil {
		return 0, err
	}
	if attach {
		if err := attacher.Attach(ctx, r.Namespace, pod, container, s.In, s.Out, s.TTY, s.Size); err != nil {
			// A command that ended before the attach (one that reads no
			// input) has its output in its log.
			logs := "/api/v1/namespaces/" + r.Namespace + "/pods/" + pod + "/log"
			if logErr := r.API.Do(ctx, http.MethodGet, logs, "", nil, s.Out); logErr != nil {
				return 0, fmt.Errorf("attaching to %s: %w", pod, err)
			}
		}
	} else {
		// follow: the API server streams the log until the container
		// ends.
		logs := "/api/v1/namespaces/" + r.Namespace + "/pods/" + pod + "/log?follow=true"
		if err := r.API.Do(ctx, http.MethodGet, logs, "", nil, s.Out); err != nil {
			return 0, fmt.Errorf("reading the output of %s: %w", pod, err)
		}
	}
	code := -1
	err = r.wait(ctx, 5*time.Minute, "the exit code of "+pod, func() (bool, error) {
		var p podStatus
		if err := r.API.Do(ctx, http.MethodGet, "/api/v1/namespaces/"+r.Namespace+"/pods/"+pod, "", nil, &p); err != nil {
			return false, err
		}
		for _, c := range p.Status.ContainerStatuses {
			if c.State.Terminated != nil {
				code = c.State.Terminated.ExitCode
				return true, nil
			}
		}
		return false, nil
	})
	return code, err
}

// RemoveJob deletes a Job and its pod (a pod still running is stopped).
func (r Running) RemoveJob(ctx context.Context, name string) error {
	return r.API.Do(ctx, http.MethodDelete, r.batch("jobs/"+name)+"?propagationPolicy=Background", "", nil, nil)
}

// oneOffTemplate is the Deployment's pod template cut down to one run of
// args in its app container.
func oneOffTemplate(template obj, args []string) (obj, error) {
	spec, _ := template["spec"].(obj)
	containers, _ := spec["containers"].([]any)
	if len(containers) == 0 {
		return nil, fmt.Errorf("its pod template has no container")
	}
	app, _ := containers[0].(obj)
	if app == nil {
		return nil, fmt.Errorf("its pod template's first container is not an object")
	}
	command := make([]any, len(args))
	for i, a := range args {
		command[i] = a
	}
	app["command"] = command
	for _, k := range []string{"args", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle", "ports"} {
		delete(app, k)
	}
	spec["containers"] = []any{app}
	spec["restartPolicy"] = "Never"
	for _, k := range []string{"initContainers", "topologySpreadConstraints"} {
		delete(spec, k)
	}
	labels := obj{}
	if meta, ok := template["metadata"].(obj); ok {
		if l, ok := meta["labels"].(obj); ok {
			labels = l
		}
	}
	labels["app.kubernetes.io/component"] = "migration"
	return obj{"metadata": obj{"labels": labels}, "spec": spec}, nil
}

// podStatus is what Exec reads of its pod.
type podStatus struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Status struct {
		Phase             string `json:"phase"`
		ContainerStatuses []struct {
			State struct {
				Waiting *struct {
					Reason, Message string
				} `json:"waiting"`
				Terminated *struct {
					ExitCode int `json:"exitCode"`
				} `json:"terminated"`
			} `json:"state"`
		} `json:"containerStatuses"`
	} `json:"status"`
}

// startedPod waits until the Job's pod runs (or already ended), and says
// why when it cannot: no node for it, or an image that does not pull.
func (r Running) startedPod(ctx context.Context, job string) (string, error) {
	var name string
	created := time.Now()
	err := r.wait(ctx, 5*time.Minute, "the pod of the Job "+job, func() (bool, error) {
		var pods struct{ Items []podStatus }
		if err := r.pods(ctx, url.Values{"labelSelector": {"job-name=" + job}}, &pods); err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			switch p.Status.Phase {
			case "Running", "Succeeded", "Failed":
				name = p.Metadata.Name
				return true, nil
			}
			for _, c := range p.Status.ContainerStatuses {
				if w := c.State.Waiting; w != nil && (strings.Contains(w.Reason, "ImagePull") || w.Reason == "CreateContainerConfigError") {
					return false, fmt.Errorf("the pod %s cannot start (%s): %s", p.Metadata.Name, w.Reason, w.Message)
				}
			}
		}
		if time.Since(created) > unschedulableAfter {
			return false, r.unschedulable(ctx, job)
		}
		return false, nil
	})
	return name, err
}
