// Package objectstore runs the lab's S3-compatible object store for the
// tests: versitygw (Apache-2.0), a real S3 API over TLS that keeps each
// bucket in a folder, as a process of the test on the address of the
// Docker engine's own bridge, where the stack's containers reach it (and
// nothing outside this machine does). It stands for the off-host backup
// repository: deleting a stack's containers and volumes leaves it.
package objectstore

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/fastapi-infra/fastapi-infra/internal/pki"
)

// Name is the store's host name in its certificate; the containers that
// reach it get it in /etc/hosts (db.backup.s3.hostAddress), since
// pgBackRest verifies a certificate by name only.
const Name = "objects.fastapi-infra.test"

// Store is a running object store.
type Store struct {
	// Endpoint is https://Name:port; Address the IP it listens on.
	Endpoint, Address string
	// CACert is the PEM of the CA its certificate chains to.
	CACert []byte
	// AccessKey and SecretKey are its root account's.
	AccessKey, SecretKey string
	// Dir holds the buckets, one folder each.
	Dir  string
	cmd  *exec.Cmd
	done chan error
	log  *os.File
}

// Start runs binary (versitygw) on address (an IP of this machine) and a
// free port, serving the buckets (made empty) from a new folder under
// dir, its certificate for Name from a new CA.
func Start(ctx context.Context, binary, address, dir string, buckets ...string) (*Store, error) {
	s := &Store{Address: address, Dir: filepath.Join(dir, "buckets"), AccessKey: "lab" + randomHex(6), SecretKey: randomHex(20)}
	for _, b := range buckets {
		if err := os.MkdirAll(filepath.Join(s.Dir, b), 0o755); err != nil {
			return nil, err
		}
	}
	ca, err := pki.NewCA("fastapi-infra lab object store CA")
	if err != nil {
		return nil, err
	}
	cert, key, err := ca.Issue(pki.Subject{CommonName: Name, Names: []string{Name}, Server: true})
	if err != nil {
		return nil, err
	}
	s.CACert = ca.CertPEM
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, cert, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		return nil, err
	}
	port, err := freePort(address)
	if err != nil {
		return nil, err
	}
	s.Endpoint = "https://" + Name + ":" + strconv.Itoa(port)
	if s.log, err = os.Create(filepath.Join(dir, "versitygw.log")); err != nil {
		return nil, err
	}
	s.cmd = exec.Command(binary, "--port", net.JoinHostPort(address, strconv.Itoa(port)), "--cert", certFile, "--key", keyFile, "--quiet", "posix", s.Dir)
	// The root account's keys reach it in its environment, as its
	// documentation says; this is a test's store with throwaway keys.
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", binary, err)
	}
	s.done = make(chan error, 1)
	go func() { s.done <- s.cmd.Wait() }()
	if err := s.waitAnswering(ctx, port, ca); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// waitAnswering waits until the store answers over TLS with its
// certificate verified, for at most 30 s.
func (s *Store) waitAnswering(ctx context.Context, port int, ca *pki.CA) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: Name},
	}}
	url := "https://" + net.JoinHostPort(s.Address, strconv.Itoa(port)) + "/"
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-s.done:
			out, _ := os.ReadFile(s.log.Name())
			return fmt.Errorf("versitygw exited (%v):\n%s", err, out)
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("versitygw does not answer on %s after 30 s: %v", url, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Stop ends the store; its folder stays for the test to read.
func (s *Store) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		<-s.done
		s.cmd = nil
	}
	if s.log != nil {
		s.log.Close()
	}
}

// Objects counts the files under a folder of a bucket (a repository's
// archived WAL, say); none when it does not exist.
func (s *Store) Objects(bucket, path string) (int, error) {
	n := 0
	err := filepath.WalkDir(filepath.Join(s.Dir, bucket, path), func(_ string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return fs.SkipAll
		}
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	})
	return n, err
}

func freePort(address string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(address, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
