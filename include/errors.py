"""Every error the platform raises on purpose, in one place.

``PermanentError`` marks bad input or bad data that no retry can fix: the Airflow layer turns it into
``AirflowFailException`` (``include.airflow.failures``), so the task fails at once and names the problem.
Every other error is left to the task's retries. Each class keeps a built-in base (``ValueError``,
``LookupError``, ``RuntimeError``) so that callers catching those still do.
"""

from __future__ import annotations

QUOTE_LIMIT = 80  # characters of a value an error message quotes


def quoted(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``value`` as an error message quotes it: its ``repr``, cut to ``limit`` characters with the full length
    said, so a megabyte of bad input never ends up in a log line or an HTTP response."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


class PermanentError(Exception):
    """Bad input or bad data: retrying the same work cannot succeed; the message names the problem."""


# DAG runs


class InvalidConf(PermanentError, ValueError):
    """A DAG run's conf has a field its DAG does not declare; the message names it and the fields declared."""


# The catalogue


class CatalogueError(ValueError):
    """The region catalogue is missing, unreadable or invalid; the message names the field."""


# The state database


class StateSchemaMissing(RuntimeError):
    """The state database was never migrated; the message says to run ``python -m include.state upgrade``."""


class StateSchemaMismatch(RuntimeError):
    """The state database's schema revision is not this code's; the message names both and the fix."""


class BackupInvalid(PermanentError, ValueError):
    """The file is not a state backup this code can read; the message says what is wrong with it."""


class RestoreRefused(RuntimeError):
    """The target database is not one a backup may be restored into; nothing was changed."""


# Cloud access


class ObjectNotFound(LookupError):
    """The object does not exist in the store."""


class ChecksumMismatch(RuntimeError):
    """Bytes read or written differ from what was expected (a manifest, or what was written)."""


class UnsafeTrafficChange(ValueError):
    """A traffic change that could leave clients with no serving region; nothing was changed."""


class DnsNotReady(RuntimeError):
    """The hosted zone or a region's health check is missing; the message says which and what to run."""


class WarmupError(RuntimeError):
    """The serving deployment could not be scaled, or its replicas did not become available in time."""


class CostQueryRejected(RuntimeError):
    """Azure refused the query (a 4xx other than 429): retrying the same request cannot help."""


class SchemaDrift(PermanentError, ValueError):
    """A source's columns are not what the platform reads: names the provider and the columns."""


class SourceUnavailable(RuntimeError):
    """A billing API kept failing or throttling past the retry budget; the task's own retries come next."""


# Replication


class InvalidRequest(PermanentError, ValueError):
    """A replication request or registry event is malformed; the message names the field."""


class InvalidModelVersion(PermanentError, ValueError):
    """A model name, version, file path, size or checksum is not acceptable; the message names it."""


class SourceMissing(PermanentError, LookupError):
    """The model version, its manifest or one of its files is not in the source region (not retried)."""


class RollbackRefused(PermanentError, LookupError):
    """The version asked for is not a finished replica in a region named; no pointer was moved."""


# Failover


class MoveRefused(RuntimeError):
    """A traffic move was refused by a safety rule; the message says which, and nothing was changed."""


class TrafficLockTimeout(RuntimeError):
    """The traffic lock stayed held by another move for too long; nothing was changed (the task retries)."""


class ConcurrentStateChange(RuntimeError):
    """Another writer changed a region's state since it was read; nothing was written."""


# Cost


class CostNotConfigured(PermanentError, LookupError):
    """The catalogue has no ``cost`` section, or no source for a provider."""


class CurrencyRateMissing(PermanentError, ValueError):
    """A source billed in a currency the catalogue has no exchange rate for."""


class ReconciliationError(PermanentError, RuntimeError):
    """The normalised total of a provider and day differs from the source's own total."""


class CostDataError(ValueError):
    """FOCUS rows that cannot be summed into a trustworthy figure (missing columns, NaN costs, mixed currencies)."""


# Serving


class CopyRejected(Exception):
    """The region's store holds no verified copy of the version; the message says why."""


class MetricsFormatError(ValueError):
    """What a ``/metrics`` endpoint answered is not Prometheus text; the message says where and why."""
