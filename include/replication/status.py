"""Replication status of every model version in every region, kept in a SQL database.

The database is reached through an Airflow connection (``replication.state_connection`` in the catalogue,
``mlp_state`` by default): SQLite on the embedded local platform, PostgreSQL in production. One row per
(model, version, region) is upserted at each step, so the table survives restarts and any number of
retries leaves one current row.

A run that is to replicate a version to a region first claims the row (``claim``): an atomic conditional
upsert, so of any runs that plan the same content at once exactly one holds it (``pending``, then
``copying``) until it is ``verified`` or ``failed``; ``release_claims`` ends a run's unfinished holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from include.state.migrate import require_current_schema
from include.state.schema import replication_status

STATES = ("pending", "copying", "verified", "failed", "corrupt")
HELD = ("pending", "copying")  # a run has claimed the replica and not yet verified or failed it


@dataclass(frozen=True)
class StatusRow:
    model: str
    version: str
    region: str
    source_region: str
    state: str
    sha256: str | None
    bytes: int | None
    event_time: datetime | None
    updated_at: datetime
    verified_at: datetime | None
    run_id: str | None
    message: str | None

    @property
    def lag_seconds(self) -> float | None:
        """Replication lag: from the registry event to this replica's verification."""
        if self.event_time is None or self.verified_at is None:
            return None
        return (as_utc(self.verified_at) - as_utc(self.event_time)).total_seconds()


@dataclass(frozen=True)
class Claim:
    """The outcome of ``StatusStore.claim``: whether the run now holds the row, and the row as it stands."""

    won: bool
    row: StatusRow


