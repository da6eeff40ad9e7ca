"""The real server process, started with the commands the infrastructure
passes (components/service/command.go: uvicorn's own workers on
Kubernetes, uvicorn --fd workers under the single server's replica
supervisor), on whatever FastAPI, uvicorn and SQLAlchemy this interpreter
has: app/tests/run.sh runs this file on Debian bookworm's older generation
and on Debian trixie's current one."""
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import APP_DIR, migrate

# Well inside the grace period the infrastructure gives before SIGKILL
# (app.shutdownGraceSeconds, 30 by default).
GRACE_SECONDS = 10


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=3) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


# components/singleserver/replica_supervisor.py and its workers' entry
# point, components/service/uvicorn_worker.py, which run.sh names.
SUPERVISOR = os.environ.get("REPLICA_SUPERVISOR")
WORKER = os.environ.get("UVICORN_WORKER")
TRUST_LOOPBACK = ["--proxy-headers", "--forwarded-allow-ips", "127.0.0.1"]
COMMANDS = {
    # ServerCommand with two workers and the proxy trusted on loopback.
    "uvicorn workers": lambda port: [
        sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "2"] + TRUST_LOOPBACK,
    # The single server's: the supervisor binds the port (no drain, no
    # linger) and runs two WorkerCommands on it.
    "replica supervisor": lambda port: [
        sys.executable, SUPERVISOR, "0", "0", str(port), "2",
        sys.executable, WORKER, "app.main:app", "--fd", "3"] + TRUST_LOOPBACK,
}


@pytest.fixture(params=sorted(COMMANDS))
def server(request, empty_database, tmp_path):
    if request.param == "replica supervisor":
        need_supervisor()
    port = free_port()
    with serving(COMMANDS[request.param](port), empty_database, tmp_path, workers=2) as proc:
        yield proc, f"http://127.0.0.1:{port}"


def need_supervisor():
    if not (SUPERVISOR and WORKER):
        pytest.fail("REPLICA_SUPERVISOR or UVICORN_WORKER names no file: run these tests with app/tests/run.sh")


