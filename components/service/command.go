package service

import (
	_ "embed"
	"strconv"
)

// ServerCommand is the exec-form command that starts the service. It runs
// uvicorn as `python3 -m uvicorn`: `fastapi run` is a wrapper around it that
// older FastAPI releases (Debian's among them) lack, Debian's uvicorn package
// installs no `uvicorn` executable, and the module takes the same flags on
// every version. Exec form, so the server is PID 1 and gets SIGTERM itself:
// uvicorn then stops accepting, finishes in-flight requests and runs the
// lifespan shutdown, within the grace period the runtime gives it.
// trustedProxies is the value of --forwarded-allow-ips: only those addresses
// may set X-Forwarded-*; it is ignored without ProxyHeaders.
func (s Spec) ServerCommand(trustedProxies string) []string {
	return s.uvicorn([]string{"python3", "-m", "uvicorn"}, trustedProxies,
		"--host", "0.0.0.0",
		"--port", strconv.Itoa(s.Port),
		"--workers", strconv.Itoa(s.Workers))
}

// WorkerCommand is one uvicorn worker process that serves on a listening
// socket it inherits as file descriptor fd, for a supervisor that binds
// the port and runs Workers of them (see the single server's replicas).
// It is uvicorn's command line run through AdoptInheritedSocket.
func (s Spec) WorkerCommand(fd int, trustedProxies string) []string {
	return s.uvicorn([]string{"python3", "-c", AdoptInheritedSocket}, trustedProxies, "--fd", strconv.Itoa(fd))
}

// AdoptInheritedSocket (uvicorn_worker.py) runs uvicorn's command line,
// the arguments after it, serving the inherited descriptor itself. uvicorn
// --fd serves a duplicate (socket.fromfd), so a worker kept the original
// open until it exited: on SIGTERM it closed only the duplicate, and the
// port went on completing handshakes that nobody accepted for as long as
// any worker still finished a request, then reset them. Traefik answered
// those 502 in a release (it does not retry a request it has written).
// Serving the descriptor itself, the socket closes once the last worker
// stops serving, and the port refuses connections, which every proxy
// retries elsewhere.
//
//go:embed uvicorn_worker.py
var AdoptInheritedSocket string

func (s Spec) uvicorn(python []string, trustedProxies string, listen ...string) []string {
	cmd := append(append(python, s.Module), listen...)
	if s.ProxyHeaders {
		return append(cmd, "--proxy-headers", "--forwarded-allow-ips", trustedProxies)
	}
	return append(cmd, "--no-proxy-headers")
}

// URL is the public address of the service.
func (s Spec) URL(httpsPort int) string {
	if httpsPort == 443 || httpsPort == 0 {
		return "https://" + s.Domain
	}
	return "https://" + s.Domain + ":" + strconv.Itoa(httpsPort)
}
