"""The traffic lock and the circuit breaker's ledger.

``mlp_locks``: lease locks; every change to a DNS name holds the one named after it across its
read-modify-write. ``mlp_failover_starts``: one row per failover started (one per region and episode, the
``since`` of the state it was planned from); the breaker counts them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mlp_locks",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("holder", sa.String(250)),
        sa.Column("token", sa.String(64)),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_table(
        "mlp_failover_starts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("episode", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False, index=True),
        sa.Column("started_by", sa.String(250), nullable=False),
        sa.Column("strategy", sa.String(16), nullable=False),
        sa.Column("override", sa.Boolean, nullable=False),
        sa.Column("change_id", sa.String(64)),
        sa.UniqueConstraint("region", "episode", name="uq_mlp_failover_starts_episode"),
    )


def downgrade() -> None:
    op.drop_table("mlp_failover_starts")
    op.drop_table("mlp_locks")
