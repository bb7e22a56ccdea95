"""The one place where the platform's errors meet Airflow's retry rules.

A ``PermanentError`` (bad input, bad data) fails the task at once with ``AirflowFailException``, naming the
error's type and message; every other error propagates unchanged, so the task's retries handle it.
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager

from include.errors import PermanentError


@contextmanager
def permanent_errors_fail_task() -> Generator[None]:
    """Run the block; turn a ``PermanentError`` it raises into ``AirflowFailException`` (no retries)."""
    try:
        yield
    except PermanentError as error:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"{type(error).__name__}: {error}") from error
