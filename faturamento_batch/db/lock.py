"""The run lock and the stored cursor, read in one statement at the start of a run.

A session-level `pg_advisory_lock` on the writer's connection keeps two runs of
the same job apart. It is released when the run ends — or when its connection
dies, so a crashed run never leaves the job blocked.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime

from ..errors import LockHeld
from .features import FEATURES_SQL, Features
from .privileges import CHECK_SQL, GrantCheck, missing_grants_error
from .quarantine import OPEN_SQL
from .write import Writer

# The grant check and the schema's optional parts (DESIGN §10) ride on the run's first
# statement: they cost no extra round trip.
_LOCK_AND_CURSOR = f"""
SELECT pg_try_advisory_lock($1),
       LOCALTIMESTAMP::timestamp,
       (SELECT cursor FROM sync_state WHERE job = $2),
       current_user::text,
       {CHECK_SQL.strip()},
       {FEATURES_SQL},
       {OPEN_SQL.strip()}
"""


def lock_key(job: str) -> int:
    """A stable signed 64-bit key for `job` (advisory locks take a bigint)."""
    digest = hashlib.sha256(f"faturamento_batch:{job}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass(frozen=True)
class RunStart:
    now: datetime  # the database's clock: the run's timestamp in every audit column
    cursor: datetime | None  # the stored cursor; None before the first successful run
    features: Features = Features()  # the optional tables and columns found (DESIGN §10)
    quarantine: str = "[]"  # the job's quarantined NFs, JSON (db.quarantine.OPEN_SQL)


def lock_and_read_cursor(writer: Writer, job: str, wait_seconds: float = 0.0, check: GrantCheck | None = None) -> RunStart:
    """Take the job's lock (waiting up to `wait_seconds`), read its cursor and the schema's features
    (also left on `writer.features`, which the write path follows); raise `LockHeld`, or
    `PermissionDenied` when the role lacks a grant `check` lists (default: a full sync's)."""
    check = check or GrantCheck.build()
    deadline = time.monotonic() + max(wait_seconds, 0.0)
    while True:
        writer.execute(_LOCK_AND_CURSOR, (lock_key(job), job, *check.params()))
        got, now, cursor, role, missing, found, quarantined = writer.cur.fetchone()
        # End the read-only transaction: the lock is session-level and stays held,
        # and no snapshot is kept open while Odoo is read.
        writer.rollback()
        denied = missing_grants_error(missing, role)
        if denied is not None:
            raise denied
        if got:
            features = Features.from_json(found)
            writer.features = features
            return RunStart(now, cursor, features, quarantined)
        if time.monotonic() >= deadline:
            raise LockHeld(
                f"another run of job `{job}` holds the lock; this run did nothing. "
                "Use `--wait SECONDS` to wait for it."
            )
        time.sleep(min(0.5, max(deadline - time.monotonic(), 0.01)))
