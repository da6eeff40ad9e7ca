"""The example service: health, a small resource in PostgreSQL, metrics."""
import asyncio
import logging
import os
import socket
import time
import uuid
from contextlib import asynccontextmanager
from datetime import datetime, timezone

from fastapi import FastAPI, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy import text

from . import db, logs, metrics, settings

log = logging.getLogger("app")


class ItemIn(BaseModel):
    # The column's length (migrations 0001): a longer name is the client's
    # error, 422, not the database's DataError answered 500.
    name: str = Field(max_length=200)
    description: str = ""


@asynccontextmanager
async def lifespan(app):
    cfg = settings.load()
    logs.setup(cfg.log_level)
    app.state.engine = db.make_engine(cfg.database_url)
    app.state.ready_until = 0.0
    app.state.ready_check = None  # the database check in flight
    metrics.mark_started()
    log.info("started")
    yield
    # uvicorn calls this after SIGTERM, once in-flight requests finished.
    app.state.engine.dispose()
    log.info("stopped: connection pool closed")


app = FastAPI(title="fastapi-infra example")
# FastAPI added the lifespan= argument in 0.93; Debian ships 0.92. The
# router attribute works on both.
app.router.lifespan_context = lifespan


@app.middleware("http")
async def observe(request: Request, call_next):
    rid = request.headers.get("x-request-id") or uuid.uuid4().hex
    token = logs.request_id.set(rid)
    start = time.perf_counter()
    status_code = 500
    try:
        response = await call_next(request)
        status_code = response.status_code
        response.headers["X-Request-ID"] = rid
        return response
    finally:
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics.requests.labels(request.method, path, str(status_code)).inc()
        metrics.latency.labels(request.method, path).observe(time.perf_counter() - start)
        log.info("%s %s %d", request.method, request.url.path, status_code)
        logs.request_id.reset(token)


@app.get("/health/live")
async def live():
    """The process is up. A coroutine, so it answers on the event loop: a
    plain def waits for one of the thread pool's 40 threads, and when they
    all wait on the database (a restart of it, a full connection pool) the
    live endpoint timed out with them, and a liveness probe would restart
    replicas that were only waiting."""
    return {"status": "alive"}


# How long a "ready" verdict is reused before the database is asked again.
# A check costs four round trips and Alembic's inspection: asked for every
# probe, balancer check and monitor (a test sent 50 a second) it was the
# busiest thing two 0.5-CPU replicas did, and slow readiness answers are
# what take replicas out of a balancer. A failure is never reused: a
# replica turns ready the moment it is, and stops being so within a second.
READY_REUSE_SECONDS = 1.0


# How long a readiness request waits for the database check in flight
# before it answers "not ready". Longer than the replicas' probe waits (a
# 2 s socket timeout), so that a probe meets a stalled database as it
# did when each request asked the database itself: a probe every 5 s, and
# a 12 s stall does not make three failures in a row. At 1.5 s the
# probes failed faster, every 4.5 s, and a 12 s stall took both replicas
# out from behind Traefik (80 of 754 requests 404).
READY_WAIT_SECONDS = 3.0


@app.get("/health/ready")
async def ready(request: Request, response: Response):
    """The database answers and the schema is at the migrations head.

    One check at a time per worker, in a thread; every readiness request
    that arrives meanwhile awaits that check (for up to READY_WAIT_SECONDS)
    on the event loop instead of taking a thread and a pooled connection
    of its own. While the database restarts, a check waits for a name
    lookup that fails (1 s on the single server, 10 s without its DNS
    options) or a connection: at 50 readiness requests a second, a
    monitor's or a balancer's, each with a thread, the pool's 40 threads
    were soon all waiting, and every plain-def route behind them."""
    state = request.app.state
    if time.monotonic() < state.ready_until:
        return {"status": "ready"}
    if state.ready_check is None or state.ready_check.done():
        state.ready_check = asyncio.ensure_future(run_in_threadpool(check_readiness, state))
    try:
        reason = await asyncio.wait_for(asyncio.shield(state.ready_check), READY_WAIT_SECONDS)
    except asyncio.TimeoutError:
        reason = f"database check still running after {READY_WAIT_SECONDS} s"
    return verdict(reason, response)


def check_readiness(state):
    reason = db.readiness(state.engine)
    metrics.database_up.set(0 if reason and reason.startswith("database unreachable") else 1)
    if not reason:
        state.ready_until = time.monotonic() + READY_REUSE_SECONDS
    return reason


def verdict(reason, response):
    if reason:
        metrics.ready.inc()
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return {"status": "not ready", "reason": reason}
    return {"status": "ready"}


@app.get("/metrics")
def prometheus(request: Request):
    # Metrics are for Prometheus, which scrapes each replica directly on the
    # private network. A request that came through a proxy (nginx, Traefik,
    # a Kubernetes ingress controller) carries the X-Forwarded-For the proxy
    # adds, whatever its client sent: that one finds no such route. The
    # standard Ingress cannot refuse one path; this holds behind any.
    if "x-forwarded-for" in request.headers or "forwarded" in request.headers:
        raise HTTPException(status_code=404, detail="Not Found")
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)


# The /_meta routes are for the lab's tests, and exist only with
# TEST_ROUTES=1 (the stack's app.testRoutes, refused in production): a
# slow request holds a worker thread up to 30 s, and the readiness check
# shares those threads, so 40 of them per worker made the replicas unready.
if os.environ.get("TEST_ROUTES") == "1":

    @app.get("/_meta/request")
    def request_info(request: Request):
        """What the app sees of the request: proof that proxy headers arrive."""
        return {
            "scheme": request.url.scheme,
            "client": request.client.host if request.client else None,
            "host": request.headers.get("host"),
            "request_id": logs.request_id.get(),
        }

    @app.get("/_meta/slow")
    def slow(seconds: float = 1.0):
        """Answers after a pause (at most 30 s): a request that is still in
        flight when its process is told to stop, for the shutdown tests."""
        pause = max(0.0, min(seconds, 30.0))
        time.sleep(pause)
        return {"slept": pause, "server": socket.gethostname()}

    @app.get("/_meta/status/{code}")
    def answer_with(code: int):
        """An answer with the given status (200-599): an endpoint that
        fails, for the proxies' tests."""
        return Response(status_code=min(max(code, 200), 599))


def _row(r):
    return {"id": r.id, "name": r.name, "description": r.description, "created_at": r.created_at.isoformat()}


@app.post("/items", status_code=status.HTTP_201_CREATED)
def create_item(item: ItemIn, request: Request):
    with request.app.state.engine.begin() as conn:
        row = conn.execute(
            text("INSERT INTO items (name, description, created_at) VALUES (:n, :d, :t) "
                 "RETURNING id, name, description, created_at"),
            {"n": item.name, "d": item.description, "t": datetime.now(timezone.utc)}).one()
    return _row(row)


@app.get("/items")
def list_items(request: Request, limit: int = 100):
    with request.app.state.engine.connect() as conn:
        rows = conn.execute(text("SELECT id, name, description, created_at FROM items ORDER BY id LIMIT :l"),
                            {"l": max(1, min(limit, 1000))}).all()
    return [_row(r) for r in rows]


@app.get("/items/{item_id}")
def get_item(item_id: int, request: Request):
    with request.app.state.engine.connect() as conn:
        row = conn.execute(text("SELECT id, name, description, created_at FROM items WHERE id = :i"),
                           {"i": item_id}).one_or_none()
    if row is None:
        raise HTTPException(status_code=404, detail="no such item")
    return _row(row)
