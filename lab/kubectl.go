package lab

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// kubectl runs kubectl as the lab's admin; stdin, when not empty, is a
// manifest for `apply -f -`.
func (l *Lab) kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", l.Kubeconfig}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// apply renders a manifest template and applies it.
func (l *Lab) apply(ctx context.Context, template string, data any) error {
	manifest, err := renderString(template, data)
	if err != nil {
		return err
	}
	_, err = l.kubectl(ctx, manifest, "apply", "-f", "-")
	return err
}
