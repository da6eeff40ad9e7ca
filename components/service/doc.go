// Package service is the neutral description of one containerized FastAPI
// service with its PostgreSQL database: what to run, how to check it, how to
// migrate it and how to reach it. It knows nothing about Docker or
// Kubernetes; components/singleserver and components/kubernetes each convert
// one Spec into their own resources, as score-compose and score-k8s do.
package service
