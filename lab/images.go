package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ctr runs containerd's own client against the lab's containerd, in the
// namespace the CRI plugin (and so the kubelet) uses.
func (l *Lab) ctr(ctx context.Context, args ...string) (string, error) {
	return run(ctx, "ctr", append([]string{"--address", l.containerdSocket(), "--namespace", "k8s.io"}, args...)...)
}

// imageLabel on a containerd image records the Docker image it came from,
// so an image is imported again only when Docker's changed.
const imageLabel = "fastapi-infra.lab/docker-id"

// LoadImages makes local Docker images runnable on the real node, which
// has no registry to pull from: each is saved from Docker and imported
// into the node's containerd, unless it is there already.
func (l *Lab) LoadImages(ctx context.Context, refs ...string) error {
	for _, ref := range refs {
		if err := l.loadImage(ctx, ref); err != nil {
			return err
		}
	}
	return nil
}

func (l *Lab) loadImage(ctx context.Context, ref string) error {
	id, err := run(ctx, "docker", "image", "inspect", "--format", "{{.Id}}", ref)
	if err != nil {
		return fmt.Errorf("lab: the image %s is not in Docker: %w", ref, err)
	}
	id = strings.TrimSpace(id)
	name := normalized(ref)
	have, err := l.ctr(ctx, "images", "ls", "name=="+name)
	if err != nil {
		return err
	}
	if strings.Contains(have, imageLabel+"="+id) {
		return nil
	}
	// The same Docker image under another name (a retag for a release):
	// a new name for what containerd has, instead of a 25 s import.
	same, err := l.ctr(ctx, "images", "ls", "-q", fmt.Sprintf("labels.%q==%s", imageLabel, id))
	if err != nil {
		return err
	}
	if existing := strings.Fields(same); len(existing) > 0 {
		if _, err := l.ctr(ctx, "images", "tag", "--force", existing[0], name); err != nil {
			return err
		}
		_, err = l.ctr(ctx, "images", "label", name, imageLabel+"="+id)
		return err
	}
	save := exec.CommandContext(ctx, "docker", "save", ref)
	imp := exec.CommandContext(ctx, "ctr", "--address", l.containerdSocket(), "--namespace", "k8s.io",
		"images", "import", "--snapshotter", "overlayfs", "-")
	pipe, err := save.StdoutPipe()
	if err != nil {
		return err
	}
	imp.Stdin = pipe
	var saveErr, impOut strings.Builder
	save.Stderr = &saveErr
	imp.Stdout, imp.Stderr = &impOut, &impOut
	if err := save.Start(); err != nil {
		return err
	}
	impErr := imp.Run()
	if err := save.Wait(); err != nil {
		return fmt.Errorf("docker save %s: %w\n%s", ref, err, saveErr.String())
	}
	if impErr != nil {
		return fmt.Errorf("importing %s into the node's containerd: %w\n%s", ref, impErr, impOut.String())
	}
	_, err = l.ctr(ctx, "images", "label", name, imageLabel+"="+id)
	return err
}

// normalized is a reference as containerd names it: Docker Hub's implied
// registry and library/ made explicit.
func normalized(ref string) string {
	first, _, found := strings.Cut(ref, "/")
	if !found || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		if !found {
			ref = "library/" + ref
		}
		ref = "docker.io/" + ref
	}
	if !strings.Contains(ref[strings.LastIndex(ref, "/")+1:], ":") && !strings.Contains(ref, "@") {
		ref += ":latest"
	}
	return ref
}

// buildPause makes the pod sandbox image from lab/pause: a static binary in
// an image of its own, tagged by the binary's hash.
func (l *Lab) buildPause(ctx context.Context) (string, error) {
	dir := l.nodeDir("pause-image")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(dir, "pause"), "./lab/pause")
	build.Dir = l.Repo
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building lab/pause: %w\n%s", err, out)
	}
	f, err := os.Open(filepath.Join(dir, "pause"))
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	ref := "lab.local/pause:" + hex.EncodeToString(h.Sum(nil))[:12]
	if _, err := run(ctx, "docker", "image", "inspect", ref); err == nil {
		return ref, nil
	}
	dockerfile := "FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT [\"/pause\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return "", err
	}
	if _, err := run(ctx, "docker", "build", "-q", "-t", ref, dir); err != nil {
		return "", err
	}
	return ref, nil
}

// Images makes the local images of images/build.sh's targets (dev when
// none; built once per content) and returns them by the NAME of each
// NAME=IMAGE line it prints (APP, POSTGRES, NGINX, TRAEFIK, ...). Its
// progress goes to stderr.
func Images(ctx context.Context, repo string, targets ...string) (map[string]string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(repo, "images", "build.sh"), targets...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("images/build.sh %s: %w", strings.Join(targets, " "), err)
	}
	images := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			images[k] = v
		}
	}
	return images, nil
}
