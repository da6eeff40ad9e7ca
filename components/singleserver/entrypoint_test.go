//go:build e2e

package singleserver

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// silentPort listens on 127.0.0.1 with a full accept queue that nobody
// reads, so a connect gets no answer at all (the kernel drops the SYN), as
// a new replica's address before its interface is up; close makes the
// port refuse connections, as a started replica does until it serves.
func silentPort(t *testing.T) (port int, close func()) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	close = func() {
		if !closed {
			syscall.Close(fd)
			closed = true
		}
	}
	t.Cleanup(close)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port = sa.(*syscall.SockaddrInet4).Port
	for filled := false; !filled; {
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 300*time.Millisecond)
		if err != nil {
			filled = true
			continue
		}
		t.Cleanup(func() { conn.Close() })
	}
	return port, close
}

// TestProxyEntrypointReloadsOnceNewReplicasAnswer runs proxy-entrypoint.sh
// with stand-ins for nginx and getent: when the replicas' name resolves to
// a new address, nginx is reloaded only once that address answers a
// connect (refused or accepted), not while connects to it get no answer.
// Reloaded at once, nginx sent requests to a new replica whose interface
// was not up yet, and each waited its 250 ms connect timeout (the slowest
// requests of a release in singlebench).
func TestProxyEntrypointReloadsOnceNewReplicasAnswer(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("bash is not installed, so the entrypoint cannot probe addresses: apt-get install bash")
	}
	port, answer := silentPort(t)
	dir := t.TempDir()
	addresses, events := filepath.Join(dir, "addresses"), filepath.Join(dir, "events")
	write := func(path, content string) {
		t.Helper()
		if err := os.WriteFile(path+".new", []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
	}
	write(addresses, "127.0.0.2\n")
	stubs := map[string]string{
		"getent": `awk '{print $1 "  STREAM x"}' "$ADDRESSES"; echo resolved >> "$EVENTS"`,
		"nginx": `case "$*" in
*"-s reload"*) echo reload >> "$EVENTS" ;;
*"-s quit"*) kill $(cat "$EVENTS.pid") ;;
*daemon*) echo $$ > "$EVENTS.pid"; echo start >> "$EVENTS"; exec sleep 600 ;;
esac`,
	}
	for name, body := range stubs {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("sh", "proxy-entrypoint.sh")
	cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"), "ADDRESSES="+addresses, "EVENTS="+events,
		"TLS_MODE=acme", "DOMAIN=example.test", "UPSTREAM_HOST=app", "UPSTREAM_PORT="+strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	reloads := func() int {
		b, _ := os.ReadFile(events)
		return strings.Count(string(b), "reload")
	}
	waitFor := func(what string, within time.Duration, done func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !done() {
			if time.Since(start) > within {
				t.Fatalf("%s: not within %s", what, within)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(start)
	}
	// The entrypoint's first look at the addresses, after nginx started:
	// a new address written before it would be no news to it (seen where
	// starting a process took 10-30 ms).
	waitFor("nginx started and the addresses read", 5*time.Second, func() bool {
		b, _ := os.ReadFile(events)
		return strings.Contains(string(b), "start") && strings.Contains(string(b), "resolved")
	})

	write(addresses, "127.0.0.1\n127.0.0.2\n")
	time.Sleep(2 * time.Second) // two of the entrypoint's 1 s polls
	if n := reloads(); n != 0 {
		t.Fatalf("nginx was reloaded %d times for a new address that does not answer connects", n)
	}
	answer()
	took := waitFor("a reload once the new address refuses connections", 2*time.Second, func() bool { return reloads() == 1 })
	t.Logf("reloaded %s after the new address answered", took.Round(10*time.Millisecond))

	// A gone address needs no answer: nginx drops it at the next poll.
	write(addresses, "127.0.0.1\n")
	waitFor("a reload once an address is gone", 2*time.Second, func() bool { return reloads() == 2 })
}
