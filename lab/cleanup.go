package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/fastapi-infra/fastapi-infra/toolchain"
)

// stopNode ends the real node's pods and processes and removes what the
// kubelet, containerd and the CNI plugins made outside the lab's folder:
// mounts, network namespaces, the bridge, firewall chains, cgroups, and
// the kubelet's fixed paths. What Docker uses (its own containerd, its
// shims' sockets in /run/containerd/s) is left alone.
func (l *Lab) stopNode(ctx context.Context) error {
	_, kubelet := l.pid("kubelet")
	_, api := l.pid("kube-apiserver")
	if kubelet && api {
		l.drainNode(ctx)
	}
	for _, name := range []string{"traefik", "coredns", "kube-proxy", "kubelet"} {
		if l.stop(name, 10*time.Second) {
			l.logf("stopped %s", name)
		}
	}
	var errs []error
	if kubenode, err := l.toolPath("kubenode"); err == nil {
		// kube-proxy's own cleanup of its iptables chains.
		if _, err := run(ctx, kubenode, "kube-proxy", "--cleanup"); err != nil {
			errs = append(errs, err)
		}
	}
	if _, running := l.pid("containerd"); running {
		l.killContainers(ctx)
		l.stop("containerd", 10*time.Second)
		l.logf("stopped containerd")
	}
	l.killShims()
	errs = append(errs, l.unmountUnder(l.nodeDir()), removeNetns(), l.removeNetwork(ctx), removeCgroups("kubepods"), l.removeKubeletPaths())
	return errors.Join(errs...)
}

