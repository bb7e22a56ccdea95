"""The failover state of every region and the log of its transitions, kept in the platform's SQL database.

Reached through the same connection as the replication status (``replication.state_connection``): SQLite
locally, PostgreSQL in production, so a scheduler or triggerer restart loses nothing. One writer at a time:
each row carries a version, and ``save`` updates a row only if its version is still the one that was read
(compare-and-swap); otherwise it raises ``ConcurrentStateChange`` and writes nothing.

It also keeps the lease locks that serialise traffic moves (``lock``) and the circuit breaker's ledger of
failovers started (``start_failover``, ``failovers_started``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Generator
from contextlib import contextmanager

import sqlalchemy as sa

from include.errors import ConcurrentStateChange, TrafficLockTimeout
from include.failover.machine import RegionRecord, State, Transition, moved
from include.state.migrate import require_current_schema
from include.state.schema import failover_starts, locks, region_state
from include.state.schema import failover_transitions as transitions

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

    @contextmanager
    def lock(self, name: str, holder: str, lease_seconds: float = 30, wait_seconds: float = 60) -> Generator[str]:
        """Hold the lease lock ``name`` (one holder at a time, on SQLite as on PostgreSQL); yields its token.

        A holder that dies loses the lock when its lease expires, ``lease_seconds`` after it took it; a lock
        not free within ``wait_seconds`` raises ``TrafficLockTimeout`` naming its holder.
        """
        token = uuid.uuid4().hex
        deadline = time.monotonic() + wait_seconds
        while not self._try_lock(name, holder, token, lease_seconds):
            if time.monotonic() > deadline:
                with self.engine.connect() as conn:
                    row = conn.execute(sa.select(locks).where(locks.c.name == name)).one_or_none()
                held = f"held by {row.holder} until {row.expires_at:.0f}" if row and row.holder else "contended"
                raise TrafficLockTimeout(
                    f"lock {name!r} not free within {wait_seconds:.0f}s ({held}); nothing was changed"
                )
            time.sleep(0.05)
        try:
            yield token
        finally:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.update(locks)
                    .where(locks.c.name == name, locks.c.token == token)
                    .values(holder=None, token=None, expires_at=0.0)
                )

    def _try_lock(self, name: str, holder: str, token: str, lease_seconds: float) -> bool:
        now = time.time()
        with self.engine.begin() as conn:
            taken = conn.execute(
                sa.update(locks)
                .where(locks.c.name == name, sa.or_(locks.c.token.is_(None), locks.c.expires_at < now))
                .values(holder=holder, token=token, expires_at=now + lease_seconds)
            ).rowcount
            if taken == 1:
                return True
            if conn.execute(sa.select(locks.c.name).where(locks.c.name == name)).first() is not None:
                return False
        try:  # the first use of this lock: its row
            with self.engine.begin() as conn:
                conn.execute(
                    sa.insert(locks).values(name=name, holder=holder, token=token, expires_at=now + lease_seconds)
                )
            return True
        except sa.exc.IntegrityError:
            return False

    def start_failover(
        self, region: str, episode: float, started_by: str, strategy: str, limit: int, *, override: bool = False
    ) -> list[dict]:
        """Enter a failover of ``region`` (its state episode ``episode``) in the breaker's ledger, unless the
        ledger already holds ``limit`` other failovers started in the last hour and ``override`` is false.

        Returns those other failovers (``region``, ``started_at``); the failover was entered if fewer than
        ``limit``, or on ``override``. An episode already entered is not entered, or counted, twice. Call it
        under the traffic lock: the count and the entry are then one step.
        """
        now = time.time()
        with self.engine.begin() as conn:
            recent = [
                {"region": row.region, "started_at": row.started_at}
                for row in conn.execute(
                    sa.select(failover_starts.c.region, failover_starts.c.started_at, failover_starts.c.episode)
                    .where(failover_starts.c.started_at >= now - 3600)
                    .order_by(failover_starts.c.started_at)
                )
                if (row.region, row.episode) != (region, episode)
            ]
            entered = conn.execute(
                sa.select(failover_starts.c.id).where(
                    failover_starts.c.region == region, failover_starts.c.episode == episode
                )
            ).first()
            if entered is None and (len(recent) < limit or override):
                conn.execute(
                    sa.insert(failover_starts).values(
                        region=region,
                        episode=episode,
                        started_at=now,
                        started_by=started_by,
                        strategy=strategy,
                        override=override,
                    )
                )
        return recent

    def note_switch(self, region: str, episode: float, change_id: str | None) -> None:
        """Record the Route 53 change that switched ``region``'s episode away (the health watch's switch)."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(failover_starts)
                .where(failover_starts.c.region == region, failover_starts.c.episode == episode)
                .values(change_id=change_id)
            )

    def failover_start(self, region: str, episode: float) -> dict | None:
        """The ledger's row of ``region``'s episode (None: no failover started in it)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(failover_starts).where(
                    failover_starts.c.region == region, failover_starts.c.episode == episode
                )
            ).first()
        return dict(row._mapping) if row else None

    def failovers_started(self, since: float) -> list[dict]:
        """The ledger's rows since ``since``, oldest first (the breaker counts those of the last hour)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(failover_starts).where(failover_starts.c.started_at >= since).order_by(failover_starts.c.id)
            )
            return [dict(row._mapping) for row in rows]


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
