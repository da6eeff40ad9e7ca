package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"testing"
)

func TestIssuedCertificatesVerifyAgainstTheirCA(t *testing.T) {
	ca, err := NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue(Subject{CommonName: "api.example.test", Names: []string{"api.example.test", "127.0.0.1"}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("certificate and key do not match: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"api.example.test", "127.0.0.1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: ca.Pool()}); err != nil {
			t.Errorf("serving certificate for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "other.example.test", Roots: ca.Pool()}); err == nil {
		t.Error("the certificate verifies for a name it does not carry")
	}
	other, _ := NewCA("another CA")
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "api.example.test", Roots: other.Pool()}); err == nil {
		t.Error("the certificate verifies against a CA that did not sign it")
	}
	// A client certificate carries its groups as organizations, which the
	// API server reads as the user's groups.
	clientPEM, _, err := ca.Issue(Subject{CommonName: "system:node:n1", Organizations: []string{"system:nodes"}})
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(clientPEM)
	client, _ := x509.ParseCertificate(block.Bytes)
	if _, err := client.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate: %v", err)
	}
	if client.Subject.Organization[0] != "system:nodes" {
		t.Errorf("organizations %v", client.Subject.Organization)
	}
}
