"""add items.note

An expand step: a nullable column the previous release neither reads nor
writes, so its pods keep working on the migrated schema.

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"


def upgrade():
    op.add_column("items", sa.Column("note", sa.Text, nullable=True))


def downgrade():
    op.drop_column("items", "note")