def as_utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes; every time stored here is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class StatusStore:
    """Reads and upserts replication status rows."""

    def __init__(self, engine: sa.Engine):
        require_current_schema(engine)  # tables come from `python -m include.state upgrade`, never from here
        self.engine = engine

    @classmethod
    def from_connection(cls, conn_id: str) -> StatusStore:
        """The store behind an Airflow connection (sqlite or postgres)."""
        from include.state.engine import state_engine

        return cls(state_engine(conn_id))

    def record(
        self,
        model: str,
        version: str,
        region: str,
        source_region: str,
        state: str,
        *,
        sha256: str | None = None,
        size: int | None = None,
        event_time: datetime | None = None,
        run_id: str | None = None,
        message: str | None = None,
    ) -> None:
        """Upsert the row of (model, version, region); unset optional values keep what the row had, except
        ``message``, which belongs to this state (a new state clears an old failure message).

        ``verified_at`` is the first verification after the row was last ``pending`` (a new request), so a
        later re-check or repair does not move the replication lag.
        """
        if state not in STATES:
            raise ValueError(f"unknown replication state {state!r}; expected one of {STATES}")
        now = datetime.now(UTC)
        values = {
            "source_region": source_region,
            "state": state,
            "updated_at": now,
            "message": message,
            **({"sha256": sha256} if sha256 is not None else {}),
            **({"bytes": size} if size is not None else {}),
            **({"event_time": event_time} if event_time is not None else {}),
            **({"run_id": run_id} if run_id is not None else {}),
        }
        if state == "pending":
            values["verified_at"] = None
        key = {"model": model, "version": version, "region": region}
        inserted, updated = dict(values), dict(values)
        if state == "verified":
            inserted["verified_at"] = now
            updated["verified_at"] = sa.func.coalesce(replication_status.c.verified_at, now)
        statement = self._insert().values(**key, **inserted)
        statement = statement.on_conflict_do_update(index_elements=list(key), set_=updated)
        with self.engine.begin() as conn:
            conn.execute(statement)

    def claim(
        self,
        model: str,
        version: str,
        region: str,
        source_region: str,
        sha256: str,
        run_id: str,
        *,
        event_time: datetime | None = None,
        replacing: StatusRow | None = None,
    ) -> Claim:
        """Claim (model, version, region) for ``run_id`` to replicate the content whose manifest total is
        ``sha256``: the row becomes ``pending``, held by ``run_id``, unless another run holds that same content
        (claimed: ``pending`` or ``copying``; or ``verified``).

        One statement (INSERT ... ON CONFLICT DO UPDATE ... WHERE), so of concurrent claimers exactly one wins.
        It wins over no row, a ``failed`` or ``corrupt`` replica, other content (or none recorded), its own
        earlier claim (a retried ``plan``), and ``replacing``: a row the caller found stale (its run is over,
        or its verified copy is gone), provided no other run has claimed it since.
        """
        now = datetime.now(UTC)
        key = {"model": model, "version": version, "region": region}
        values = {
            "source_region": source_region,
            "state": "pending",
            "sha256": sha256,
            "updated_at": now,
            "verified_at": None,
            "run_id": run_id,
            "message": None,
        }
        held = replication_status.c
        free = [held.state.in_(("failed", "corrupt")), held.sha256.is_distinct_from(sha256), held.run_id == run_id]
        if replacing is not None:
            free.append(held.run_id.is_not_distinct_from(replacing.run_id))
        statement = self._insert().values(**key, **values, event_time=event_time)
        updated = values | {"event_time": sa.func.coalesce(statement.excluded.event_time, held.event_time)}
        statement = statement.on_conflict_do_update(index_elements=list(key), set_=updated, where=sa.or_(*free))
        # RETURNING says whether a row was written: psycopg 3 (the postgres provider's driver) reports no
        # rowcount for this statement.
        statement = statement.returning(held.run_id)
        with self.engine.begin() as conn:  # the upsert first: it takes the write lock before the read
            won = conn.execute(statement).first() is not None
            row = conn.execute(sa.select(replication_status).filter_by(**key)).one()
        return Claim(won, StatusRow(**row._asdict()))

    def release_claims(self, run_id: str, reason: str) -> list[StatusRow]:
        """Mark ``failed`` every row ``run_id`` still holds (``pending`` or ``copying``), so that another run
        can claim it; returns the rows released."""
        held = replication_status.c
        statement = (
            replication_status.update()
            .where(held.run_id == run_id, held.state.in_(HELD))
            .values(state="failed", updated_at=datetime.now(UTC), message=reason)
            .returning(*held)
        )
        with self.engine.begin() as conn:
            return [StatusRow(**row._asdict()) for row in conn.execute(statement)]

    def _insert(self):
        """The dialect's INSERT, which has ``on_conflict_do_update``."""
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            raise RuntimeError(f"the replication status store supports PostgreSQL and SQLite, not {dialect}")
        return insert(replication_status)

    def rows(self, model: str | None = None, version: str | None = None) -> list[StatusRow]:
        query = sa.select(replication_status).order_by(
            replication_status.c.model, replication_status.c.version, replication_status.c.region
        )
        if model is not None:
            query = query.where(replication_status.c.model == model)
        if version is not None:
            query = query.where(replication_status.c.version == version)
        with self.engine.connect() as conn:
            return [StatusRow(**row._asdict()) for row in conn.execute(query)]


def human_size(size: int) -> str:
    """``1.1 KiB``, ``5.0 MiB``: bytes in the largest binary unit up to GiB."""
    units = ["B", "KiB", "MiB", "GiB"]
    power = min(int(math.log(size, 1024)) if size > 0 else 0, len(units) - 1)
    return f"{size} B" if power == 0 else f"{size / 1024**power:.1f} {units[power]}"


def format_table(rows: list[StatusRow]) -> str:
    """The status rows as a text table (the ``status`` command and task logs)."""
    lines = [
        f"{'model':24} {'version':10} {'region':20} {'state':9} {'size':>10} {'lag s':>7} "
        f"{'updated (UTC)':19}  sha256 / message"
    ]
    for row in rows:
        lag = f"{row.lag_seconds:.0f}" if row.lag_seconds is not None else ""
        size = human_size(row.bytes) if row.bytes is not None else ""
        detail = row.message if row.state in ("failed", "corrupt") and row.message else (row.sha256 or "")[:16]
        lines.append(
            f"{row.model:24} {row.version:10} {row.region:20} {row.state:9} {size:>10} {lag:>7} "
            f"{as_utc(row.updated_at):%Y-%m-%d %H:%M:%S}  {detail}"
        )
    return "\n".join(lines)
