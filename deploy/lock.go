package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Lock takes the stack's lock for an operation that changes what runs
// without the engine (backup, restore): the lock `pulumi up` itself takes.
// A file backend keeps it as a file per holder under
// .pulumi/locks/<org>/<project>/<stack>/ (pkg/backend/diy/lock.go); the
// engine refuses an update while any other holder's file is there, and
// `pulumi cancel` removes them all. So an up beside a restore is refused
// naming the restore's process, a restore beside an up is refused naming
// the up's, and a stale one is cleared the way a stale update's is.
//
// Another backend (cloud storage, Pulumi Cloud) keeps its lock where only
// the CLI writes it: the operation then runs unlocked, and note says so.
// The returned unlock removes the lock; call it when the operation ends.
func (t Target) Lock(ctx context.Context, op string, note io.Writer) (unlock func(), err error) {
	ws := t.Stack.Workspace()
	who, err := ws.WhoAmIDetails(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s %s: finding the backend, to lock the stack: %w", op, t.Name(), err)
	}
	project, err := ws.ProjectSettings(ctx)
	if err != nil {
		return nil, err
	}
	root, ok := fileBackendRoot(who.URL)
	if !ok {
		fmt.Fprintf(note, "%s: the backend %s keeps its stack locks where only the pulumi CLI writes them; %s runs without one, so make sure no update of stack %s runs meanwhile\n", op, redactURL(who.URL), op, t.Name())
		return func() {}, nil
	}
	return LockFileBackend(root, string(project.Name), t.Name(), op)
}

// LockFileBackend takes the lock of stack in the file backend at root
// for op: it writes this process's lock file, then looks for another's
// (the engine's own order: write, then check, so that two racing holders
// both see each other and both back off).
func LockFileBackend(root, project, stack, op string) (func(), error) {
	dir := stackLockDir(root, project, stack)
	if held := otherLocks(dir, ""); len(held) > 0 {
		return nil, lockedByOthers(op, stack, held)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%s %s: locking the stack: %w", op, stack, err)
	}
	content, err := newLockContent(op)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	mine := filepath.Join(dir, hex.EncodeToString(id)+".json")
	if err := os.WriteFile(mine, content, 0o600); err != nil {
		return nil, fmt.Errorf("%s %s: locking the stack: %w", op, stack, err)
	}
	unlock := func() { _ = os.Remove(mine) }
	if held := otherLocks(dir, mine); len(held) > 0 {
		unlock()
		return nil, lockedByOthers(op, stack, held)
	}
	return unlock, nil
}

// lockContent is the engine's lock file (pid, username, hostname,
// timestamp), plus the operation that holds it, which the engine ignores.
type lockContent struct {
	Pid       int       `json:"pid"`
	Username  string    `json:"username"`
	Hostname  string    `json:"hostname"`
	Timestamp time.Time `json:"timestamp"`
	Operation string    `json:"operation,omitempty"`
}

func newLockContent(op string) ([]byte, error) {
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	host, err := os.Hostname()
	if err != nil {
		return nil, err
	}
	return json.Marshal(lockContent{Pid: os.Getpid(), Username: u.Username, Hostname: host, Timestamp: time.Now(), Operation: op})
}

// otherLocks describes each lock file in dir but mine, as the engine
// does: "created by USER@HOST (pid N) at TIME", and what holds it when the
// holder is one of ours.
func otherLocks(dir, mine string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var held []string
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if e.IsDir() || path == mine {
			continue
		}
		var l lockContent
		data, err := os.ReadFile(path)
		if err != nil || json.Unmarshal(data, &l) != nil {
			held = append(held, path+": unreadable")
			continue
		}
		what := ""
		if l.Operation != "" {
			what = " for " + l.Operation
		}
		held = append(held, fmt.Sprintf("%s: created by %s@%s (pid %d) at %s%s", path, l.Username, l.Hostname, l.Pid, l.Timestamp.Format(time.RFC3339), what))
	}
	sort.Strings(held)
	return held
}

func lockedByOthers(op, stack string, held []string) error {
	return LockedError(op, stack, strings.Join(held, "\n"))
}

// stackLockDir is the engine's: project-scoped stacks (the backend's
// meta.yaml at version 1 or more, every backend made since Pulumi 3.61)
// under organization/<project>/<stack>, a legacy backend's (version 0, or
// no meta.yaml beside stacks/<stack>.json) under <stack>.
func stackLockDir(root, project, stack string) string {
	locks := filepath.Join(root, ".pulumi", "locks")
	var meta struct {
		Version int `yaml:"version"`
	}
	if data, err := os.ReadFile(filepath.Join(root, ".pulumi", "meta.yaml")); err == nil && yaml.Unmarshal(data, &meta) == nil && meta.Version >= 1 {
		return filepath.Join(locks, "organization", project, stack)
	}
	_, noMeta := os.Stat(filepath.Join(root, ".pulumi", "meta.yaml"))
	_, legacyStack := os.Stat(filepath.Join(root, ".pulumi", "stacks", stack+".json"))
	if errors.Is(noMeta, os.ErrNotExist) && legacyStack != nil {
		// No meta.yaml and no legacy stack file: a backend the engine
		// would make project-scoped.
		return filepath.Join(locks, "organization", project, stack)
	}
	return filepath.Join(locks, stack)
}

// fileBackendRoot is the folder of a file:// backend URL (file://~ is the
// home, as the CLI reads it), and false for any other backend.
func fileBackendRoot(backend string) (string, bool) {
	u, err := url.Parse(backend)
	if err != nil || u.Scheme != "file" {
		return "", false
	}
	path := u.Host + u.Path // file://~/state has the ~ as its host
	if path == "~" || strings.HasPrefix(path, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", false
		}
		path = filepath.Join(home, strings.TrimPrefix(path, "~"))
	}
	return filepath.Clean(path), true
}

// redactURL drops a backend URL's credentials and query for a message.
func redactURL(backend string) string {
	u, err := url.Parse(backend)
	if err != nil {
		return "(unparsable backend URL)"
	}
	u.User, u.RawQuery = nil, ""
	return u.String()
}
