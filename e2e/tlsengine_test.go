//go:build e2e

package e2e

import (
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fastapi-infra/fastapi-infra/internal/pki"
)

// tlsEngine is this machine's Docker engine behind TLS on 127.0.0.1, as a
// remote engine started with --tlsverify is reached: tcp://127.0.0.1:PORT
// with the client certificate folder CertPath (ca.pem, cert.pem, key.pem,
// as docker --tlsverify reads them). A client without a certificate of
// the test's CA is refused at the handshake, as dockerd refuses it.
type tlsEngine struct {
	URL      string
	CertPath string
	conns    atomic.Int64
}

// Connections is how many TLS connections with a valid client
// certificate the engine accepted.
func (e *tlsEngine) Connections() int64 { return e.conns.Load() }

// startTLSEngine listens until the test ends; each connection, once its
// client certificate is verified, is passed on to the local engine's
// socket.
func startTLSEngine(t *testing.T) *tlsEngine {
	t.Helper()
	ca, err := pki.NewCA("fastapi-infra e2e docker CA")
	if err != nil {
		t.Fatal(err)
	}
	serverCert, serverKey, err := ca.Issue(pki.Subject{CommonName: "127.0.0.1", Names: []string{"127.0.0.1"}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	clientCert, clientKey, err := ca.Issue(pki.Subject{CommonName: "fastapi-infra-e2e"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, pem := range map[string][]byte{"ca.pem": ca.CertPEM, "cert.pem": clientCert, "key.pem": clientKey} {
		if err := os.WriteFile(filepath.Join(dir, name), pem, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pair, err := tls.X509KeyPair(serverCert, serverKey)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool(),
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &tlsEngine{URL: "tcp://" + ln.Addr().String(), CertPath: dir}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				if err := conn.(*tls.Conn).Handshake(); err != nil {
					return
				}
				e.conns.Add(1)
				engine, err := net.Dial("unix", "/var/run/docker.sock")
				if err != nil {
					return
				}
				defer engine.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(engine, conn); done <- struct{}{} }()
				go func() { _, _ = io.Copy(conn, engine); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	return e
}
