"""The service's first schema: API keys, users, sessions, request records, constitutions.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from cai2.store._index import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cai2_serve_api_keys",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
    )
    op.create_table(
        "cai2_serve_users",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(128), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "cai2_serve_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("cai2_serve_users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "cai2_serve_requests",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False, unique=True),
        sa.Column("client", sa.String(128), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("messages", sa.JSON(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("original_response", sa.Text(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("risk", sa.String(16), nullable=False),
        sa.Column("domains", sa.JSON(), nullable=False),
        sa.Column("constitution", sa.String(256), nullable=False),
        sa.Column("layers", sa.JSON(), nullable=False),
        sa.Column("violation", sa.Boolean(), nullable=True),
        sa.Column("p_violation", sa.Float(), nullable=True),
        sa.Column("human_review", sa.Boolean(), nullable=False),
        sa.Column("chain", sa.JSON(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("backend_ms", sa.Float(), nullable=False),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_cai2_serve_requests_action", "cai2_serve_requests", ["action"])
    op.create_index("ix_cai2_serve_requests_created_at", "cai2_serve_requests", ["created_at"])
    op.create_table(
        "cai2_serve_constitutions",
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("yaml_text", sa.Text(), nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cai2_serve_constitutions")
    op.drop_index("ix_cai2_serve_requests_created_at", "cai2_serve_requests")
    op.drop_index("ix_cai2_serve_requests_action", "cai2_serve_requests")
    op.drop_table("cai2_serve_requests")
    op.drop_table("cai2_serve_sessions")
    op.drop_table("cai2_serve_users")
    op.drop_table("cai2_serve_api_keys")
