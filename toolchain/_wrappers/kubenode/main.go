// Command kubenode is one multi-call binary for the lab's real node: the
// kubelet, kube-proxy (Service routing) and CoreDNS (cluster DNS) share
// client-go and most of their other dependencies with each other and with
// the control plane, so one link keeps the cold build short and the cache to
// one file.
//
// Usage: kubenode kubelet|kube-proxy|coredns [flags]
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"

	// The CoreDNS plugins a cluster's DNS needs, and only those: the full
	// plugin set pulls in three cloud SDKs.
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

// corednsDirectives are the plugins above in the order of CoreDNS's
// plugin.cfg, which is the order a query passes through them.
var corednsDirectives = []string{"bind", "ready", "health", "errors", "log", "loadbalance", "cache", "kubernetes"}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: kubenode kubelet|kube-proxy|coredns [flags]")
		os.Exit(2)
	}
	role, args := os.Args[1], os.Args[2:]
	switch role {
	case "kubelet":
		cmd := kubelet.NewKubeletCommand(context.Background())
		cmd.SetArgs(args)
		os.Exit(cli.Run(cmd))
	case "kube-proxy":
		cmd := proxy.NewProxyCommand()
		cmd.SetArgs(args)
		os.Exit(cli.Run(cmd))
	case "coredns":
		dnsserver.Directives = corednsDirectives
		// coremain parses os.Args with the flag package.
		os.Args = append([]string{"coredns"}, args...)
		coremain.Run()
	default:
		fmt.Fprintf(os.Stderr, "kubenode: unknown role %q\n", role)
		os.Exit(2)
	}
}
