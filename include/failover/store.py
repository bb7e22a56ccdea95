"""The failover state of every region and the log of its transitions, kept in the platform's SQL database.

Reached through the same connection as the replication status (``replication.state_connection``): SQLite
locally, PostgreSQL in production, so a scheduler or triggerer restart loses nothing. One writer at a time:
each row carries a version, and ``save`` updates a row only if its version is still the one that was read
(compare-and-swap); otherwise it raises ``ConcurrentStateChange`` and writes nothing.
"""

from __future__ import annotations

import json
import time

import sqlalchemy as sa

from include.errors import ConcurrentStateChange
from include.failover.machine import RegionRecord, State, Transition, moved
from include.state.migrate import require_current_schema
from include.state.schema import failover_transitions as transitions
from include.state.schema import region_state

_FIELDS = ("state", "since", "failures", "failing_since", "successes", "healthy_since", "reason", "held")


class FailoverStore:
    """Reads and writes region records and transitions."""

    def __init__(self, engine: sa.Engine):
        require_current_schema(engine)  # tables come from `python -m include.state upgrade`, never from here
        self.engine = engine

    @classmethod
    def from_connection(cls, conn_id: str) -> FailoverStore:
        """The store behind an Airflow connection (sqlite or postgres)."""
        from include.state.engine import state_engine

        return cls(state_engine(conn_id))

    def load(self, regions: list[str]) -> dict[str, RegionRecord]:
        """Every region's record; a region seen for the first time starts HEALTHY (and is written so)."""
        with self.engine.begin() as conn:
            rows = {row.region: row for row in conn.execute(sa.select(region_state))}
            for name in regions:
                if name not in rows:
                    record = RegionRecord(name, since=time.time())
                    conn.execute(sa.insert(region_state).values(region=name, **_values(record), version=0))
            rows = {row.region: row for row in conn.execute(sa.select(region_state))}
        return {name: _record(rows[name]) for name in regions}

    def save(self, records: list[RegionRecord], new_transitions: list[Transition], run_id: str | None = None) -> None:
        """Write ``records`` (each only if its stored version is still ``record.version``) and the transitions,
        in one transaction."""
        with self.engine.begin() as conn:
            for record in records:
                result = conn.execute(
                    sa.update(region_state)
                    .where(region_state.c.region == record.region, region_state.c.version == record.version)
                    .values(**_values(record), version=record.version + 1)
                )
                if result.rowcount != 1:
                    raise ConcurrentStateChange(
                        f"{record.region}: its failover state changed since version {record.version} was read "
                        "(another run wrote it); nothing was written, the next round starts from the new state"
                    )
            for transition in new_transitions:
                conn.execute(
                    sa.insert(transitions).values(
                        region=transition.region,
                        from_state=str(transition.from_state),
                        to_state=str(transition.to_state),
                        at=transition.at,
                        reason=transition.reason,
                        evidence=json.dumps(transition.evidence, default=str),
                        run_id=run_id,
                    )
                )

    def reset(self, regions: list[str], reason: str) -> list[Transition]:
        """Mark every region HEALTHY (when the traffic records were created afresh); the transitions made."""
        now = time.time()
        changed = [
            moved(record, State.HEALTHY, reason, {}, now)
            for record in self.load(regions).values()
            if record.state != State.HEALTHY
        ]
        self.save([record for record, _ in changed], [transition for _, transition in changed])
        return [transition for _, transition in changed]

    def transitions(self, since: float = 0.0, region: str | None = None) -> list[Transition]:
        """Transitions at or after ``since``, oldest first."""
        query = sa.select(transitions).where(transitions.c.at >= since).order_by(transitions.c.at, transitions.c.id)
        if region is not None:
            query = query.where(transitions.c.region == region)
        with self.engine.connect() as conn:
            return [
                Transition(
                    row.region, State(row.from_state), State(row.to_state), row.at, row.reason, json.loads(row.evidence)
                )
                for row in conn.execute(query)
            ]


def _values(record: RegionRecord) -> dict:
    return {name: (str(record.state) if name == "state" else getattr(record, name)) for name in _FIELDS}


def _record(row) -> RegionRecord:
    values = {name: getattr(row, name) for name in _FIELDS}
    return RegionRecord(region=row.region, version=row.version, **{**values, "state": State(row.state)})


def format_states(records: dict[str, RegionRecord], now: float | None = None) -> str:
    """The regions' states as a text table (task logs and the CLI)."""
    now = now or time.time()
    lines = [f"{'region':22} {'state':11} {'for':>8}  reason"]
    for record in records.values():
        held = " (held by an operator)" if record.held else ""
        lines.append(f"{record.region:22} {record.state!s:11} {now - record.since:7.0f}s  {record.reason}{held}")
    return "\n".join(lines)
