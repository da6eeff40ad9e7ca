// Package monitoring is the one definition of what to watch in a FastAPI
// service, rendered for both architectures: Prometheus alerting rules (a
// rule file for a Prometheus of one's own, the groups of a PrometheusRule
// for the Prometheus Operator), with thresholds from stack config.
package monitoring
