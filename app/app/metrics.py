"""Prometheus metrics of the HTTP server."""
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, CONTENT_TYPE_LATEST

registry = CollectorRegistry()
requests = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"], registry=registry)
latency = Histogram("http_request_duration_seconds", "HTTP request latency", ["method", "route"], registry=registry)
ready = Counter("readiness_failures_total", "readiness checks that failed", registry=registry)


def render():
    return generate_latest(registry), CONTENT_TYPE_LATEST
