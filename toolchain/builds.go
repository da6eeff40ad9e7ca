package toolchain

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/mod/modfile"
)

// Tools is every tool the project builds, in the order `all` builds them.
func Tools() []Tool {
	k8sStaging := strings.Replace(KubernetesVersion, "v1.", "v0.", 1)
	// The multi-call binaries are keyed by their main.go too: a new role
	// or plugin there is a new build.
	controlplane := KubernetesVersion + "-" + sourceHash("controlplane")
	kubenode := KubernetesVersion + "-coredns-" + CoreDNSVersion + "-" + sourceHash("kubenode")
	return []Tool{
		{
			Name: "pulumi", Key: "PULUMI", Version: PulumiVersion,
			About: "the Pulumi CLI every stack runs with", Cost: "about 7 CPU-minutes",
			dir: "pulumi-" + PulumiVersion, bin: "bin/pulumi",
			build: func(b *build) error {
				// pkg/v3's own go.mod replaces clipboard; replaces of a
				// dependency are ignored, so the wrapper repeats it.
				b.write("go.mod", "module fastapi-infra/toolchain/pulumi\n\ngo 1.26\n\n"+
					"replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e\n")
				return b.run(
					b.goCmd("get", "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@"+PulumiVersion, "github.com/pulumi/pulumi/sdk/v3@"+PulumiVersion),
					b.goBuild("pulumi", "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version="+PulumiVersion,
						"github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"),
				)
			},
		},
		{
			Name: "kubernetes-plugin", Key: "PULUMI_RESOURCE_KUBERNETES", Version: PulumiKubernetesVersion,
			About: "the Pulumi kubernetes provider plugin (commit " + PulumiKubernetesProviderModule + ")",
			Cost:  "about 13 CPU-minutes and 4.6 GB of memory",
			dir:   "pulumi-resource-kubernetes-" + PulumiKubernetesVersion, bin: "pulumi-resource-kubernetes",
			build: func(b *build) error {
				const mod = "github.com/pulumi/pulumi-kubernetes/provider/v4"
				const sdk = "github.com/pulumi/pulumi-kubernetes/sdk/v4"
				// Upstream replaces sdk/v4 with ../sdk, which a module download lacks.
				b.write("go.mod", fmt.Sprintf("module fastapi-infra/toolchain/pulumi-resource-kubernetes\n\ngo 1.26\n\n"+
					"require (\n\t%[1]s %[2]s\n\t%[3]s v%[4]s\n)\n\nreplace %[3]s => %[3]s v%[4]s\n",
					mod, PulumiKubernetesProviderModule, sdk, PulumiKubernetesVersion))
				src, err := b.download(mod + "@" + PulumiKubernetesProviderModule)
				if err != nil {
					return err
				}
				// The module zip lacks the embedded schema files: copy the
				// command and let its own go:generate derive them from the
				// committed schema.json.
				if err := b.copyDir(filepath.Join(src.Dir, "cmd", "pulumi-resource-kubernetes")); err != nil {
					return err
				}
				gen := b.goCmd("run", "./generate.go")
				gen.Env = append(gen.Env, "VERSION="+PulumiKubernetesVersion)
				return b.run(b.goCmd("mod", "tidy"), gen,
					b.goBuild("pulumi-resource-kubernetes", "-X "+mod+"/pkg/version.Version="+PulumiKubernetesVersion, "."))
			},
		},
		{
			Name: "controlplane", Key: "CONTROLPLANE", Version: controlplane,
			About: "etcd, kube-apiserver, kube-controller-manager and kube-scheduler in one binary (toolchain/_wrappers/controlplane)",
			Cost:  "about 5 CPU-minutes",
			dir:   "controlplane-" + controlplane, bin: "controlplane",
			build: func(b *build) error { return b.kubernetesWrapper("controlplane", k8sStaging) },
		},
		{
			Name: "kubenode", Key: "KUBENODE", Version: kubenode,
			About: "the lab's real node: kubelet, kube-proxy and CoreDNS " + CoreDNSVersion + " in one binary (toolchain/_wrappers/kubenode)",
			Cost:  "about 4 CPU-minutes after the control plane",
			dir:   "kubenode-" + kubenode, bin: "kubenode",
			build: func(b *build) error {
				return b.kubernetesWrapper("kubenode", k8sStaging, "github.com/coredns/coredns@"+CoreDNSVersion)
			},
		},
		goInstall("kwok", "KWOK", "sigs.k8s.io/kwok/cmd/kwok", KwokVersion, "fake nodes and pods for the lab's fast cases"),
		goInstall("kube-score", "KUBE_SCORE", "github.com/zegl/kube-score/cmd/kube-score", KubeScoreVersion, "static checks of the rendered manifests"),
		goInstall("actionlint", "ACTIONLINT", "github.com/rhysd/actionlint/cmd/actionlint", ActionlintVersion, "the GitHub workflow linter"),
		{
			Name: "traefik", Key: "TRAEFIK", Version: TraefikVersion,
			About: "the single server's Traefik and the lab's ingress controller", Cost: "about 11 CPU-minutes",
			dir: "traefik-" + TraefikVersion, bin: "traefik",
			build: func(b *build) error {
				const mod = "github.com/traefik/traefik/v3"
				b.write("go.mod", "module fastapi-infra/toolchain/traefik\n\ngo 1.26\n")
				src, err := b.download(mod + "@" + TraefikVersion)
				if err != nil {
					return err
				}
				// Traefik replaces dependencies with its forks; a wrapper
				// module must repeat them (replaces of a dependency are ignored).
				upstream, err := readModFile(src.GoMod)
				if err != nil {
					return err
				}
				if err := b.editModFile(func(f *modfile.File) error {
					if err := f.AddRequire(mod, TraefikVersion); err != nil {
						return err
					}
					for _, r := range upstream.Replace {
						if err := f.AddReplace(r.Old.Path, r.Old.Version, r.New.Path, r.New.Version); err != nil {
							return err
						}
					}
					return nil
				}); err != nil {
					return err
				}
				b.write("tools.go", "//go:build tools\n\npackage tools\n\nimport _ \""+mod+"/cmd/traefik\"\n")
				return b.run(b.goCmd("mod", "tidy"),
					b.goBuild("traefik", "-X "+mod+"/pkg/version.Version="+TraefikVersion, mod+"/cmd/traefik"))
			},
		},
		goInstall("versitygw", "VERSITYGW", "github.com/versity/versitygw/cmd/versitygw", VersityGWVersion, "the lab's S3-compatible object store, the backups' off-host repository"),
		goInstall("pebble", "PEBBLE", "github.com/letsencrypt/pebble/v2/cmd/pebble", PebbleVersion, "Let's Encrypt's test ACME server"),
		{
			Name: "victoria-logs", Key: "VICTORIA_LOGS", Version: VictoriaLogsVersion,
			About: "the single server's log store", Cost: "about a CPU-minute",
			dir: "victoria-logs-" + VictoriaLogsVersion, bin: "victoria-logs",
			build: func(b *build) error {
				// Without cgo: its pure-Go zstd, and a static binary that
				// runs in any image.
				cmd := b.goCmd("install", "-trimpath", "-ldflags", "-s -w", "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@"+VictoriaLogsVersion)
				cmd.Env = append(cmd.Env, "GOBIN="+b.work, "CGO_ENABLED=0")
				return b.run(cmd)
			},
		},
	}
}

