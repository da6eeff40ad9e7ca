package dockerapi

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// InspectInto decodes a container's inspect document into out: for the
// parts Inspected leaves out (its Config and HostConfig, whole).
func (e *Client) InspectInto(ctx context.Context, id string, out any) error {
	return e.call(ctx, "GET", "/containers/"+url.PathEscape(id)+"/json", nil, nil, "", out)
}

// Create makes a container named name from an Engine API create body (a
// container's Config with HostConfig and NetworkingConfig) and returns
// its ID.
func (e *Client) Create(ctx context.Context, name string, body any) (string, error) {
	var out struct {
		ID string `json:"Id"`
	}
	err := e.post(ctx, "/containers/create", url.Values{"name": {name}}, body, &out)
	return out.ID, err
}

// Follow copies a container's stdout and stderr to w as it writes them,
// until it exits (or ctx ends), the stream headers removed.
func (e *Client) Follow(ctx context.Context, id string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, "GET", e.base+api+"/containers/"+url.PathEscape(id)+"/logs?follow=1&stdout=1&stderr=1", nil)
	if err != nil {
		return err
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("logs of %s: %s: %s", id, resp.Status, strings.TrimSpace(string(body)))
	}
	return CopyDemuxed(w, resp.Body)
}

// CopyDemuxed copies the engine's multiplexed stream of a container
// without a TTY (a header of 8 bytes before each frame of stdout or
// stderr) to w as it comes, the headers removed, until r ends.
func CopyDemuxed(w io.Writer, r io.Reader) error {
	var header [8]byte
	for {
		if _, err := io.ReadFull(r, header[:]); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if _, err := io.CopyN(w, r, int64(binary.BigEndian.Uint32(header[4:8]))); err != nil {
			return err
		}
	}
}

// Attached is a container's stdin, stdout and stderr on one connection
// the engine took over (Attach): what is written goes to its stdin, what
// is read is its output, raw with a TTY and multiplexed without
// (CopyDemuxed).
type Attached struct {
	conn net.Conn
	r    *bufio.Reader
}

func (a *Attached) Read(p []byte) (int, error)  { return a.r.Read(p) }
func (a *Attached) Write(p []byte) (int, error) { return a.conn.Write(p) }
func (a *Attached) Close() error                { return a.conn.Close() }

// CloseWrite ends the container's stdin (its end of file), as the docker
// CLI does when its own input ends.
func (a *Attached) CloseWrite() error {
	if cw, ok := a.conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("this connection to the engine cannot end the container's stdin alone")
}

// Attach connects to a container's stdin, stdout and stderr, before it
// starts (so none of its output is missed): the engine answers 101 and
// the connection becomes the container's streams.
func (e *Client) Attach(ctx context.Context, id string) (*Attached, error) {
	if e.dial == nil {
		return nil, fmt.Errorf("attaching to %s: this client has no raw connection to the engine", id)
	}
	conn, err := e.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("attaching to %s: %w", id, err)
	}
	req, err := http.NewRequestWithContext(ctx, "POST", e.base+api+"/containers/"+url.PathEscape(id)+"/attach?stream=1&stdin=1&stdout=1&stderr=1", nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("attaching to %s: %w", id, err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("attaching to %s: %w", id, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols && resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		conn.Close()
		return nil, fmt.Errorf("attaching to %s: %s: %s", id, resp.Status, strings.TrimSpace(string(body)))
	}
	return &Attached{conn: conn, r: br}, nil
}

// Resize sets the size of a container's TTY.
func (e *Client) Resize(ctx context.Context, id string, height, width int) error {
	return e.call(ctx, "POST", "/containers/"+url.PathEscape(id)+"/resize", url.Values{"h": {fmt.Sprint(height)}, "w": {fmt.Sprint(width)}}, nil, "", nil)
}
