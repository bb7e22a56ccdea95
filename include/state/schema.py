"""Every table of the state database, in one ``MetaData``; Alembic (``include/state/migrations``) creates them."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# include/replication/status.py: one row per (model, version, region).
replication_status = sa.Table(
    "mlp_replication_status",
    metadata,
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

# include/failover/store.py: each region's failover record (compare-and-swap on ``version``) ...
region_state = sa.Table(
    "mlp_region_state",
    metadata,
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

# ... and the log of its transitions.
failover_transitions = sa.Table(
    "mlp_failover_transitions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("region", sa.String(64), nullable=False, index=True),
    sa.Column("from_state", sa.String(16), nullable=False),
    sa.Column("to_state", sa.String(16), nullable=False),
    sa.Column("at", sa.Float, nullable=False, index=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(250)),
)

# include/failover/store.py: lease locks; a DNS change holds the lock named after the record it changes ...
locks = sa.Table(
    "mlp_locks",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("holder", sa.String(250)),
    sa.Column("token", sa.String(64)),
    sa.Column("expires_at", sa.Float, nullable=False),
)

# ... and the circuit breaker's ledger: one row per failover started (per region and episode).
failover_starts = sa.Table(
    "mlp_failover_starts",
    metadata,
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
