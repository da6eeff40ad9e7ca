"""Settings from the environment, checked at start with a clear error.

Secrets may come as files: NAME_FILE names a file that holds NAME's value
(the Docker secrets convention the single server uses), so a password never
has to sit in the container's environment.
"""
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class SettingsError(RuntimeError):
    """The environment cannot run the service; the message says how to fix it."""


def _read(env, name):
    path = env.get(name + "_FILE")
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                return f.read().strip()
        except OSError as e:
            raise SettingsError(f"{name}_FILE={path}: cannot read it ({e.strerror})") from None
    return env.get(name, "").strip()


@dataclass(frozen=True)
class Settings:
    database_url: str
    log_level: str = "info"
    workers: int = 1


def load(env=None):
    env = os.environ if env is None else env
    url = _read(env, "DATABASE_URL")
    if not url:
        raise SettingsError(
            "DATABASE_URL is required: set it (or DATABASE_URL_FILE) to "
            "postgresql://USER:PASSWORD@HOST:5432/DB")
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgresql+psycopg2", "postgres") or not parts.hostname or not parts.path.strip("/"):
        # Never echo the URL: it holds the password.
        raise SettingsError(
            "DATABASE_URL is malformed: want postgresql://USER:PASSWORD@HOST:5432/DB "
            f"(got scheme {parts.scheme or 'none'!r}, host {'set' if parts.hostname else 'missing'}, "
            f"database {'set' if parts.path.strip('/') else 'missing'})")
    if parts.scheme == "postgres":
        url = "postgresql" + url[len("postgres"):]
    level = env.get("LOG_LEVEL", "info").lower()
    if level not in LOG_LEVELS:
        raise SettingsError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    workers = env.get("WORKERS", "1")
    if not workers.isdigit() or int(workers) < 1:
        raise SettingsError(f"WORKERS must be a whole number of at least 1, got {workers!r}")
    return Settings(database_url=url, log_level=level, workers=int(workers))
