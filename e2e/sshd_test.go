//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sshHost is Debian's sshd on 127.0.0.1 in front of this machine's Docker
// engine, as a remote single server is reached: ssh://root@127.0.0.1:PORT
// runs `docker system dial-stdio` there. ssh reads its client config from
// the user's home in the password database, not $HOME, so the driver
// gets the real ssh behind a one-line wrapper first on its PATH that adds
// this test's config (key, port, known host): PathDir.
type sshHost struct {
	URL     string
	PathDir string
	calls   string // the wrapper's log: one line per ssh it ran
}

// Sessions is how many ssh sessions the wrapper started.
func (h sshHost) Sessions() int {
	raw, _ := os.ReadFile(h.calls)
	return strings.Count(string(raw), "\n")
}

// startSSHD starts sshd with a host key and an authorized client key of
// this test's own, stopped at the end. sshd is openssh-server's
// (./run-tests installs it); without it the test fails, saying so.
func startSSHD(t *testing.T) sshHost {
	t.Helper()
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		t.Fatalf("no /usr/sbin/sshd: apt-get install openssh-server (./run-tests does): %v", err)
	}
	dir := t.TempDir()
	keygen := func(name string) string {
		path := filepath.Join(dir, name)
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fastapi-infra-e2e", "-f", path).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
		pub, err := os.ReadFile(path + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(pub))
	}
	hostPub, clientPub := keygen("host_key"), keygen("client_key")
	port := freePort(t)
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	write("authorized_keys", clientPub+"\n")
	sshdConfig := write("sshd_config", fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s/host_key
PidFile %s/sshd.pid
AuthorizedKeysFile %s/authorized_keys
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
LogLevel ERROR
`, port, dir, dir, dir))
	write("known_hosts", fmt.Sprintf("[127.0.0.1]:%d %s\n", port, hostPub))
	clientConfig := write("ssh_config", fmt.Sprintf(`Host 127.0.0.1
  Port %d
  IdentityFile %s/client_key
  IdentitiesOnly yes
  UserKnownHostsFile %s/known_hosts
  StrictHostKeyChecking yes
`, port, dir, dir))
	shimDir := filepath.Join(dir, "bin")
	if err := os.MkdirAll(shimDir, 0o755); err != nil {
		t.Fatal(err)
	}
	calls := filepath.Join(dir, "calls")
	if err := os.WriteFile(filepath.Join(shimDir, "ssh"), []byte("#!/bin/sh\necho \"$*\" >> '"+calls+"'\nexec /usr/bin/ssh -F '"+clientConfig+"' \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // sshd's privilege separation folder
		t.Fatal(err)
	}
	sshd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", sshdConfig)
	var log strings.Builder
	sshd.Stdout, sshd.Stderr = &log, &log
	if err := sshd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sshd.Process.Kill()
		_ = sshd.Wait()
		if t.Failed() && log.Len() > 0 {
			t.Logf("sshd's log:\n%s", log.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd does not listen on 127.0.0.1:%d within 10 s:\n%s", port, log.String())
		}
	}
	return sshHost{URL: fmt.Sprintf("ssh://root@127.0.0.1:%d", port), PathDir: shimDir, calls: calls}
}
