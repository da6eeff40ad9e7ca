package singleserver

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"testing"
)

// TestHTTPProbeRunsForReal runs the replicas' healthcheck command with
// python3 against a server that answers 200, 503, or nothing.
func TestHTTPProbeRunsForReal(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatal("python3 is not installed, so the probe cannot be run: apt-get install python3")
	}
	status := http.StatusOK
	var gotPath string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath = r.URL.Path
		w.WriteHeader(status)
	}))
	defer srv.Close()
	_, portText, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(portText)
	probe := func() error {
		cmd := httpProbe(port, "/health/live")
		return exec.Command(cmd[0], cmd[1:]...).Run()
	}
	if err := probe(); err != nil || gotPath != "/health/live" {
		t.Errorf("200 from %s: %v", gotPath, err)
	}
	status = http.StatusServiceUnavailable
	if err := probe(); err == nil {
		t.Error("a 503 passed the probe")
	}
	srv.Close()
	if err := probe(); err == nil {
		t.Error("a closed port passed the probe")
	}
}
