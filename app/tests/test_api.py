import json
import os

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from app.main import app
from conftest import migrate


@pytest.fixture
def client(monkeypatch, empty_database):
    monkeypatch.setenv("DATABASE_URL", empty_database)
    with TestClient(app) as c:
        yield c


def test_live_is_up_even_before_migrations(client):
    r = client.get("/health/live")
    assert r.status_code == 200 and r.json() == {"status": "alive"}


def test_ready_waits_for_migrations(client, empty_database):
    r = client.get("/health/ready")
    assert r.status_code == 503
    assert r.json()["reason"] == "schema at no revision, migrations head is 0001"
    migrate(empty_database)
    r = client.get("/health/ready")
    assert r.status_code == 200 and r.json() == {"status": "ready"}


def test_ready_reuses_a_ready_verdict_for_a_second(client, empty_database, monkeypatch):
    """A probe storm asks the database once a second per worker; a failure
    is asked again every time, so a replica turns ready at once."""
    from app import db, main
    calls = []
    real = db.readiness
    monkeypatch.setattr(db, "readiness", lambda engine: calls.append(1) or real(engine))
    assert client.get("/health/ready").status_code == 503
    assert client.get("/health/ready").status_code == 503
    assert len(calls) == 2
    migrate(empty_database)
    for _ in range(5):
        assert client.get("/health/ready").status_code == 200
    assert len(calls) == 3
    monkeypatch.setattr(main, "READY_REUSE_SECONDS", 0.0)
    client.app.state.ready_until = 0.0
    client.get("/health/ready")
    client.get("/health/ready")
    assert len(calls) == 5


def test_ready_asks_the_database_once_at_a_time(client, empty_database, monkeypatch):
    """While one readiness check waits on the database (a restart of it: a
    name that does not resolve, a pool with no free connection), the other
    readiness requests await that same check, without a thread of their
    own, and answer "not ready" once it has run READY_WAIT_SECONDS."""
    import threading
    import time
    from app import db, main
    release, calls = threading.Event(), []
    monkeypatch.setattr(db, "readiness", lambda engine: calls.append(1) or release.wait(10) and None)
    monkeypatch.setattr(main, "READY_WAIT_SECONDS", 0.3)
    first = threading.Thread(target=client.get, args=("/health/ready",))
    first.start()
    try:
        deadline = time.monotonic() + 5
        while not calls and time.monotonic() < deadline:
            time.sleep(0.01)
        assert calls, "the first readiness request never asked the database"
        started = time.monotonic()
        r = client.get("/health/ready")
        assert time.monotonic() - started < 2, "a readiness request waited past READY_WAIT_SECONDS"
        assert r.status_code == 503 and r.json()["reason"] == "database check still running after 0.3 s"
        assert len(calls) == 1
    finally:
        release.set()
        first.join()
    # The check ended (ready): the next request starts no second one.
    assert client.get("/health/ready").status_code == 200
    assert len(calls) == 1


def stamp(url, revision):
    engine = create_engine(url, future=True)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    engine.dispose()


def test_ready_while_a_newer_release_migrated_ahead(client, empty_database):
    """During a rollout the new release's migration runs first: the old pods
    see a revision their image does not know, and must keep serving
    (migrations are backward compatible: expand, then contract)."""
    migrate(empty_database)
    stamp(empty_database, "0002_added_by_a_newer_release")
    r = client.get("/health/ready")
    assert r.status_code == 200 and r.json() == {"status": "ready"}


def test_ready_fails_when_the_database_is_down(monkeypatch):
    # A port nothing listens on: the database is unreachable.
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:pw@127.0.0.1:9/app")
    with TestClient(app) as c:
        r = c.get("/health/ready")
    assert r.status_code == 503
    assert r.json()["reason"].startswith("database unreachable")


def test_items(client, empty_database):
    migrate(empty_database)
    created = client.post("/items", json={"name": "first", "description": "one"})
    assert created.status_code == 201
    item = created.json()
    assert item["name"] == "first" and item["id"] > 0
    assert client.get(f"/items/{item['id']}").json() == item
    assert [i["name"] for i in client.get("/items").json()] == ["first"]
    assert client.get("/items/999999").status_code == 404
    assert client.post("/items", json={"description": "no name"}).status_code == 422
    # The name column holds 200 characters: one more is a 422, not a 500.
    assert client.post("/items", json={"name": "x" * 200}).status_code == 201
    assert client.post("/items", json={"name": "x" * 201}).status_code == 422


def test_metrics_count_requests(client):
    client.get("/health/live")
    client.get("/health/ready")
    body = client.get("/metrics").text
    assert 'http_requests_total{method="GET",route="/health/live",status="200"}' in body
    assert "http_request_duration_seconds_bucket" in body
    assert "database_up 1.0" in body
    assert "app_start_time_seconds" in body


def test_metrics_refuse_what_came_through_a_proxy(client):
    # Every proxy in front adds X-Forwarded-For (or Forwarded): the public
    # side of an ingress never sees metrics; Prometheus, direct, does.
    for header in ({"X-Forwarded-For": "203.0.113.9"}, {"Forwarded": "for=203.0.113.9"}):
        r = client.get("/metrics", headers=header)
        assert r.status_code == 404, header
        assert "http_requests_total" not in r.text
    assert client.get("/metrics").status_code == 200


def test_database_down_shows_in_metrics(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:pw@127.0.0.1:9/app")
    with TestClient(app) as c:
        c.get("/health/ready")
        body = c.get("/metrics").text
    assert "database_up 0.0" in body
    assert "readiness_failures_total" in body


def test_request_id_and_json_logs(client, capsys):
    r = client.get("/health/live", headers={"X-Request-ID": "req-123"})
    assert r.headers["X-Request-ID"] == "req-123"
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    entry = next(e for e in lines if e["request_id"] == "req-123")
    assert entry["level"] == "INFO" and entry["module"] == "main" and "GET /health/live 200" in entry["message"]
    assert entry["timestamp"]


def test_status_route_answers_with_the_code(client):
    assert client.get("/_meta/status/500").status_code == 500
    assert client.get("/_meta/status/204").status_code == 204


def test_request_info_shows_what_the_proxy_sent(client):
    r = client.get("/_meta/request", headers={"X-Request-ID": "abc"})
    assert r.json()["request_id"] == "abc"


def test_test_routes_exist_only_when_turned_on():
    """Without TEST_ROUTES=1 (app.testRoutes, refused in production) the
    /_meta routes are not there: a slow one holds a worker thread."""
    import subprocess
    import sys

    from conftest import APP_DIR

    env = {k: v for k, v in os.environ.items() if k != "TEST_ROUTES"}
    env["DATABASE_URL"] = "postgresql://unused@127.0.0.1:1/unused"
    out = subprocess.run(
        [sys.executable, "-c", "from app.main import app; print(sorted(r.path for r in app.routes))"],
        cwd=APP_DIR, env=env, capture_output=True, text=True, check=True).stdout
    assert "/_meta/slow" not in out and "/_meta/request" not in out
    assert "/items" in out
