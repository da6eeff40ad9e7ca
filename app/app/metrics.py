"""Prometheus metrics of the HTTP server.

With several uvicorn workers in one container, each worker is its own
process: set PROMETHEUS_MULTIPROC_DIR (the single server does, on a tmpfs)
and /metrics adds up every worker's values instead of showing whichever
worker answered the scrape.
"""
import os
import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if MULTIPROC_DIR:
    os.makedirs(MULTIPROC_DIR, exist_ok=True)
    registry = None  # the files in MULTIPROC_DIR are the registry
else:
    registry = CollectorRegistry()

requests = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"], registry=registry)
latency = Histogram("http_request_duration_seconds", "HTTP request latency", ["method", "route"], registry=registry)
ready = Counter("readiness_failures_total", "readiness checks that failed", registry=registry)
database_up = Gauge("database_up", "1 when the last readiness check reached the database",
                    registry=registry, multiprocess_mode="liveall")
# The newest start of any worker: it changes whenever a process restarts.
started = Gauge("app_start_time_seconds", "when the newest app process started",
                registry=registry, multiprocess_mode="max")


def mark_started():
    started.set(time.time())


def render():
    if MULTIPROC_DIR:
        from prometheus_client import multiprocess
        scrape = CollectorRegistry()
        multiprocess.MultiProcessCollector(scrape)
        return generate_latest(scrape), CONTENT_TYPE_LATEST
    return generate_latest(registry), CONTENT_TYPE_LATEST
