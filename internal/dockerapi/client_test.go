package dockerapi

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestAlreadyAsAsked: the engine answers 304 to a start of a running
// container and a stop of a stopped one; a restore run again after an
// interrupted one does both, and must go on. Other failures stay errors.
func TestAlreadyAsAsked(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/running/start"), strings.HasSuffix(r.URL.Path, "/stopped/stop"):
			w.WriteHeader(http.StatusNotModified)
		default:
			http.Error(w, `{"message":"conflict"}`, http.StatusConflict)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c, ctx := NewClient(socket), context.Background()
	if err := c.Start(ctx, "running"); err != nil {
		t.Errorf("a start of a running container: %v", err)
	}
	if err := c.Stop(ctx, "stopped", 1); err != nil {
		t.Errorf("a stop of a stopped container: %v", err)
	}
	if err := c.Start(ctx, "other"); err == nil || !strings.Contains(err.Error(), "409") {
		t.Errorf("a conflict: %v, want the 409", err)
	}
}
