package dockerapi

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHostAPIVersion asks a stand-in engine on a unix socket and on tcp
// what the single server asks the real one before it plans healthchecks.
func TestHostAPIVersion(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/version" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"Version":"20.10.24+dfsg1","ApiVersion":"1.41","MinAPIVersion":"1.12"}`))
	})
	socket := filepath.Join(t.TempDir(), "docker.sock")
	unixLn, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	tcpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	for _, ln := range []net.Listener{unixLn, tcpLn} {
		srv := &http.Server{Handler: handler}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
	}
	t.Setenv("DOCKER_CERT_PATH", "")
	for _, host := range []string{"unix://" + socket, "tcp://" + tcpLn.Addr().String()} {
		v, err := HostAPIVersion(context.Background(), host, "", 5*time.Second)
		if err != nil || v != "1.41" {
			t.Errorf("%s: %q, %v", host, v, err)
		}
	}
	for host, want := range map[string]string{
		"npipe:////./pipe/docker_engine":            "want unix://, tcp:// or ssh://",
		"unix://" + filepath.Join(t.TempDir(), "x"): "no such file",
	} {
		if _, err := HostAPIVersion(context.Background(), host, "", 5*time.Second); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %q", host, err, want)
		}
	}
}
