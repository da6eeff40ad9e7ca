package dockerapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// An engine that takes the attach connection over: it answers 101, reads
// the container's stdin until its end (the client's half-close), then
// sends back what it read as one stdout frame, multiplexed as the engine
// does without a TTY.
func TestAttachTakesTheConnectionOverAndEndsStdin(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	asked := make(chan *http.Request, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		asked <- req
		_, _ = io.WriteString(conn, "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
		stdin, _ := io.ReadAll(br) // until the client's half-close
		var header [8]byte
		header[0] = 1
		binary.BigEndian.PutUint32(header[4:], uint32(len(stdin)))
		_, _ = conn.Write(append(header[:], stdin...))
	}()
	c := NewClient(socket)
	a, err := c.Attach(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	req := <-asked
	if req.Method != "POST" || req.URL.Path != "/v1.41/containers/c1/attach" || req.URL.Query().Get("stdin") != "1" || req.Header.Get("Upgrade") != "tcp" {
		t.Errorf("the attach request: %s %s %v", req.Method, req.URL, req.Header)
	}
	if _, err := io.WriteString(a, "hello\n"); err != nil {
		t.Fatal(err)
	}
	if err := a.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := CopyDemuxed(&out, a); err != nil {
		t.Fatal(err)
	}
	if out.String() != "hello\n" {
		t.Errorf("output %q, want the stdin echoed once the engine saw its end", out.String())
	}
}

func TestAttachRefusalSaysWhy(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = http.ReadRequest(bufio.NewReader(conn))
		_, _ = io.WriteString(conn, "HTTP/1.1 404 Not Found\r\nContent-Length: 34\r\n\r\n{\"message\":\"No such container: x\"}")
	}()
	_, err = NewClient(socket).Attach(context.Background(), "x")
	if err == nil || !strings.Contains(err.Error(), "No such container") {
		t.Errorf("attach to a missing container: %v", err)
	}
}
