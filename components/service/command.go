package service

import "strconv"

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
	return s.uvicorn(trustedProxies,
		"--host", "0.0.0.0",
		"--port", strconv.Itoa(s.Port),
		"--workers", strconv.Itoa(s.Workers))
}

// WorkerCommand is one uvicorn worker process that serves on a listening
// socket it inherits as file descriptor fd, for a supervisor that binds
// the port and runs Workers of them (see the single server's replicas).
func (s Spec) WorkerCommand(fd int, trustedProxies string) []string {
	return s.uvicorn(trustedProxies, "--fd", strconv.Itoa(fd))
}

func (s Spec) uvicorn(trustedProxies string, listen ...string) []string {
	cmd := append([]string{"python3", "-m", "uvicorn", s.Module}, listen...)
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
