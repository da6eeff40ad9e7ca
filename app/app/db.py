"""Database access: one engine per process, and the migration state."""
import functools
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


@functools.lru_cache(maxsize=1)
def scripts():
    """The image's migrations, read once per process (every probe asks)."""
    cfg = Config(ALEMBIC_INI)
    cfg.set_main_option("script_location", os.path.join(os.path.dirname(HERE), "migrations"))
    return ScriptDirectory.from_config(cfg)


def head_revision():
    return scripts().get_current_head()


def readiness(engine):
    """None when ready, else the reason the service cannot serve.

    Ready when the schema is at this image's migrations head or after it. A
    release migrates before its pods start, so while it rolls out the old
    pods see a revision their image does not know; they keep serving, which
    is safe because migrations are backward compatible (expand, then
    contract: a release only adds what the previous one can ignore, and
    removes only what the previous one no longer uses). A schema behind the
    head (no revision, or an older one this image knows) means this
    release's migration has not run: not ready.
    """
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            current = MigrationContext.configure(conn).get_current_revision()
    except Exception as e:  # any failure to reach the database means not ready
        return f"database unreachable: {type(e).__name__}"
    head = head_revision()
    if current == head:
        return None
    if current is not None and not known(current):
        return None  # a newer release's migration: ahead of this image
    return f"schema at {current or 'no revision'}, migrations head is {head}"


def known(revision):
    try:
        return scripts().get_revision(revision) is not None
    except Exception:  # alembic raises when it cannot locate the revision
        return False