// wrappers holds the main packages of the multi-call binaries. The folder
// starts with "_" so that the project's own `go build ./...` skips them (they
// import Kubernetes); each is built in a scratch module of its own.
//
//go:embed all:_wrappers
var wrappers embed.FS

// sourceHash is a short hash of a wrapper's main.go, for its cache key.
func sourceHash(name string) string {
	raw, err := wrappers.ReadFile("_wrappers/" + name + "/main.go")
	if err != nil {
		panic(err) // embedded at build time: cannot happen
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])[:8]
}

// goInstall is a tool that `go install` builds as it is.
func goInstall(name, key, pkg, version, about string) Tool {
	return Tool{
		Name: name, Key: key, Version: version, About: about, Cost: "under 2 CPU-minutes",
		dir: name + "-" + version, bin: name,
		build: func(b *build) error {
			cmd := b.goCmd("install", "-trimpath", "-ldflags", "-s -w", pkg+"@"+version)
			cmd.Env = append(cmd.Env, "GOBIN="+b.work)
			return b.run(cmd)
		},
	}
}

// build is one tool's build: a scratch module folder and a log.
type build struct {
	ctx  context.Context
	work string
	log  io.Writer
	tool Tool
	err  error // the first failed write, reported by run
}

func (b *build) write(name, content string) {
	if err := os.WriteFile(filepath.Join(b.work, name), []byte(content), 0o644); err != nil && b.err == nil {
		b.err = err
	}
}

