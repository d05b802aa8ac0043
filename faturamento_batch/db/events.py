"""The run's side of the downstream events (DESIGN §11): write, fan out, retain, notify — in the run's
transaction, in a constant number of statements.

With events: 1. stage the run's events frame (`events.EVENTS_PART`, adbc_ingest into a
temporary table) · 2. one statement that inserts them into `sync_events` in the frame's
order, adds one delivery row per registered consumer, deletes up to `RETENTION_BATCH`
events every consumer acked that are older than the retention, reads each consumer's
backlog (for the metrics) and sends `NOTIFY faturamento_events` (delivered at commit,
not at all on rollback). Without events: statement 2 alone (retention and backlog, no
NOTIFY).

Why deliveries are rows written with the events and not a per-consumer id watermark:
ids are taken when the statement runs, the rows become visible at commit; a watermark
would skip a lower id committed after a higher one. Runs of a job are serialized by its
advisory lock (so per NF, ids follow commit order), but two jobs, or a consumer
registering mid-run, could still interleave. With rows the question does not arise: a
consumer sees exactly the deliveries committed for it. Registration takes a SHARE lock
on `sync_events` (consumer.REGISTER_SQL), so no run's events straddle it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import polars as pl

from ..consumer import CHANNEL
from ..events import counts

log = logging.getLogger(__name__)

RETENTION_BATCH = 100_000  # events one run deletes at most: the statement stays bounded

_INSERT = """
ins AS (
  INSERT INTO sync_events (run_id, job, created_at, numero_nf, kind, origem, cnpj_cliente, payload)
  SELECT run_id, job, created_at, numero_nf, kind, origem, cnpj_cliente, payload::jsonb
  FROM _fb_events ORDER BY ord
  RETURNING id, numero_nf),"""
_NO_INSERT = """
ins AS (SELECT NULL::bigint AS id, NULL::text AS numero_nf WHERE false),"""

# $1 the run's timestamp, $2 retention seconds, $3 RETENTION_BATCH, $4 the NOTIFY payload.
# Every CTE sees the same snapshot: the retention cannot touch this run's events, and the
# backlog is the consumers' before this run. The DELETE re-checks "no pending delivery".
_REST = f"""
fan AS (
  INSERT INTO sync_event_deliveries (consumer, event_id, numero_nf)
  SELECT c.name, ins.id, ins.numero_nf FROM ins CROSS JOIN sync_event_consumers AS c
  RETURNING 1),
old AS (
  SELECT e.id FROM sync_events AS e
  WHERE e.created_at < $1::timestamp - make_interval(secs => $2)
    AND NOT EXISTS (SELECT 1 FROM sync_event_deliveries AS d WHERE d.event_id = e.id AND d.acked_at IS NULL)
  ORDER BY e.id LIMIT $3),
gone AS (
  DELETE FROM sync_events AS e USING old
  WHERE e.id = old.id
    AND NOT EXISTS (SELECT 1 FROM sync_event_deliveries AS d WHERE d.event_id = e.id AND d.acked_at IS NULL)
  RETURNING e.id),
gone_deliveries AS (
  DELETE FROM sync_event_deliveries AS d USING gone WHERE d.event_id = gone.id RETURNING 1),
backlog AS (
  SELECT coalesce(json_object_agg(c.name, json_build_object(
           'pending', (SELECT count(*) FROM sync_event_deliveries AS d WHERE d.consumer = c.name AND d.acked_at IS NULL),
           'oldest_unacked_seconds', (SELECT extract(epoch FROM $1::timestamp - min(e.created_at))::float8
                                      FROM sync_event_deliveries AS d JOIN sync_events AS e ON e.id = d.event_id
                                      WHERE d.consumer = c.name AND d.acked_at IS NULL))), '{{}}')::text AS consumers
  FROM sync_event_consumers AS c)
SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM fan), (SELECT count(*) FROM gone),
       (SELECT count(*) FROM gone_deliveries), (SELECT consumers FROM backlog),
       CASE WHEN EXISTS (SELECT 1 FROM ins) THEN pg_notify('{CHANNEL}', $4) END IS NULL
"""


def events_sql(staged: bool) -> str:
    return "WITH" + (_INSERT if staged else _NO_INSERT) + _REST


@dataclass
class EventsWritten:
    """What the events statement did: the manifest's `events` section."""

    kinds: dict[str, int] = field(default_factory=dict)
    inserted: int = 0
    deliveries: int = 0
    deleted: int = 0
    consumers: dict[str, dict] = field(default_factory=dict)  # name → pending, oldest_unacked_seconds

    def manifest(self) -> dict:
        return {"kinds": dict(self.kinds), "written": self.inserted, "deliveries": self.deliveries,
                "deleted_by_retention": self.deleted, "consumers": dict(self.consumers), "channel": CHANNEL}  # fmt: skip


def write_events(writer, events: pl.DataFrame, now, retention_days: float) -> EventsWritten:
    """Send `events` (`events.EVENTS_PART`) through the run's `db.write.Writer`, transaction open;
    `now` the run's timestamp (the retention counts from it)."""
    staged, kinds = events.height > 0, counts(events)
    log.info("write: events (%d, with the retention of fully acked ones and the NOTIFY)", events.height)
    if staged:
        writer.ingest("_fb_events", events, temporary=True)
    notice = json.dumps({"run_id": events["run_id"][0], "job": events["job"][0], "events": events.height,
                         "kinds": {k: n for k, n in kinds.items() if n}}) if staged else ""  # fmt: skip
    writer.execute(events_sql(staged), (now, float(retention_days) * 86400.0, RETENTION_BATCH, notice))
    inserted, deliveries, deleted, _, consumers, _ = writer.cur.fetchone()
    return EventsWritten(kinds, int(inserted), int(deliveries), int(deleted), json.loads(consumers or "{}"))
