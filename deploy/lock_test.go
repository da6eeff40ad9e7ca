package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A file backend made by today's CLI: meta.yaml at version 1.
func projectBackend(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, ".pulumi"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, ".pulumi", "meta.yaml"), []byte("version: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestLockIsTheEnginesLockFile(t *testing.T) {
	root := projectBackend(t)
	unlock, err := LockFileBackend(root, "fastapi-infra", "dev", "restore")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, ".pulumi", "locks", "organization", "fastapi-infra", "dev")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != 1 {
		t.Fatalf("lock files in %s: %v, want the one the engine looks for", dir, files)
	}
	data, _ := os.ReadFile(files[0])
	for _, field := range []string{`"pid":`, `"username":`, `"hostname":`, `"timestamp":`, `"operation":"restore"`} {
		if !strings.Contains(string(data), field) {
			t.Errorf("lock file %s lacks %s, which `pulumi up` prints of its holder", data, field)
		}
	}

	_, err = LockFileBackend(root, "fastapi-infra", "dev", "backup")
	if err == nil || !strings.Contains(err.Error(), "backup dev: the stack is locked: held by ") ||
		!strings.Contains(err.Error(), "for restore") || !strings.Contains(err.Error(), "pulumi cancel --stack dev") {
		t.Errorf("a second holder: %v, want refused naming the restore that holds it and how to clear it", err)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*.json")); len(files) != 1 {
		t.Errorf("a refused holder left its lock file: %v", files)
	}
	if _, err := LockFileBackend(root, "fastapi-infra", "staging", "backup"); err != nil {
		t.Errorf("another stack's lock: %v, want free", err)
	}

	unlock()
	if files, _ := filepath.Glob(filepath.Join(dir, "*.json")); len(files) != 0 {
		t.Errorf("unlock left %v", files)
	}
	unlock2, err := LockFileBackend(root, "fastapi-infra", "dev", "backup")
	if err != nil {
		t.Errorf("after unlock: %v", err)
	} else {
		unlock2()
	}
}

// An update's lock, as the engine writes it: a backup or restore beside
// it is refused, naming the update's holder.
func TestLockRefusedWhileAnUpdateHoldsTheStack(t *testing.T) {
	root := projectBackend(t)
	dir := filepath.Join(root, ".pulumi", "locks", "organization", "fastapi-infra", "prod")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	engine := `{"pid":4242,"username":"ci","hostname":"runner-7","timestamp":"2026-12-07T10:15:00.123Z"}`
	if err := os.WriteFile(filepath.Join(dir, "0d9c8e0b-1111-2222-3333-444455556666.json"), []byte(engine), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LockFileBackend(root, "fastapi-infra", "prod", "restore")
	if err == nil || !strings.Contains(err.Error(), "held by ci@runner-7 (pid 4242) at 2026-12-07T10:15:00Z") {
		t.Errorf("restore beside an update: %v, want refused naming ci@runner-7 (pid 4242)", err)
	}
}

func TestStackLockDirFollowsTheBackendsLayout(t *testing.T) {
	project := projectBackend(t)
	if got, want := stackLockDir(project, "p", "s"), filepath.Join(project, ".pulumi", "locks", "organization", "p", "s"); got != want {
		t.Errorf("project-scoped backend: %s, want %s", got, want)
	}
	legacy := t.TempDir()
	if err := os.MkdirAll(filepath.Join(legacy, ".pulumi", "stacks"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(legacy, ".pulumi", "stacks", "s.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, want := stackLockDir(legacy, "p", "s"), filepath.Join(legacy, ".pulumi", "locks", "s"); got != want {
		t.Errorf("legacy backend: %s, want %s", got, want)
	}
}

func TestFileBackendRoot(t *testing.T) {
	home, _ := os.UserHomeDir()
	for url, want := range map[string]string{
		"file:///root/.fastapi-infra/state":    "/root/.fastapi-infra/state",
		"file://~/state":                       filepath.Join(home, "state"),
		"file://~":                             home,
		"file:///srv/state?no_tmp_dir=true":    "/srv/state",
		"s3://bucket/state":                    "",
		"https://api.pulumi.com":               "",
		"azblob://container?storage_account=x": "",
	} {
		got, ok := fileBackendRoot(url)
		if got != want || ok != (want != "") {
			t.Errorf("fileBackendRoot(%q) = %q, %v; want %q", url, got, ok, want)
		}
	}
	if got := redactURL("s3://key:secret@bucket/state?region=x"); strings.Contains(got, "secret") {
		t.Errorf("redactURL kept the secret: %s", got)
	}
}
