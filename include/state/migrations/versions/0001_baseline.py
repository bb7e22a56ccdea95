"""Baseline: the replication status, region state and failover transition tables.

A table that already exists is left as it is: before migrations, the stores created these same tables
themselves, so a database from then is adopted as it stands.

Revision ID: 0001
Revises:
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "mlp_replication_status" not in existing:
        op.create_table(
            "mlp_replication_status",
            sa.Column("model", sa.String(128), primary_key=True),
            sa.Column("version", sa.String(64), primary_key=True),
            sa.Column("region", sa.String(64), primary_key=True),
            sa.Column("source_region", sa.String(64), nullable=False),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("sha256", sa.String(64)),
            sa.Column("bytes", sa.BigInteger),
            sa.Column("event_time", sa.DateTime(timezone=True)),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("verified_at", sa.DateTime(timezone=True)),
            sa.Column("run_id", sa.String(250)),
            sa.Column("message", sa.Text),
        )
    if "mlp_region_state" not in existing:
        op.create_table(
            "mlp_region_state",
            sa.Column("region", sa.String(64), primary_key=True),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("since", sa.Float, nullable=False),
            sa.Column("failures", sa.Integer, nullable=False),
            sa.Column("failing_since", sa.Float),
            sa.Column("successes", sa.Integer, nullable=False),
            sa.Column("healthy_since", sa.Float),
            sa.Column("reason", sa.Text, nullable=False),
            sa.Column("held", sa.Boolean, nullable=False),
            sa.Column("version", sa.Integer, nullable=False),
        )
    if "mlp_failover_transitions" not in existing:
        op.create_table(
            "mlp_failover_transitions",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("region", sa.String(64), nullable=False),
            sa.Column("from_state", sa.String(16), nullable=False),
            sa.Column("to_state", sa.String(16), nullable=False),
            sa.Column("at", sa.Float, nullable=False),
            sa.Column("reason", sa.Text, nullable=False),
            sa.Column("evidence", sa.Text, nullable=False),
            sa.Column("run_id", sa.String(250)),
        )
        op.create_index("ix_mlp_failover_transitions_region", "mlp_failover_transitions", ["region"])
        op.create_index("ix_mlp_failover_transitions_at", "mlp_failover_transitions", ["at"])


def downgrade() -> None:
    op.drop_table("mlp_failover_transitions")
    op.drop_table("mlp_region_state")
    op.drop_table("mlp_replication_status")
