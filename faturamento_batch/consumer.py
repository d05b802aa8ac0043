"""The consumer side of the downstream events (DESIGN §11), over any DB-API connection.

The protocol is the SQL below (the README shows it as is); this helper only sends it.
It imports nothing from the job, so the logistics application can copy this file.

Delivery: each event gets one `sync_event_deliveries` row per consumer registered when
the run wrote it, in the run's own transaction. So a consumer sees every committed
event exactly once whatever the order in which ids were taken and committed, and
consumers are independent (each has its own rows).

- `claim` locks the pending rows of up to N NFs, oldest first, skipping rows another
  worker holds (`FOR UPDATE SKIP LOCKED`); an NF's events go to one worker together,
  in id order, never while an older one of it is held elsewhere. It sets a lease
  (`claimed_until`).
- Process and `ack` **in the same transaction**, then commit: work and ack commit or
  roll back together. A worker that dies rolls back: its claim (and lease) vanish and
  the events are claimable at once.
- A client that claims, commits and processes elsewhere (`events claim` in a script)
  holds the events for the lease (`visibility_seconds`); not acked by then, they
  return. That mode is at-least-once: ack before the lease runs out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

CHANNEL = "faturamento_events"  # LISTEN faturamento_events: a run that wrote events committed
DEFAULT_VISIBILITY_SECONDS = 300.0

# $1 consumer name. The SHARE lock waits for runs writing events to commit and keeps new ones
# out until this commits: every event id ≤ registered_after_id is committed without a delivery
# for the consumer, every later one is written seeing it (so it gets one).
REGISTER_SQL = (
    "LOCK TABLE sync_events IN SHARE MODE",
    """INSERT INTO sync_event_consumers (name, registered_at, registered_after_id)
SELECT $1, LOCALTIMESTAMP, coalesce(max(id), 0) FROM sync_events
ON CONFLICT (name) DO NOTHING
RETURNING registered_after_id""",
)
REMOVE_SQL = "DELETE FROM sync_event_consumers WHERE name = $1 RETURNING name"  # its deliveries go with it

# $1 consumer, $2 how many NFs, $3 lease seconds. `heads`: the oldest pending event of up to $2
# NFs that no worker holds; `tails`: those NFs' later pending events, claimed with them (an NF's
# events go to one worker, in id order). Every row locked, SKIP LOCKED, then leased.
CLAIM_SQL = """
WITH heads AS (
  SELECT d.consumer, d.event_id, d.numero_nf FROM sync_event_deliveries AS d
  WHERE d.consumer = $1 AND d.acked_at IS NULL
    AND (d.claimed_until IS NULL OR d.claimed_until <= clock_timestamp()::timestamp)
    AND NOT EXISTS (SELECT 1 FROM sync_event_deliveries AS p
                    WHERE p.consumer = d.consumer AND p.numero_nf = d.numero_nf
                      AND p.acked_at IS NULL AND p.event_id < d.event_id)
  ORDER BY d.event_id
  LIMIT $2
  FOR UPDATE SKIP LOCKED),
tails AS (
  SELECT d.consumer, d.event_id FROM sync_event_deliveries AS d JOIN heads AS h
    ON d.consumer = h.consumer AND d.numero_nf = h.numero_nf AND d.event_id > h.event_id
  WHERE d.acked_at IS NULL AND (d.claimed_until IS NULL OR d.claimed_until <= clock_timestamp()::timestamp)
  FOR UPDATE OF d SKIP LOCKED),
claimed AS (
  UPDATE sync_event_deliveries AS d
  SET claimed_until = clock_timestamp()::timestamp + make_interval(secs => $3), claims = d.claims + 1
  FROM (SELECT consumer, event_id FROM heads UNION ALL SELECT consumer, event_id FROM tails) AS picked
  WHERE d.consumer = picked.consumer AND d.event_id = picked.event_id AND d.acked_at IS NULL
  RETURNING d.event_id, d.claims)
