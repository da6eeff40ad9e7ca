import os
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, text

APP_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, APP_DIR)
# The /_meta routes the tests use exist only with it (app.testRoutes); the
# servers the tests start inherit it.
os.environ["TEST_ROUTES"] = "1"


@pytest.fixture(scope="session")
def database_url():
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.fail("TEST_DATABASE_URL is not set: run the tests with app/tests/run.sh, which starts PostgreSQL")
    return url


@pytest.fixture
def empty_database(database_url):
    """A database with no schema at all, as before the first migration."""
    engine = create_engine(database_url, future=True)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS items, alembic_version"))
    engine.dispose()
    return database_url


def migrate(url):
    env = dict(os.environ, DATABASE_URL=url)
    subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=APP_DIR, env=env, check=True,
                   capture_output=True)
