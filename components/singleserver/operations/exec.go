package operations

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/fastapi-infra/fastapi-infra/internal/dockerapi"
)

// ExecRole marks a one-off container (Exec) in its fastapi-infra.role label.
const ExecRole = "exec"

// replicaDocument is the part of a replica's inspect document a one-off
// container copies: its whole Config and HostConfig, and its networks.
type replicaDocument struct {
	Name            string
	Config          map[string]any
	HostConfig      map[string]any
	NetworkSettings struct {
		Networks map[string]any
	}
}

// Exec runs cmd in a one-off container of the current release: a running
// replica's image, user, environment, secret files, network, limits and
// hardening (read-only root, no capabilities), its output copied to w as
// it comes, removed after; it returns the command's exit code. Not the
// replica's health check, restart policy, labels (Traefik would route to
// it) or network aliases (nginx would send it requests). started, when
// not nil, gets the container's name once it runs: a caller that is
// interrupted removes it (Remove).
func (r Running) Exec(ctx context.Context, cmd []string, w io.Writer, started func(name string)) (int, error) {
	return r.ExecWith(ctx, cmd, Streams{Out: w}, started)
}

// Streams are a one-off command's: its output, and for `exec -i` its
// input, for `exec -t` a terminal.
type Streams struct {
	Out io.Writer
	// In, when set, is the command's stdin; its end is the command's end
	// of file.
	In io.Reader
	// TTY gives the command a terminal (its output then comes as a
	// terminal's, stdout and stderr as one), of the size Size says.
	TTY  bool
	Size func() (height, width int)
}

// ExecWith is Exec with the command's stdin and a terminal when s asks.
func (r Running) ExecWith(ctx context.Context, cmd []string, s Streams, started func(name string)) (int, error) {
	if len(cmd) == 0 {
		return 0, errors.New("exec: no command")
	}
	apps, err := r.containers(ctx, "fastapi-infra.release", "app")
	if err != nil {
		return 0, err
	}
	if len(apps) == 0 {
		return 0, fmt.Errorf("exec: stack %s runs no app replica to take the release from; run ./infra up first", r.Prefix)
	}
	var replica replicaDocument
	if err := r.Engine.InspectInto(ctx, apps[0], &replica); err != nil {
		return 0, err
	}
	body, err := oneOff(replica, cmd)
	if err != nil {
		return 0, err
	}
	body["Tty"] = s.TTY
	body["AttachStdout"], body["AttachStderr"] = true, true
	if s.In != nil {
		body["OpenStdin"], body["StdinOnce"], body["AttachStdin"] = true, true, true
	}

	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	name := r.Prefix + "-exec-" + hex.EncodeToString(suffix)
	id, err := r.Engine.Create(ctx, name, body)
	if err != nil {
		return 0, fmt.Errorf("exec: creating %s from %s: %w", name, replica.Name, err)
	}
	// Removed whatever happens here; a fresh context, so an ended ctx
	// still removes it.
	defer func() {
		rm, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = r.Engine.Remove(rm, id)
	}()
	if s.In != nil || s.TTY {
		// A TTY's output comes without the multiplexing headers, on the
		// attached connection as it comes.
		return r.attached(ctx, id, name, s, started)
	}
	if err := r.Engine.Start(ctx, id); err != nil {
		return 0, fmt.Errorf("exec: starting %s: %w", name, err)
	}
	if started != nil {
		started(name)
	}
	if err := r.Engine.Follow(ctx, id, s.Out); err != nil {
		return 0, fmt.Errorf("exec: reading the output of %s: %w", name, err)
	}
	return r.Engine.WaitExit(ctx, id)
}

// attached runs the one-off container with its streams on one attached
// connection: attached before it starts, so none of its output is lost;
// stdin copied until it ends, then the container's end of file.
func (r Running) attached(ctx context.Context, id, name string, s Streams, started func(name string)) (int, error) {
	conn, err := r.Engine.Attach(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("exec: %w", err)
	}
	defer conn.Close()
	if err := r.Engine.Start(ctx, id); err != nil {
		return 0, fmt.Errorf("exec: starting %s: %w", name, err)
	}
	if started != nil {
		started(name)
	}
	if s.TTY && s.Size != nil {
		if h, w := s.Size(); h > 0 && w > 0 {
			_ = r.Engine.Resize(ctx, id, h, w)
		}
	}
	if s.In != nil {
		go func() {
			_, _ = io.Copy(conn, s.In)
			// A pipe's end is the command's end of file. Not a
			// terminal's: there Ctrl-D is the end, typed through the
			// TTY, and a half-close ends the engine's whole stream
			// (seen: a command's output after its input was cut off).
			if !s.TTY {
				_ = conn.CloseWrite()
			}
		}()
	}
	if s.TTY {
		_, err = io.Copy(s.Out, conn)
	} else {
		err = dockerapi.CopyDemuxed(s.Out, conn)
	}
	if err != nil {
		return 0, fmt.Errorf("exec: reading the output of %s: %w", name, err)
	}
	return r.Engine.WaitExit(ctx, id)
}

// oneOff is the create body of a one-off container running cmd, made from
// a replica's inspect document: its Config and HostConfig as they are
// (image, user, env, secret volume, read-only root, tmpfs, limits, no
// capabilities), but cmd as entrypoint and command, a role label only, no
// health check, restart or published ports, and its network without the
// replicas' aliases.
func oneOff(replica replicaDocument, cmd []string) (map[string]any, error) {
	networks := slices.Sorted(maps.Keys(replica.NetworkSettings.Networks))
	if replica.Config == nil || replica.HostConfig == nil || len(networks) == 0 {
		return nil, fmt.Errorf("exec: replica %s has no config or network to copy", replica.Name)
	}
	body := maps.Clone(replica.Config)
	body["Entrypoint"], body["Cmd"] = cmd[:1], cmd[1:]
	body["Labels"] = map[string]string{"fastapi-infra.role": ExecRole}
	for _, k := range []string{"Healthcheck", "Hostname", "ExposedPorts", "StopSignal"} {
		delete(body, k)
	}
	host := maps.Clone(replica.HostConfig)
	host["RestartPolicy"] = map[string]any{"Name": "no"}
	host["PortBindings"] = nil
	host["NetworkMode"] = networks[0]
	body["HostConfig"] = host
	body["NetworkingConfig"] = map[string]any{"EndpointsConfig": map[string]any{networks[0]: map[string]any{}}}
	return body, nil
}

// Remove deletes a container of the stack by name, running or not (an
// interrupted Exec's).
func (r Running) Remove(ctx context.Context, name string) error {
	return r.Engine.Remove(ctx, name)
}
