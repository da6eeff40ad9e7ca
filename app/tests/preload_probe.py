"""The example app, for test_server.py, which runs it as
tests.preload_probe:app: it says which process imports it, and whether
FastAPI and SQLAlchemy were imported already (preloaded) when it did."""
import os
import sys

preloaded = all(name in sys.modules for name in ("fastapi", "sqlalchemy"))
print(f"preload_probe: worker {os.getpid()} of {os.getppid()} imports the app, libraries preloaded: {preloaded}",
      file=sys.stderr, flush=True)

from app.main import app  # noqa: E402,F401
