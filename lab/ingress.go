package lab

import (
	"context"
	"fmt"
	"os"
	"time"
)

const ingressPingPort = 18090

// ingressMiddlewares is the controller's dynamic configuration: a retry of
// requests that could not reach a pod (a pod killed or just gone), which
// every entrypoint applies. It is the controller's policy, as ingress-nginx
// retries the next upstream by default, not something each stack sets.
// Traefik picks a server afresh for each attempt (it may pick the dead one
// again, where nginx skips a tried upstream), so it needs more attempts:
// with two pods each attempt finds the dead one with odds of about 1 in 2
// until the endpoint's removal reaches the controller (the kubelet's
// notice, then the provider's throttle), so a request fails with odds of
// 2^-attempts. With 3 attempts from 50 ms, 5-7 of ~500 requests failed
// around a SIGKILL; with 6 (1.6%), 1-3 of the ~60-100 sent before the
// removal, as six picks of the dead pod would give (one sent 14 ms after the
// process was gone, in CI). With 12 (0.02%) the retries span about 2 s,
// past the removal.
const ingressMiddlewares = `http:
  middlewares:
    lab-retry:
      retry:
        attempts: 12
        initialInterval: 100ms
`

// startIngress runs Traefik as the cluster's ingress controller for the
// IngressClass "traefik": it watches Ingresses as the lab:traefik user,
// terminates TLS with each Ingress's Secret, routes to the ready endpoints
// of its Services on the node's pod network, and listens on 127.0.0.1 only.
func (l *Lab) startIngress(ctx context.Context) error {
	dynamic := l.nodeDir("traefik-dynamic.yaml")
	if err := os.WriteFile(dynamic, []byte(ingressMiddlewares), 0o644); err != nil {
		return err
	}
	if err := l.start(process{name: "traefik", env: []string{"KUBECONFIG=" + l.kubeconfigFor("traefik")}, argv: []string{l.tools["traefik"],
		fmt.Sprintf("--entryPoints.web.address=%s", l.IngressHTTP),
		fmt.Sprintf("--entryPoints.websecure.address=%s", l.IngressHTTPS),
		fmt.Sprintf("--entryPoints.ping.address=127.0.0.1:%d", ingressPingPort),
		"--entryPoints.web.http.redirections.entryPoint.to=websecure",
		"--entryPoints.web.http.redirections.entryPoint.scheme=https",
		"--entryPoints.websecure.http.middlewares=lab-retry@file",
		"--ping=true", "--ping.entryPoint=ping",
		"--providers.file.filename=" + dynamic,
		// No kept-alive connections to pods: a request Traefik writes to a
		// pooled connection that a killed pod reset is not retried (its retry
		// middleware makes the request non-replayable for Go's transport),
		// where ingress-nginx retries an idempotent request on the next
		// upstream. With a fresh connection a dead pod refuses it, which the
		// retry covers. Measured, 6 SIGKILLs under load with two busy loops:
		// 3 of ~5,800 requests failed with keep-alive, 0 of ~5,700 without.
		"--serversTransport.maxIdleConnsPerHost=-1",
		// A new set of endpoints takes effect 0.5 s after the API's
		// event, not the default 2 s: a dead pod leaves the rotation sooner.
		"--providers.providersThrottleDuration=500ms",
		"--providers.kubernetesIngress=true",
		"--providers.kubernetesIngress.ingressClass=" + IngressClass,
		// The address Pulumi's Ingress await waits for.
		"--providers.kubernetesIngress.ingressEndpoint.ip=127.0.0.1",
		"--log.level=INFO", "--log.noColor=true",
		"--accessLog=true", "--accessLog.format=json", "--accessLog.filePath=" + l.LogFile("traefik-access"),
	}}); err != nil {
		return err
	}
	return l.waitFor(ctx, "the ingress controller answering", "traefik", 60*time.Second, func() error {
		return httpOK(nil, fmt.Sprintf("http://127.0.0.1:%d/ping", ingressPingPort))
	})
}
