package service

import (
	"slices"
	"testing"
)

func TestServerCommandIsExecFormWithWorkersAndTrustedProxies(t *testing.T) {
	s := Spec{Module: "app.main:app", Port: 8000, Workers: 5, ProxyHeaders: true}
	got := s.ServerCommand("172.30.0.0/24")
	want := []string{"python3", "-m", "uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000", "--workers", "5",
		"--proxy-headers", "--forwarded-allow-ips", "172.30.0.0/24"}
	if !slices.Equal(got, want) {
		t.Fatalf("ServerCommand = %q\nwant            %q", got, want)
	}
	s.ProxyHeaders = false
	if got := s.ServerCommand("*"); slices.Contains(got, "--forwarded-allow-ips") || !slices.Contains(got, "--no-proxy-headers") {
		t.Fatalf("without proxy headers the command must distrust X-Forwarded-*: %q", got)
	}
}

func TestWorkerCommandServesAnInheritedSocket(t *testing.T) {
	s := Spec{Module: "app.main:app", Port: 8000, Workers: 5, ProxyHeaders: true}
	got := s.WorkerCommand(3, "172.30.0.254")
	want := []string{"python3", "-c", AdoptInheritedSocket, "app.main:app", "--fd", "3", "--proxy-headers", "--forwarded-allow-ips", "172.30.0.254"}
	if !slices.Equal(got, want) {
		t.Fatalf("WorkerCommand = %q\nwant            %q", got, want)
	}
}

func TestURL(t *testing.T) {
	s := Spec{Domain: "api.example.com"}
	if got := s.URL(443); got != "https://api.example.com" {
		t.Errorf("URL(443) = %q", got)
	}
	if got := s.URL(8443); got != "https://api.example.com:8443" {
		t.Errorf("URL(8443) = %q", got)
	}
}

func TestReleaseID(t *testing.T) {
	a := ReleaseID("app:1", "alembic", "upgrade", "head")
	if len(a) != 10 || a != ReleaseID("app:1", "alembic", "upgrade", "head") {
		t.Fatalf("ReleaseID is %q, not a stable 10-character name", a)
	}
	// Parts are separated: moving a boundary is another release.
	if a == ReleaseID("app:1alembic", "upgrade", "head") || a == ReleaseID("app:2", "alembic", "upgrade", "head") {
		t.Error("different parts give the same ID")
	}
}
