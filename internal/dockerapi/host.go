package dockerapi

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"sync"
	"time"
)

// ForHost is a client of the engine at host, written as the docker
// provider and the docker CLI take it: unix:///path, tcp://host:port (TLS
// with the client certificate folder certPath, else $DOCKER_CERT_PATH's:
// ca.pem, cert.pem, key.pem) or ssh://[user@]host[:port], where each
// connection is `docker system dial-stdio` run there over ssh, as the
// docker CLI's own connection helper does (the user's ssh config, keys
// and known hosts apply; BatchMode: no password prompt). Empty: the local
// default socket.
func ForHost(host, certPath string) (*Client, error) {
	if host == "" {
		return NewClient(""), nil
	}
	u, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("reading docker host %q: %w", host, err)
	}
	switch u.Scheme {
	case "unix":
		return NewClient(u.Path), nil
	case "tcp":
		return tcpClient(u.Host, certPath)
	case "ssh":
		args := sshArgs(u, "docker", "system", "dial-stdio")
		dial := func(ctx context.Context) (net.Conn, error) { return dialCommand(ctx, "ssh", args...) }
		return &Client{client: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
			// Each connection is an ssh session: keep a few for reuse,
			// and close them before sshd's own idle limits would.
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
		}}, base: "http://docker", dial: dial}, nil
	}
	return nil, fmt.Errorf("docker host %q: want unix://, tcp:// or ssh://", host)
}

// commandConn is a connection made of a command's stdin and stdout (ssh
// running `docker system dial-stdio`): what it writes goes to the
// engine's socket there, what the engine answers comes back.
type commandConn struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    io.ReadCloser
	closed sync.Once
}

// dialCommand starts name with args as a connection. The command is not
// bound to ctx (which ends with the dial, while the connection lives on);
// Close ends it.
func dialCommand(_ context.Context, name string, args ...string) (net.Conn, error) {
	cmd := exec.Command(name, args...)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	return &commandConn{cmd: cmd, in: in, out: out}, nil
}

func (c *commandConn) Read(p []byte) (int, error)  { return c.out.Read(p) }
func (c *commandConn) Write(p []byte) (int, error) { return c.in.Write(p) }

// CloseWrite ends what the connection sends (the command's stdin), as
// a TCP half-close does: `docker system dial-stdio` passes it on.
func (c *commandConn) CloseWrite() error { return c.in.Close() }

func (c *commandConn) Close() error {
	c.closed.Do(func() {
		_ = c.in.Close()
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
	})
	return nil
}

func (c *commandConn) LocalAddr() net.Addr              { return dummyAddr{} }
func (c *commandConn) RemoteAddr() net.Addr             { return dummyAddr{} }
func (c *commandConn) SetDeadline(time.Time) error      { return nil }
func (c *commandConn) SetReadDeadline(time.Time) error  { return nil }
func (c *commandConn) SetWriteDeadline(time.Time) error { return nil }

type dummyAddr struct{}

func (dummyAddr) Network() string { return "command" }
func (dummyAddr) String() string  { return "ssh" }

// sshArgs are ssh's arguments to run remote on an ssh:// docker host:
// never a prompt (BatchMode), a bounded connect, the URL's port and user.
func sshArgs(u *url.URL, remote ...string) []string {
	args := []string{"-o", "BatchMode=yes", "-o", "ConnectTimeout=10"}
	if u.Port() != "" {
		args = append(args, "-p", u.Port())
	}
	if u.User != nil {
		args = append(args, "-l", u.User.Username())
	}
	return append(append(args, "--", u.Hostname()), remote...)
}