@contextlib.contextmanager
def serving(cmd, database, tmp_path, workers):
    """Runs cmd on the migrated database until each of its workers is up,
    and kills it and its workers at the end."""
    migrate(database)
    env = dict(os.environ, DATABASE_URL=database, PYTHONDONTWRITEBYTECODE="1")
    # Output to a file, not a pipe: a worker that outlived its supervisor
    # would hold a pipe open. Its own session, so cleanup reaches workers too.
    log = tmp_path / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=APP_DIR, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    proc.output = lambda: log.read_text()
    deadline = time.monotonic() + 20
    try:
        # Up = every worker through the lifespan startup: one answering is
        # not enough (a worker still importing dies on SIGTERM at once,
        # with no shutdown to run).
        while proc.output().count("Application startup complete") < workers:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the {workers} workers did not start within 20 s:\n" + proc.output())
            time.sleep(0.2)
        yield proc
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def test_the_infrastructure_command_serves_health_and_proxy_headers(server):
    proc, base = server
    assert get(base + "/health/live") == (200, {"status": "alive"})
    assert get(base + "/health/ready") == (200, {"status": "ready"})
    # The proxy terminates TLS; uvicorn trusts its X-Forwarded-* headers.
    status, seen = get(base + "/_meta/request", {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
    assert status == 200
    assert (seen["scheme"], seen["client"]) == ("https", "203.0.113.9")


def test_live_answers_while_every_worker_thread_is_busy(server):
    """Plain-def routes run on a pool of 40 threads per worker. With every
    thread of both workers busy (here slow requests; in production, requests
    waiting on a database that restarts), the live endpoint still answers
    at once: it runs on the event loop."""
    _, base = server
    def occupy():
        with contextlib.suppress(OSError):  # those queued behind the pool time out
            get(base + "/_meta/slow?seconds=4")
    slow = [threading.Thread(target=occupy) for _ in range(200)]
    for t in slow:
        t.start()
    try:
        time.sleep(1)
        started = time.monotonic()
        assert get(base + "/health/live") == (200, {"status": "alive"})
        took = time.monotonic() - started
        assert took < 1, f"the live endpoint answered after {took:.1f} s, behind the busy thread pool"
    finally:
        for t in slow:
            t.join()


def test_sigterm_stops_within_the_grace_period_and_closes_the_pool(server):
    proc, _ = server
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {GRACE_SECONDS} s after SIGTERM:\n" + proc.output())
    took = time.monotonic() - started
    out = proc.output()
    assert proc.returncode == 0, out
    # Each worker ran the lifespan shutdown (logs.py writes JSON lines).
    closed = [line for line in out.splitlines() if "connection pool closed" in line]
    assert len(closed) == 2, out
    print(f"stopped in {took:.2f} s")


def test_sigterm_lets_a_request_in_flight_finish(server):
    """uvicorn stops accepting on SIGTERM but finishes what it serves: a
    slow request that started before the signal gets its answer."""
    proc, base = server
    status, body = sigterm_during_a_slow_request(proc, base)
    assert status == 200, proc.output()
    assert body["slept"] == 2
    proc.wait(timeout=GRACE_SECONDS)
    assert proc.returncode == 0, proc.output()


def sigterm_during_a_slow_request(proc, base, meanwhile=lambda: None):
    """Sends SIGTERM 0.5 s into a 2 s request, runs meanwhile 0.5 s after
    the signal, and returns the request's (status, body), or (None, None)
    when it got no answer."""
    result = {}

    def slow():
        result["answer"] = get(base + "/_meta/slow?seconds=2")

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)  # the workers' loops see the signal within 0.1 s
    meanwhile()
    t.join(timeout=10)
    return result.get("answer", (None, None))


@pytest.mark.parametrize("server", ["replica supervisor"], indirect=True)
def test_sigterm_refuses_new_connections_while_a_request_finishes(server):
    """Once the workers stop on SIGTERM the port refuses connections, even
    while one of them still finishes a slow request: a proxy then retries
    a refused connect elsewhere. A listening socket that stays open (each
    worker held a duplicate of it until it exited) completes handshakes
    nobody accepts, and those requests are reset when the last worker
    exits: Traefik answered them 502 in a release (a request it has
    written is not retried). uvicorn's own --workers parent keeps the
    socket until it exits, which Kubernetes covers with its preStop sleep
    and the endpoints' removal, so only the supervisor is held to this."""
    proc, base = server
    port = int(base.rsplit(":", 1)[1])

    def connect():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            pytest.fail("a connection 0.5 s after SIGTERM was accepted (the request on it would be reset "
                        "when the last worker exits), want it refused:\n" + proc.output())
        except ConnectionRefusedError:
            pass

    assert sigterm_during_a_slow_request(proc, base, connect)[0] == 200, proc.output()
    proc.wait(timeout=GRACE_SECONDS)


def test_supervisor_preloads_the_libraries_once_and_each_worker_imports_the_app(empty_database, tmp_path):
    """The supervisor imports FastAPI, SQLAlchemy and uvicorn once and
    forks the workers ready (0.6 s of CPU each had, 1.2 s in a 0.5-CPU
    replica, and a release's old replicas stopped while a new replica's
    workers still imported); each worker still imports the app itself, in
    its own process, so that what the app's import makes (metrics files
    are per process) is not shared."""
    need_supervisor()
    cmd = [sys.executable, SUPERVISOR, "0", "0", str(free_port()), "3",
           sys.executable, WORKER, "tests.preload_probe:app", "--fd", "3"]
    with serving(cmd, empty_database, tmp_path, workers=3) as proc:
        # Found anywhere in the output: the workers write to one pipe.
        imported = re.findall(r"preload_probe: worker (\d+) of (\d+) imports the app, libraries preloaded: (\w+)", proc.output())
        assert len(imported) == 3, proc.output()
        for worker, parent, preloaded in imported:
            assert int(parent) == proc.pid and int(worker) != proc.pid, proc.output()
            assert preloaded == "True", proc.output()
        assert len({worker for worker, _, _ in imported}) == 3, proc.output()
