"""The write transaction, again after a lock timeout, deadlock or serialization failure.

The job shares its tables with the logistics application: it waits at most
`lock_timeout` for a row the application holds, then gives up the transaction
rather than keep the application's users queued behind it, and tries again.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any, Callable, TypeVar

from .db.write import Writer
from .errors import RETRYABLE_SQLSTATES, TRANSIENT_SQLSTATES, DatabaseTransientError
from .settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

WRITE_RETRY_BACKOFF = 0.5  # seconds before the first retry; doubled each time, with jitter


def with_write_retries(settings: Settings, run: Any, writer: Writer, attempt: Callable[[], T]) -> T:
    """`attempt()` (read state → diff → write → commit), again after a lock timeout, deadlock or
    serialization failure, up to `settings.write_retries` times. Odoo is not read again, except
    by a chunked full run, whose chunks are not kept (memory bounded by the chunk size).

    Each retry starts from a rolled-back transaction (the job's session lock stays held)
    and re-reads the state, so the diff sees what the logistics application committed
    meanwhile. Records the attempts and each retry's reason on `run` (`pipeline.Run`:
    `attempts`, `retries`, `written`; the manifest shows them);
    raises the last `DatabaseTransientError` (exit 75) when every attempt failed.
    """
    attempts = settings.write_retries + 1
    for n in range(1, attempts + 1):
        run.attempts = n
        try:
            return attempt()
        except DatabaseTransientError as exc:
            if exc.sqlstate not in RETRYABLE_SQLSTATES:
                raise
            writer.rollback()
            run.written = None  # rolled back: this attempt wrote nothing
            reason = {"attempt": n, "sqlstate": exc.sqlstate, "reason": TRANSIENT_SQLSTATES[exc.sqlstate]}
            run.retries.append(reason)
            if n == attempts:
                raise DatabaseTransientError(
                    f"{exc} — gave up after {n} write attempts ({reason['reason']} each time; "
                    f"`--lock-timeout` {settings.lock_timeout:g}s). Nothing was written; the next run "
                    "retries. If it persists, look for what holds the logistics tables' rows locked.",
                    exc.sqlstate,
                ) from exc
            delay = min(WRITE_RETRY_BACKOFF * 2 ** (n - 1), 10.0) * (0.5 + random.random())
            log.warning("write attempt %d/%d: %s (SQLSTATE %s); rolled back, retrying in %.1fs",
                        n, attempts, reason["reason"], exc.sqlstate, delay)  # fmt: skip
            time.sleep(delay)
    raise AssertionError("unreachable")  # the loop returns or raises
