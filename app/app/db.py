"""Database access: one engine per process, and the migration state."""
import os

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

HERE = os.path.dirname(os.path.abspath(__file__))
ALEMBIC_INI = os.path.join(os.path.dirname(HERE), "alembic.ini")


def make_engine(url):
    # pre_ping: a connection the database closed is replaced, not failed.
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, future=True)


def head_revision():
    cfg = Config(ALEMBIC_INI)
    cfg.set_main_option("script_location", os.path.join(os.path.dirname(HERE), "migrations"))
    return ScriptDirectory.from_config(cfg).get_current_head()


def readiness(engine):
    """None when ready, else the reason the service cannot serve."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            current = MigrationContext.configure(conn).get_current_revision()
    except Exception as e:  # any failure to reach the database means not ready
        return f"database unreachable: {type(e).__name__}"
    head = head_revision()
    if current != head:
        return f"schema at {current or 'no revision'}, migrations head is {head}"
    return None
