// Package logstore reads a single server's lines back from its log store
// (logging.aggregate: VictoriaLogs in the container PREFIX-logs, which
// every container of the stack logs to by syslog, tagged with its name).
// The store keeps what the engine no longer has: the lines of replicas a
// release replaced, of containers removed, beyond the engine's rotation.
//
// The store's API answers on the host's loopback only, which a driver on
// another machine (ssh://, tcp:// hosts) cannot reach. So the query runs
// on the host, in a short-lived container on the store's network: the
// image of a running replica (python3), nothing of the replica's
// environment, secrets or mounts, read-only, no capabilities. Its output
// comes back through the engine's API, as every day-2 verb's does.
package logstore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/fastapi-infra/fastapi-infra/internal/dockerapi"
)

// Line is one line of one container, as the store has it.
type Line struct {
	Time time.Time
	// Container is the container's Docker name (the syslog tag).
	Container string
	Text      string
}

// apiPort is VictoriaLogs' HTTP port in its container (singleserver.Logs).
const apiPort = 9428

// Store is a stack's log store, reached through the engine.
type Store struct {
	Engine *dockerapi.Client
	Prefix string
}

// Running says whether the stack has a log store that runs.
func (s Store) Running(ctx context.Context) bool {
	st, err := s.Engine.Inspect(ctx, s.Prefix+"-logs")
	return err == nil && st.State.Running
}

// fetch is the query container's program: GET the URL, write the answer.
const fetch = `import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=60) as r:
    sys.stdout.buffer.write(r.read())
`

// Query is the LogsQL query of the newest limit lines of the stack since
// a time (zero: every line the store keeps), newest first: every
// container whose name starts with the stack's prefix.
func Query(prefix string, since time.Time, limit int) string {
	q := fmt.Sprintf("app_name:~%q", "^"+regexp.QuoteMeta(prefix+"-"))
	if !since.IsZero() {
		q = "_time:>=" + since.UTC().Format(time.RFC3339Nano) + " " + q
	}
	return fmt.Sprintf("%s | sort by (_time desc) | limit %d | fields _time, app_name, _msg", q, limit)
}

// Lines reads the stack's lines since a time, oldest first: the newest
// limit of them.
func (s Store) Lines(ctx context.Context, since time.Time, limit int) ([]Line, error) {
	image, err := s.replicaImage(ctx)
	if err != nil {
		return nil, err
	}
	query := url.Values{"query": {Query(s.Prefix, since, limit)}}
	target := fmt.Sprintf("http://%s-logs:%d/select/logsql/query?%s", s.Prefix, apiPort, query.Encode())
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	name := s.Prefix + "-logs-query-" + hex.EncodeToString(suffix)
	network := s.Prefix + "-edge"
	id, err := s.Engine.Create(ctx, name, map[string]any{
		"Image":      image,
		"Entrypoint": []string{"python3", "-I", "-c", fetch},
		"Cmd":        []string{target},
		"Env":        []string{},
		"Labels":     map[string]string{"fastapi-infra.role": "logs-query"},
		"HostConfig": map[string]any{
			"NetworkMode":    network,
			"ReadonlyRootfs": true,
			"CapDrop":        []string{"ALL"},
			"SecurityOpt":    []string{"no-new-privileges:true"},
			"Memory":         256 << 20,
			"LogConfig":      map[string]any{"Type": "json-file"},
		},
		"NetworkingConfig": map[string]any{"EndpointsConfig": map[string]any{network: map[string]any{}}},
	})
	if err != nil {
		return nil, fmt.Errorf("the log store's query container: %w", err)
	}
	defer func() {
		rm, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.Engine.Remove(rm, id)
	}()
	if err := s.Engine.Start(ctx, id); err != nil {
		return nil, fmt.Errorf("the log store's query container: %w", err)
	}
	var out bytes.Buffer
	if err := s.Engine.Follow(ctx, id, &out); err != nil {
		return nil, err
	}
	if code, err := s.Engine.WaitExit(ctx, id); err != nil || code != 0 {
		return nil, fmt.Errorf("the log store's query exited with %d (%v): %s", code, err, lastLine(out.String()))
	}
	lines, err := Parse(out.Bytes())
	slices.Reverse(lines)
	return lines, err
}

// Parse reads the store's answer: a JSON object per line.
func Parse(answer []byte) ([]Line, error) {
	var lines []Line
	sc := bufio.NewScanner(bytes.NewReader(answer))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var l struct {
			Time    string `json:"_time"`
			AppName string `json:"app_name"`
			Msg     string `json:"_msg"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("the log store's answer: %v: %.200s", err, sc.Text())
		}
		t, err := time.Parse(time.RFC3339Nano, l.Time)
		if err != nil {
			return nil, fmt.Errorf("the log store's answer: a line's time %q: %v", l.Time, err)
		}
		lines = append(lines, Line{Time: t, Container: l.AppName, Text: l.Msg})
	}
	return lines, sc.Err()
}

// replicaImage is the image of a replica of the stack (running or not).
func (s Store) replicaImage(ctx context.Context) (string, error) {
	found, err := s.Engine.List(ctx, "fastapi-infra.release")
	if err != nil {
		return "", err
	}
	for name, id := range found {
		if strings.HasPrefix(name, s.Prefix+"-app-") {
			var doc struct{ Config struct{ Image string } }
			if err := s.Engine.InspectInto(ctx, id, &doc); err != nil {
				return "", err
			}
			return doc.Config.Image, nil
		}
	}
	return "", fmt.Errorf("stack %s has no app replica whose image can query the log store; run ./infra up first", s.Prefix)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
