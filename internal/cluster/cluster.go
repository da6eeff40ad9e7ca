// Package cluster asks a Kubernetes API server the questions the program
// must answer before it creates anything, with the same kubeconfig the
// kubernetes provider uses. The provider has no way to list objects, and a
// missing StorageClass otherwise shows up only as a volume claim that
// times out after resources were already created.
package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/remotecommand"
)

// Access is how the provider reaches the cluster: a kubeconfig file
// (empty: $KUBECONFIG or ~/.kube/config, else the in-cluster account), or
// its content, and a context (empty: the current one).
type Access struct {
	KubeconfigPath, KubeconfigContent, Context string
}

// Client reads from one cluster.
type Client struct {
	host string
	// config is the kubeconfig's, for Attach's streams.
	config *rest.Config
	http   *http.Client
	// stream is http without its timeout, for an answer that lasts as
	// long as what it follows (a pod's log with follow=true).
	stream *http.Client
}

// Connect loads the kubeconfig as clientcmd (kubectl's loader) does.
func Connect(a Access) (*Client, error) {
	var cfg *rest.Config
	var err error
	overrides := &clientcmd.ConfigOverrides{CurrentContext: a.Context}
	if a.KubeconfigContent != "" {
		api, loadErr := clientcmd.Load([]byte(a.KubeconfigContent))
		if loadErr != nil {
			return nil, fmt.Errorf("loading the kubeconfig: %w", loadErr)
		}
		cfg, err = clientcmd.NewDefaultClientConfig(*api, overrides).ClientConfig()
	} else {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = a.KubeconfigPath
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	streams := rest.CopyConfig(cfg)
	cfg.Timeout = 15 * time.Second
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	stream := *hc
	stream.Timeout = 0
	return &Client{host: cfg.Host, config: streams, http: hc, stream: &stream}, nil
}

// Attach connects in, out and a terminal (tty) to a running container of
// a pod, as kubectl attach -it does: over WebSocket where the API server
// speaks it (1.31 and later), else SPDY. It returns when the container's
// streams end. size, when set, is the terminal's size.
func (c *Client) Attach(ctx context.Context, namespace, pod, container string, in io.Reader, out io.Writer, tty bool, size func() (height, width int)) error {
	u, err := url.Parse(c.host)
	if err != nil {
		return err
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/api/v1/namespaces/" + namespace + "/pods/" + pod + "/attach"
	q := url.Values{"container": {container}, "stdout": {"true"}}
	if in != nil {
		q.Set("stdin", "true")
	}
	if tty {
		q.Set("tty", "true")
	} else {
		q.Set("stderr", "true")
	}
	u.RawQuery = q.Encode()
	ws, err := remotecommand.NewWebSocketExecutor(c.config, "GET", u.String())
	if err != nil {
		return err
	}
	spdy, err := remotecommand.NewSPDYExecutor(c.config, "POST", u)
	if err != nil {
		return err
	}
	exec, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return err
	}
	opts := remotecommand.StreamOptions{Stdin: in, Stdout: out, Tty: tty}
	if !tty {
		opts.Stderr = out
	}
	if tty && size != nil {
		if h, w := size(); h > 0 && w > 0 {
			opts.TerminalSizeQueue = &fixedSize{size: &remotecommand.TerminalSize{Height: uint16(h), Width: uint16(w)}}
		}
	}
	return exec.StreamWithContext(ctx, opts)
}

// fixedSize gives the terminal's size once.
type fixedSize struct{ size *remotecommand.TerminalSize }

func (f *fixedSize) Next() *remotecommand.TerminalSize {
	s := f.size
	f.size = nil
	return s
}

// StorageClass is a class's name and whether claims without a class get it.
type StorageClass struct {
	Name    string
	Default bool
}

// The annotations that mark the default class; the beta one is still
// honoured by the API server's DefaultStorageClass admission plugin.
var defaultAnnotations = []string{"storageclass.kubernetes.io/is-default-class", "storageclass.beta.kubernetes.io/is-default-class"}

// StorageClasses lists the cluster's StorageClasses, sorted by name.
func (c *Client) StorageClasses(ctx context.Context) ([]StorageClass, error) {
	var list struct {
		Items []struct {
			Metadata struct {
				Name        string            `json:"name"`
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
		} `json:"items"`
	}
	if err := c.get(ctx, "/apis/storage.k8s.io/v1/storageclasses", &list); err != nil {
		return nil, err
	}
	var out []StorageClass
	for _, it := range list.Items {
		sc := StorageClass{Name: it.Metadata.Name}
		for _, a := range defaultAnnotations {
			sc.Default = sc.Default || it.Metadata.Annotations[a] == "true"
		}
		out = append(out, sc)
	}
	slices.SortFunc(out, func(a, b StorageClass) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (c *Client) get(ctx context.Context, path string, into any) error {
	return c.Do(ctx, http.MethodGet, path, "", nil, into)
}

// Do sends a request to the API server: body (JSON-encoded unless it is a
// string) with contentType, and decodes a JSON answer into into (a
// *string takes the raw text, as pod logs are; an io.Writer gets it as it
// arrives, for as long as it lasts, as a followed log). Any status but 2xx
// is an error with the server's first line.
func (c *Client) Do(ctx context.Context, method, path, contentType string, body, into any) error {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return err
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.host+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	hc := c.http
	w, streamed := into.(io.Writer)
	if streamed {
		hc = c.stream
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if streamed && resp.StatusCode/100 == 2 {
		_, err := io.Copy(w, resp.Body)
		return err
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, firstLine(raw))
	}
	switch out := into.(type) {
	case nil:
		return nil
	case *string:
		*out = string(raw)
		return nil
	default:
		return json.Unmarshal(raw, into)
	}
}

func firstLine(b []byte) string {
	if len(b) > 300 {
		b = b[:300]
	}
	return string(b)
}
