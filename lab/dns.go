package lab

import (
	"context"
	"fmt"
	"time"
)

const (
	corednsHealthPort = 18081
	corednsReadyPort  = 18181
)

// startCoreDNS runs CoreDNS on the node's address as the lab:coredns user,
// and checks a lookup through the kube-dns ClusterIP: DNS and Service
// routing in one.
func (l *Lab) startCoreDNS(ctx context.Context) error {
	corefile := l.nodeDir("Corefile")
	if err := l.render("Corefile.tmpl", corefile, 0o644, map[string]any{
		"Port": corednsPort, "NodeIP": l.NodeIP.String(), "Kubeconfig": l.kubeconfigFor("coredns"),
		"HealthPort": corednsHealthPort, "ReadyPort": corednsReadyPort,
	}); err != nil {
		return err
	}
	if err := l.start(process{name: "coredns", argv: []string{l.tools["kubenode"], "coredns", "-conf", corefile}}); err != nil {
		return err
	}
	if err := l.waitFor(ctx, "CoreDNS ready", "coredns", 60*time.Second, func() error {
		return httpOK(nil, fmt.Sprintf("http://127.0.0.1:%d/ready", corednsReadyPort))
	}); err != nil {
		return err
	}
	return l.waitFor(ctx, "kubernetes.default resolving through the cluster DNS Service", "coredns", 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		addrs, err := dnsResolver().LookupHost(ctx, "kubernetes.default.svc.cluster.local")
		if err != nil {
			return err
		}
		if len(addrs) != 1 || addrs[0] != apiServiceIP {
			return fmt.Errorf("kubernetes.default.svc.cluster.local is %v, want %s", addrs, apiServiceIP)
		}
		return nil
	})
}
