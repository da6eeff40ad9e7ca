// Command lab starts, stops and reports on the local Kubernetes cluster the
// end-to-end tests run on (package lab):
//
//	go run ./cmd/lab start [-kwok=false] [-real-node=false]
//	go run ./cmd/lab stop
//	go run ./cmd/lab status
//
// start prints KUBECONFIG=<path>; the processes keep running after it
// exits, until stop. State and logs: .lab/ in the clone.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/fastapi-infra/fastapi-infra/lab"
)

func main() {
	kwok := flag.Bool("kwok", true, "start: register kwok's fake nodes")
	real := flag.Bool("real-node", true, "start: join the real node (containerd, kubelet, kube-proxy, CoreDNS, Traefik)")
	state := flag.String("state", "", "state folder (default: .lab in the clone)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: lab [flags] start|stop|status")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	repo, err := filepath.Abs(".")
	if err != nil {
		fail(err)
	}
	l, err := lab.New(lab.Config{Repo: repo, State: *state, Kwok: *kwok, RealNode: *real, Progress: os.Stderr})
	if err != nil {
		fail(err)
	}
	switch flag.Arg(0) {
	case "start":
		if err := l.Start(ctx); err != nil {
			fail(err)
		}
		fmt.Printf("KUBECONFIG=%s\n", l.Kubeconfig)
	case "stop":
		if err := l.Stop(context.Background()); err != nil {
			fail(err)
		}
	case "status":
		st := l.Status()
		for _, name := range lab.Processes {
			if pid, ok := st[name]; ok {
				fmt.Printf("%s: running (%d)\n", name, pid)
			} else {
				fmt.Printf("%s: stopped\n", name)
			}
		}
	default:
		flag.Usage()
		os.Exit(2)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "lab:", err)
	os.Exit(1)
}
