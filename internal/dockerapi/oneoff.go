package dockerapi

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
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
	var header [8]byte
	for {
		if _, err := io.ReadFull(resp.Body, header[:]); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if _, err := io.CopyN(w, resp.Body, int64(binary.BigEndian.Uint32(header[4:8]))); err != nil {
			return err
		}
	}
}
