"""The example app, for test_server.py, which runs it as
tests.preload_probe:app: it says which process imports it, and whether
FastAPI and SQLAlchemy were imported already (preloaded) when it did."""
import os
import sys

preloaded = all(name in sys.modules for name in ("fastapi", "sqlalchemy"))
# One write with its newline: print() writes the text and the newline
# apart, and another worker's log line landed between them (seen: "...
# preloaded: True{"timestamp": ...}").
os.write(2, f"preload_probe: worker {os.getpid()} of {os.getppid()} imports the app, libraries preloaded: {preloaded}\n".encode())

from app.main import app  # noqa: E402,F401
