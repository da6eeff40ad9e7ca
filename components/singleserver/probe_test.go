//go:build e2e

package singleserver

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
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
		cmd := httpProbe(port, "/health/live", 300*time.Millisecond)
		return exec.Command(cmd[0], cmd[1:]...).Run()
	}
	if err := probe(); err != nil || gotPath != "/health/live" {
		t.Errorf("200 from %s: %v", gotPath, err)
	}
	status = http.StatusServiceUnavailable
	if err := probe(); err == nil {
		t.Error("a 503 passed the probe")
	}
	// What Docker keeps of a failed probe says why (a failed up shows it).
	cmd := httpProbe(port, "/health/live", 300*time.Millisecond)
	out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "/health/live answered HTTP/1.0 503 Service Unavailable") {
		t.Errorf("a 503's probe output %q (%v) does not say what answered", out, err)
	}
	srv.Close()
	began := time.Now()
	if err := probe(); err == nil {
		t.Error("a closed port passed the probe")
	}
	if waited := time.Since(began); waited < 300*time.Millisecond {
		t.Errorf("a closed port failed the probe after %s, before its 300 ms start wait", waited)
	}
}

// TestHTTPProbeWaitsForAStartingServer: a replica that begins to serve
// while the probe runs passes that probe, as one that restarted after a
// crash does on Docker 20.10 (probes every 3 s, no start_interval). A
// probe that failed at once on the refused port left it unhealthy for
// another interval (CI: 10.5 s, once 13.4 s, after a SIGKILL).
func TestHTTPProbeWaitsForAStartingServer(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatal("python3 is not installed, so the probe cannot be run: apt-get install python3")
	}
	// A free port, closed again: it refuses until the server below opens it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, portText, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portText)
	cmd := httpProbe(port, "/health/ready", 5*time.Second)
	probe := exec.Command(cmd[0], cmd[1:]...)
	if err := probe.Start(); err != nil {
		t.Fatal(err)
	}
	// The probe sleeps only between refused tries: once it does, it has
	// been refused at least once, however long python3 took to start.
	sleeping := fmt.Sprintf("%d ", clockNanosleep[runtime.GOARCH])
	for began := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		call, err := os.ReadFile(fmt.Sprintf("/proc/%d/syscall", probe.Process.Pid))
		if err != nil {
			t.Fatalf("reading what the probe does: %v", err)
		}
		if strings.HasPrefix(string(call), sleeping) {
			break
		}
		if stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", probe.Process.Pid)); strings.HasPrefix(strings.TrimSpace(string(stat[strings.LastIndexByte(string(stat), ')')+1:])), "Z") {
			err := probe.Wait()
			t.Fatalf("the probe gave up on the refused port at once (%v), before anything could serve", err)
		}
		if time.Since(began) > 20*time.Second {
			t.Fatalf("the probe never slept between tries on a refused port (last system call: %.20s)", call)
		}
	}
	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	go srv.Serve(l)
	defer srv.Close()
	if err := probe.Wait(); err != nil {
		t.Errorf("a server that began to serve after the probe was refused failed it: %v", err)
	}
}

// clockNanosleep is the system call number of clock_nanosleep, which
// python3's time.sleep makes (3.11+), on the architectures tests run on.
var clockNanosleep = map[string]int{"amd64": 230, "arm64": 115}
