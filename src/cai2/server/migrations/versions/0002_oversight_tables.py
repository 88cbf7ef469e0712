"""Held answers kept for release, and the oversight tables brought under the migrations.

``cai2_serve_requests.held_response`` keeps the answer a checkpoint held back, so the client can
fetch it once a person approves (``GET /v1/cai2/requests/{id}``). The review-queue tables of
:mod:`cai2.oversight` were created by ``create_all`` before this revision; a database that already
has them keeps them (and their rows), a new one gets them here.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from cai2.store._index import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _create_oversight_tables(existing: set[str]) -> None:
    if "cai2_oversight_decisions" not in existing:
        op.create_table(
            "cai2_oversight_decisions",
            sa.Column("run_id", sa.String(128), primary_key=True),
            sa.Column("item_id", sa.String(256), primary_key=True),
            sa.Column("position", sa.Integer(), nullable=False),
            sa.Column("record", sa.JSON(), nullable=False),
            sa.Column("created_at", UtcDateTime(), nullable=False),
        )
        op.create_index(
            "ix_cai2_oversight_decisions_position", "cai2_oversight_decisions", ["position"]
        )
    if "cai2_review_queue" not in existing:
        op.create_table(
            "cai2_review_queue",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("run_id", sa.String(128), nullable=False),
            sa.Column("item_id", sa.String(256), nullable=False),
            sa.Column("conversation", sa.JSON(), nullable=False),
            sa.Column("response", sa.Text(), nullable=False),
            sa.Column("chain", sa.JSON(), nullable=False),
            sa.Column("ai_violation", sa.Boolean(), nullable=True),
            sa.Column("reasons", sa.JSON(), nullable=False),
            sa.Column("inclusion_probability", sa.Float(), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("human_violation", sa.Boolean(), nullable=True),
            sa.Column("reviewer", sa.String(128), nullable=True),
            sa.Column("reason", sa.Text(), nullable=True),
            sa.Column("created_at", UtcDateTime(), nullable=False),
            sa.Column("reviewed_at", UtcDateTime(), nullable=True),
            sa.UniqueConstraint("run_id", "item_id"),
        )
        op.create_index("ix_cai2_review_queue_run_id", "cai2_review_queue", ["run_id"])
        op.create_index("ix_cai2_review_queue_status", "cai2_review_queue", ["status"])
    if "cai2_oversight_checkpoints" not in existing:
        op.create_table(
            "cai2_oversight_checkpoints",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("run_id", sa.String(128), nullable=False),
            sa.Column("after_decisions", sa.Integer(), nullable=False),
            sa.Column("spot_checks", sa.Integer(), nullable=False),
            sa.Column("reason", sa.Text(), nullable=False),
            sa.Column("cleared_by", sa.String(128), nullable=True),
            sa.Column("created_at", UtcDateTime(), nullable=False),
            sa.Column("cleared_at", UtcDateTime(), nullable=True),
        )
        op.create_index(
            "ix_cai2_oversight_checkpoints_run_id", "cai2_oversight_checkpoints", ["run_id"]
        )
    if "cai2_oversight_audit" not in existing:
        op.create_table(
            "cai2_oversight_audit",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("run_id", sa.String(128), nullable=False),
            sa.Column("item_id", sa.String(256), nullable=True),
            sa.Column("event", sa.String(32), nullable=False),
            sa.Column("actor", sa.String(128), nullable=False),
            sa.Column("payload", sa.JSON(), nullable=False),
            sa.Column("created_at", UtcDateTime(), nullable=False),
        )
        op.create_index("ix_cai2_oversight_audit_run_id", "cai2_oversight_audit", ["run_id"])
        op.create_index("ix_cai2_oversight_audit_item_id", "cai2_oversight_audit", ["item_id"])


def upgrade() -> None:
    with op.batch_alter_table("cai2_serve_requests") as batch:
        batch.add_column(sa.Column("held_response", sa.Text(), nullable=True))
    _create_oversight_tables(set(sa.inspect(op.get_bind()).get_table_names()))


def downgrade() -> None:
    # The oversight tables stay: before this revision they were not the migrations' to drop.
    with op.batch_alter_table("cai2_serve_requests") as batch:
        batch.drop_column("held_response")
