// Package lab runs a local Kubernetes cluster for the end-to-end tests,
// built from the Go module proxy and Debian's packages by the toolchain
// package: a control plane on 127.0.0.1 (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler), optionally kwok's fake nodes for
// fast cases, and a real node (containerd, the kubelet, kube-proxy, CoreDNS
// and a Traefik ingress controller) that runs the project's images in real
// pods. Certificates come from crypto/x509, configuration files from
// templates, and every process runs under exec.Cmd with its log kept in the
// state folder. TestMain and cmd/lab both drive it.
package lab