// goCmd is a go command in the scratch module, logging to the build log.
func (b *build) goCmd(args ...string) *exec.Cmd {
	cmd := exec.CommandContext(b.ctx, "go", args...)
	cmd.Dir = b.work
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=mod")
	cmd.Stdout, cmd.Stderr = b.log, b.log
	return cmd
}

func (b *build) goBuild(out, ldflags, pkg string) *exec.Cmd {
	return b.goCmd("build", "-trimpath", "-o", out, "-ldflags", "-s -w "+ldflags, pkg)
}

func (b *build) run(cmds ...*exec.Cmd) error {
	if b.err != nil {
		return b.err
	}
	for _, cmd := range cmds {
		fmt.Fprintf(b.log, "\n$ %s\n", strings.Join(cmd.Args, " "))
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), err)
		}
	}
	return nil
}

// Module is what `go mod download -json` says of a module.
type Module struct {
	Dir, GoMod, Error string
}

func (b *build) download(modVersion string) (Module, error) {
	fmt.Fprintf(b.log, "\n$ go mod download -json %s\n", modVersion)
	return download(b.goCmd("mod", "download", "-json", modVersion), modVersion)
}

// Download fetches MODULE@VERSION into the module cache (once) and says
// where its files are.
func Download(ctx context.Context, modVersion string) (Module, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", modVersion)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	return download(cmd, modVersion)
}

func download(cmd *exec.Cmd, modVersion string) (Module, error) {
	var out bytes.Buffer
	cmd.Stdout = &out
	runErr := cmd.Run()
	var m Module
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		return m, fmt.Errorf("go mod download %s: %v (%v)", modVersion, runErr, err)
	}
	if m.Error != "" || runErr != nil {
		return m, fmt.Errorf("go mod download %s: %s %v", modVersion, m.Error, runErr)
	}
	return m, nil
}

// copyDir copies the files (not folders) of dir into the scratch module.
func (b *build) copyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		b.write(e.Name(), string(raw))
	}
	return b.err
}

// kubernetesWrapper builds _wrappers/<name>/main.go in a module of its own
// against k8s.io/kubernetes at KubernetesVersion. k8s.io/kubernetes points
// its staging modules at ./staging; the wrapper uses their published
// versions instead (sample-cli-plugin is not served and not needed).
func (b *build) kubernetesWrapper(name, staging string, extra ...string) error {
	main, err := wrappers.ReadFile("_wrappers/" + name + "/main.go")
	if err != nil {
		return err
	}
	b.write("main.go", string(main))
	b.write("go.mod", "module fastapi-infra/toolchain/"+name+"\n\ngo 1.26\n")
	if b.err != nil {
		return b.err
	}
	k8s, err := b.download("k8s.io/kubernetes@" + KubernetesVersion)
	if err != nil {
		return err
	}
	upstream, err := readModFile(k8s.GoMod)
	if err != nil {
		return err
	}
	if err := b.editModFile(func(f *modfile.File) error {
		for _, m := range append([]string{"k8s.io/kubernetes@" + KubernetesVersion}, extra...) {
			path, version, _ := strings.Cut(m, "@")
			if err := f.AddRequire(path, version); err != nil {
				return err
			}
		}
		for _, r := range upstream.Replace {
			if p := r.Old.Path; strings.HasPrefix(p, "k8s.io/") && p != "k8s.io/sample-cli-plugin" {
				if err := f.AddReplace(p, "", p, staging); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		return err
	}
	minor := strings.TrimPrefix(KubernetesVersion, "v1.")
	minor = minor[:strings.IndexByte(minor, '.')]
	return b.run(b.goCmd("mod", "tidy"), b.goBuild(name,
		"-X k8s.io/component-base/version.gitVersion="+KubernetesVersion+
			" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor="+minor, "."))
}

// editModFile changes the scratch module's go.mod with the modfile package
// (what `go mod edit` does, without a process per change).
func (b *build) editModFile(edit func(*modfile.File) error) error {
	path := filepath.Join(b.work, "go.mod")
	f, err := readModFile(path)
	if err != nil {
		return err
	}
	if err := edit(f); err != nil {
		return err
	}
	f.Cleanup()
	out, err := f.Format()
	if err != nil {
		return err
	}
	fmt.Fprintf(b.log, "\n# go.mod:\n%s", out)
	return os.WriteFile(path, out, 0o644)
}

func readModFile(path string) (*modfile.File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return modfile.Parse(path, raw, nil)
}
