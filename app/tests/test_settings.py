import pytest

from app import settings

URL = "postgresql://app:hunter2@db:5432/app"


def test_reads_database_url_and_defaults():
    s = settings.load({"DATABASE_URL": URL})
    assert s.database_url == URL and s.log_level == "info" and s.workers == 1


def test_reads_the_secret_from_a_file(tmp_path):
    f = tmp_path / "DATABASE_URL"
    f.write_text(URL + "\n")
    assert settings.load({"DATABASE_URL_FILE": str(f)}).database_url == URL


@pytest.mark.parametrize("env, message", [
    ({}, "DATABASE_URL is required"),
    ({"DATABASE_URL": "mysql://app:hunter2@db/app"}, "DATABASE_URL is malformed"),
    ({"DATABASE_URL": "postgresql://app:hunter2@/app"}, "host missing"),
    ({"DATABASE_URL": "postgresql://app:hunter2@db:5432/"}, "database missing"),
    ({"DATABASE_URL_FILE": "/nonexistent/secret"}, "DATABASE_URL_FILE=/nonexistent/secret: cannot read it"),
    ({"DATABASE_URL": URL, "LOG_LEVEL": "loud"}, "LOG_LEVEL must be one of"),
    ({"DATABASE_URL": URL, "WORKERS": "0"}, "WORKERS must be a whole number"),
])
def test_bad_environment_is_a_clear_error(env, message):
    with pytest.raises(settings.SettingsError) as e:
        settings.load(env)
    assert message in str(e.value)
    assert "hunter2" not in str(e.value)


def test_the_app_refuses_to_start_without_a_database(monkeypatch):
    from fastapi.testclient import TestClient
    from app.main import app
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL_FILE", raising=False)
    with pytest.raises(settings.SettingsError, match="DATABASE_URL is required"):
        with TestClient(app):
            pass