SELECT e.id, e.run_id, e.job, e.created_at, e.numero_nf, e.kind, e.origem, e.cnpj_cliente, e.payload::text, c.claims
FROM claimed AS c JOIN sync_events AS e ON e.id = c.event_id
ORDER BY e.id
"""

# $1 consumer, $2 event ids. Only pending rows: acking twice acks once. Joined to the ids (not
# `= ANY`) so the plan is key lookups, not a scan of the consumer's whole backlog.
ACK_SQL = """
UPDATE sync_event_deliveries AS d SET acked_at = clock_timestamp()::timestamp, claimed_until = NULL
FROM (SELECT DISTINCT unnest(CAST($2 AS bigint[])) AS id) AS a
WHERE d.consumer = $1 AND d.event_id = a.id AND d.acked_at IS NULL
RETURNING d.event_id
"""

CONSUMERS_SQL = """
SELECT c.name, c.registered_at, c.registered_after_id,
       count(d.event_id)::bigint AS pending,
       count(d.event_id) FILTER (WHERE d.claimed_until > clock_timestamp()::timestamp)::bigint AS leased,
       extract(epoch FROM LOCALTIMESTAMP - min(e.created_at))::float8 AS oldest_unacked_seconds
FROM sync_event_consumers AS c
LEFT JOIN sync_event_deliveries AS d ON d.consumer = c.name AND d.acked_at IS NULL
LEFT JOIN sync_events AS e ON e.id = d.event_id
GROUP BY c.name, c.registered_at, c.registered_after_id
ORDER BY c.name
"""

# $1 and $2 the run id or NULL for every run, $3 how many.
EVENTS_SQL = """
SELECT id, run_id, job, created_at, numero_nf, kind, origem, cnpj_cliente, payload::text, 0
FROM sync_events WHERE ($1::text IS NULL OR run_id = $2::text)
ORDER BY id LIMIT $3
"""


@dataclass(frozen=True)
class Event:
    id: int
    run_id: str
    job: str
    created_at: datetime
    numero_nf: str
    kind: str
    origem: str | None
    cnpj_cliente: str | None
    payload: dict
    claims: int = 0  # how often it was claimed (> 1: redelivered)

    def as_json(self) -> str:
        return json.dumps({**self.__dict__, "created_at": self.created_at.isoformat()}, ensure_ascii=False)


def _events(rows) -> list[Event]:
    return [Event(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7], json.loads(r[8] or "{}"), int(r[9])) for r in rows]


class Consumer:
    """Consume the events as consumer `name` over `conn`, a DB-API connection (psycopg 3, psycopg2,
    ADBC, a SQLAlchemy `raw_connection()`). The caller owns the transaction: claim, work, ack,
    `conn.commit()`."""

    def __init__(self, conn, name: str, visibility_seconds: float = DEFAULT_VISIBILITY_SECONDS):
        self.conn, self.name, self.visibility_seconds = conn, name, float(visibility_seconds)
        driver = getattr(conn, "driver_connection", conn)  # SQLAlchemy's pool wrapper
        self._numbered = type(driver).__module__.startswith("adbc_driver")  # `$1`; the others take `%s`

    def _run(self, sql: str, params: tuple = ()) -> list:
        args: tuple | dict = params
        if not self._numbered:  # pyformat drivers: `$n` → `%(pn)s`
            sql = re.sub(r"\$(\d+)", r"%(p\1)s", sql)
            args = {f"p{i}": v for i, v in enumerate(params, start=1)}
        cur = self.conn.cursor()
        try:
            cur.execute(sql, args)
            return list(cur.fetchall()) if cur.description else []
        finally:
            cur.close()

    def register(self) -> int | None:
        """Register (not committed): the max event id it will not see, or None if it already was."""
        self._run(REGISTER_SQL[0])
        rows = self._run(REGISTER_SQL[1], (self.name,))
        return int(rows[0][0]) if rows else None

    def remove(self) -> bool:
        return bool(self._run(REMOVE_SQL, (self.name,)))

    def claim(self, limit: int = 100) -> list[Event]:
        """The pending events of up to `limit` NFs, oldest first, held by this transaction (and for
        the lease). An NF's events come together and in id order."""
        return _events(self._run(CLAIM_SQL, (self.name, int(limit), self.visibility_seconds)))

    def ack(self, ids) -> int:
        """Mark `ids` delivered, in the caller's transaction; returns how many were pending."""
        ids = [int(i) for i in ids]
        return len(self._run(ACK_SQL, (self.name, ids))) if ids else 0

    def list_events(self, run_id: str | None = None, limit: int = 1000) -> list[Event]:
        return _events(self._run(EVENTS_SQL, (run_id, run_id, int(limit))))

    def consumers(self) -> list[dict]:
        cols = ("name", "registered_at", "registered_after_id", "pending", "leased", "oldest_unacked_seconds")
        return [dict(zip(cols, r)) for r in self._run(CONSUMERS_SQL)]