// drainNode stops the node taking pods and deletes the ones it has, so
// that the kubelet stops their containers and tears their networks down.
func (l *Lab) drainNode(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	_, _ = l.kubectl(ctx, "", "cordon", RealNodeName)
	_, _ = l.kubectl(ctx, "", "delete", "pods", "--all-namespaces", "--field-selector", "spec.nodeName="+RealNodeName,
		"--grace-period=1", "--wait=false")
	for ctx.Err() == nil {
		out, err := l.ctr(ctx, "tasks", "ls", "-q")
		if err != nil || strings.TrimSpace(out) == "" {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// toolPath is a tool's binary, also for a lab that another process
// started (Stop builds nothing).
func (l *Lab) toolPath(name string) (string, error) {
	if p := l.tools[name]; p != "" {
		return p, nil
	}
	t, err := toolchain.Lookup(name)
	if err != nil {
		return "", err
	}
	cache, err := toolchain.CacheDir()
	if err != nil {
		return "", err
	}
	if p := t.Path(cache); executable(p) {
		return p, nil
	}
	return "", fmt.Errorf("%s is not built", name)
}

func executable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode()&0o111 != 0
}

// killContainers ends every task left in the node's containerd namespace.
func (l *Lab) killContainers(ctx context.Context) {
	out, _ := l.ctr(ctx, "tasks", "ls", "-q")
	for _, id := range strings.Fields(out) {
		_, _ = l.ctr(ctx, "tasks", "kill", "--signal", "SIGKILL", id)
		_, _ = l.ctr(ctx, "tasks", "delete", "--force", id)
	}
	out, _ = l.ctr(ctx, "containers", "ls", "-q")
	for _, id := range strings.Fields(out) {
		_, _ = l.ctr(ctx, "containers", "delete", id)
	}
}

// killShims ends runc shims that served the lab's containerd (their
// command line names its socket) and outlived it.
func (l *Lab) killShims() {
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), "containerd-shim") || !strings.Contains(string(cmdline), l.containerdSocket()) {
			continue
		}
		var pid int
		if _, err := fmt.Sscan(p.Name(), &pid); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// unmountUnder detaches every mount point below dir, deepest first: the
// kubelet's bind mount of its root, pod volumes, container root file systems.
func (l *Lab) unmountUnder(dir string) error {
	points, err := mountPoints(func(p string) bool { return p == dir || strings.HasPrefix(p, dir+"/") })
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// mountPoints lists this mount namespace's mount points that match, the
// longest paths first.
func mountPoints(match func(string) bool) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		// mountinfo escapes spaces and the like as octal (\040).
		p := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(fields[4])
		if match(p) {
			points = append(points, p)
		}
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(points), sc.Err()
}

// removeNetns removes the pod network namespaces the CRI plugin made
// (named cni-*; Docker keeps its own under /var/run/docker/netns).
func removeNetns() error {
	entries, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var errs []error
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "cni-") {
			continue
		}
		p := filepath.Join("/run/netns", e.Name())
		_ = syscall.Unmount(p, syscall.MNT_DETACH)
		if err := os.Remove(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeNetwork deletes the pod bridge, the firewall plugin's chains, and
// the KUBE-FIREWALL chain that kube-proxy makes and leaves behind (empty
// here, as route_localnet stays off).
func (l *Lab) removeNetwork(ctx context.Context) error {
	_, _ = run(ctx, "ip", "link", "delete", cniBridge)
	removeChain(ctx, "CNI-FORWARD", "FORWARD")
	removeChain(ctx, "CNI-ADMIN")
	if rules, _ := iptablesRules(ctx, "KUBE-FIREWALL"); strings.TrimSpace(rules) == "-N KUBE-FIREWALL" {
		removeChain(ctx, "KUBE-FIREWALL", "INPUT", "OUTPUT")
	}
	// The CNI plugins' result cache for the lab's network.
	results, _ := filepath.Glob("/var/lib/cni/results/lab-*")
	for _, r := range results {
		_ = os.Remove(r)
	}
	return nil
}

// removeChain deletes the rules of the filter table's chains from that
// jump to chain, then chain itself.
func removeChain(ctx context.Context, chain string, from ...string) {
	for _, f := range from {
		rules, _ := iptablesRules(ctx, f)
		for _, rule := range strings.Split(rules, "\n") {
			if strings.Contains(rule, "-j "+chain) {
				// The comment is quoted in -S output; Fields splits it.
				args := unquoteComment(strings.Fields(strings.TrimPrefix(rule, "-A ")))
				_, _ = run(ctx, "iptables", append([]string{"-w", "-D"}, args...)...)
			}
		}
	}
	_, _ = run(ctx, "iptables", "-w", "-F", chain)
	_, _ = run(ctx, "iptables", "-w", "-X", chain)
}

// iptablesRules lists a filter chain's rules (stdout only: iptables warns
// on stderr when legacy tables exist too).
func iptablesRules(ctx context.Context, chain string) (string, error) {
	out, err := exec.CommandContext(ctx, "iptables", "-w", "-S", chain).Output()
	return string(out), err
}

// unquoteComment joins a --comment "a b c" that strings.Fields split.
func unquoteComment(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == "--comment" && i+1 < len(args) && strings.HasPrefix(args[i+1], `"`) {
			j := i + 1
			parts := []string{}
			for ; j < len(args); j++ {
				parts = append(parts, args[j])
				if strings.HasSuffix(args[j], `"`) {
					break
				}
			}
			out = append(out, "--comment", strings.Trim(strings.Join(parts, " "), `"`))
			i = j
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// removeCgroups removes the kubelet's cgroup tree (name) from every cgroup
// v1 hierarchy, leaves first; only empty cgroups can go, so this follows
// the containers' end.
func removeCgroups(name string) error {
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
	var errs []error
	for _, h := range hierarchies {
		root := filepath.Join(h, name)
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("removing cgroup %s: %w", dirs[i], err))
			}
		}
	}
	return errors.Join(errs...)
}

// removeKubeletPaths removes what the kubelet makes at fixed paths whatever
// its root: the device plugin and pod resources sockets, and the
// /var/log/containers links into the lab's pod logs.
func (l *Lab) removeKubeletPaths() error {
	for _, p := range []string{"/var/lib/kubelet/device-plugins", "/var/lib/kubelet/pod-resources", "/var/lib/kubelet/plugins", "/var/lib/kubelet/plugins_registry"} {
		_ = os.RemoveAll(p)
	}
	_ = os.Remove("/var/lib/kubelet") // only when empty: someone else's kubelet may live there
	links, _ := filepath.Glob("/var/log/containers/*.log")
	for _, link := range links {
		if target, err := os.Readlink(link); err == nil && strings.HasPrefix(target, l.nodeDir()) {
			_ = os.Remove(link)
		}
	}
	_ = os.Remove("/var/log/containers")
	return nil
}
