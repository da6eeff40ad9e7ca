// Package kubernetes converts a service.Spec into the seed's "Orchestrated
// (Kubernetes)" architecture with pulumi-kubernetes: one worker per pod,
// scaling by replicas, load balancing by a Service behind an Ingress with
// TLS, a migration Job that gates every rollout, and the guard rails a
// production namespace needs (securityContext, PDB, HPA, NetworkPolicy).
package kubernetes
