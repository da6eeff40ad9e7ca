"""Alembic environment: the database comes from the same settings as the app."""
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine

from app import settings

if context.config.config_file_name:
    fileConfig(context.config.config_file_name, disable_existing_loggers=False)

engine = create_engine(settings.load().database_url, future=True)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
