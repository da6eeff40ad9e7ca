//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/fastapi-infra/fastapi-infra/internal/loadgen"
	"github.com/fastapi-infra/fastapi-infra/internal/pki"
	"github.com/fastapi-infra/fastapi-infra/lab"
)

// realDomain is the host name the real-node stacks serve.
const realDomain = lab.Domain

// localImages are the images/build.sh images the real node runs, loaded
// into its containerd once per test run.
var localImages = sync.OnceValues(func() (lab.LocalImages, error) {
	start := time.Now()
	images, err := env.lab.BuildImages(context.Background())
	if err == nil {
		fmt.Fprintf(os.Stderr, "e2e: %s and %s are in the real node's containerd (%s)\n", images.App, images.Postgres, time.Since(start).Round(100*time.Millisecond))
	}
	return images, err
})

// realStack is a development-cluster stack with the in-cluster database on
// the lab's real node, behind its Traefik ingress controller, with a TLS
// certificate from a CA only the test's client trusts.
type realStack struct {
	*stack
	ca     *pki.CA
	client *http.Client
	images lab.LocalImages
}

func newRealStack(t *testing.T, overrides map[string]string) *realStack {
	t.Helper()
	images, err := localImages()
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.NewCA("e2e-" + randomSuffix(t))
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue(pki.Subject{CommonName: realDomain, Names: []string{realDomain}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	s := newStack(t, "", func(namespace string) map[string]string {
		set := env.lab.RealNodeStack(namespace, images)
		for k, v := range overrides {
			set[k] = v
		}
		return set
	}, map[string]string{"tlsCert": string(cert), "tlsKey": string(key)})
	return &realStack{stack: s, ca: ca, client: env.lab.IngressClient(ca), images: images}
}

func (s *realStack) url(path string) string { return "https://" + realDomain + path }

// get fetches a path through the ingress controller.
func (s *realStack) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := s.client.Get(s.url(path))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// waitServing polls path until it answers 200, for at most within.
func (s *realStack) waitServing(t *testing.T, path string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for time.Since(start) < within {
		resp, err := s.client.Get(s.url(path))
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start)
			}
			last = fmt.Sprintf("%s %s", resp.Status, body)
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s did not answer 200 through the ingress within %s (last: %s)", path, within, last)
	return 0
}

// load sends GET path at 50 requests a second through the ingress
// controller until stopped (at most 4 minutes).
func (s *realStack) load(path string) *loadgen.Run {
	return loadgen.Start(s.client, func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, "GET", s.url(path), nil)
	}, loadgen.Options{Rate: 50, Max: 4 * time.Minute})
}

// pods are the app's pods in the stack's namespace.
func (s *realStack) pods(t *testing.T, component string) []obj {
	t.Helper()
	var l list
	kubectl(t, &l, "-n", s.namespace, "get", "pods", "-l", "app.kubernetes.io/component="+component)
	return l.Items
}

// allReady fails unless want pods of the component run, each Ready.
func (s *realStack) allReady(t *testing.T, component string, want int) []obj {
	t.Helper()
	var ready []obj
	for _, p := range s.pods(t, component) {
		if p.dig("metadata.deletionTimestamp") != nil {
			continue
		}
		if p.str("status.phase") == "Running" && p.str("status.containerStatuses[0].ready") == "true" {
			ready = append(ready, p)
		}
	}
	if len(ready) != want {
		t.Errorf("%d %s pods Ready, want %d", len(ready), component, want)
	}
	return ready
}
