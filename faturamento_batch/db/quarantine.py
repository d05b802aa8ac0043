"""The quarantine table `sync_quarantine` (DESIGN §12): what the runs left out, and when to try again.

Statements, each one whatever the volume:
  - `OPEN_SQL`, a scalar sub-select riding on the run's first (lock) statement: the job's
    quarantined NFs (due or not) with their Odoo moves — a healthy run sends nothing more;
  - `record`: the NFs this run refused (upsert: attempts, backoff) and the NFs it wrote that
    were quarantined (released), in the run's transaction;
  - `list_rows` / `retry` / `drop` for the `quarantine` command.
Values travel as bound parameters; the table name is a constant.
"""

from __future__ import annotations

import json

import polars as pl

# The job's open quarantine as JSON: [{"numero_nf", "due", "moves", "first_seen"}]. `$2` is the job
# (the lock statement's own parameter).
OPEN_SQL = """
(SELECT coalesce(json_agg(json_build_object('numero_nf', q.numero_nf, 'due', q.next_try <= LOCALTIMESTAMP,
                                            'moves', q.odoo_move_ids, 'first_seen', q.first_seen)
                          ORDER BY q.numero_nf), '[]')::text
 FROM sync_quarantine AS q WHERE q.job = $2 AND q.state = 'quarantined')
"""

# Backoff: the next try one run interval after the first refusal, doubling per attempt, capped.
_RECORD = """
WITH bad AS (
  SELECT * FROM unnest($4::text[], $5::text[], $6::text[], $7::text[]) AS b(numero_nf, sqlstate, message, moves)),
ups AS (
  INSERT INTO sync_quarantine AS q (job, numero_nf, run_id, sqlstate, message, first_seen, last_tried, attempts,
                                    next_try, state, odoo_move_ids)
  SELECT $1, b.numero_nf, $2, b.sqlstate, b.message, $3::timestamp, $3::timestamp, 1,
         $3::timestamp + make_interval(secs => $8::float8), 'quarantined', b.moves::jsonb
  FROM bad AS b
  ON CONFLICT (job, numero_nf) DO UPDATE SET
    attempts = CASE WHEN q.state = 'quarantined' THEN q.attempts + 1 ELSE 1 END,
    first_seen = CASE WHEN q.state = 'quarantined' THEN q.first_seen ELSE EXCLUDED.first_seen END,
    run_id = CASE WHEN q.state = 'quarantined' THEN q.run_id ELSE EXCLUDED.run_id END,
    sqlstate = EXCLUDED.sqlstate,
    message = EXCLUDED.message,
    last_tried = EXCLUDED.last_tried,
    next_try = EXCLUDED.last_tried + LEAST(
      make_interval(secs => $8::float8 * 2 ^ (CASE WHEN q.state = 'quarantined' THEN q.attempts ELSE 0 END)),
      make_interval(secs => $9::float8)),
    state = 'quarantined',
    released_at = NULL,
    odoo_move_ids = coalesce(NULLIF(EXCLUDED.odoo_move_ids, '[]'::jsonb), q.odoo_move_ids)  -- none found this time: keep the known ones
  RETURNING (q.xmax = 0) AS inserted),
rel AS (
  UPDATE sync_quarantine AS q SET state = 'released', released_at = $3::timestamp, last_tried = $3::timestamp
  WHERE q.job = $1 AND q.numero_nf = ANY($10::text[]) AND q.state = 'quarantined'
  RETURNING q.numero_nf)
SELECT (SELECT count(*) FROM ups), (SELECT count(*) FROM ups WHERE inserted), (SELECT count(*) FROM rel)
"""

_LIST = """
SELECT numero_nf, state, attempts, sqlstate, message, run_id, first_seen, last_tried, next_try, released_at,
       coalesce(odoo_move_ids::text, '[]') AS odoo_move_ids
FROM sync_quarantine WHERE job = $1 AND (state = $2 OR $2 = 'all') ORDER BY first_seen, numero_nf
"""
# `retry`: due now (only what is still quarantined); `drop`: stop retrying, kept as dropped.
_RETRY = """
WITH upd AS (UPDATE sync_quarantine SET next_try = LOCALTIMESTAMP
             WHERE job = $1 AND numero_nf = ANY($2::text[]) AND state = 'quarantined' RETURNING numero_nf)
SELECT coalesce(array_agg(numero_nf ORDER BY numero_nf), '{}')::text[] FROM upd
"""
_DROP = """
WITH upd AS (UPDATE sync_quarantine SET state = 'dropped'
             WHERE job = $1 AND numero_nf = ANY($2::text[]) AND state = 'quarantined' RETURNING numero_nf)
SELECT coalesce(array_agg(numero_nf ORDER BY numero_nf), '{}')::text[] FROM upd
"""

OPEN_SCHEMA = pl.Schema({"numero_nf": pl.String, "due": pl.Boolean, "moves": pl.List(pl.Int64), "first_seen": pl.String})
# What a run refused: one row per NF (the quarantine driver's `refused` frame + the NF's moves).
REFUSED = pl.Schema({"numero_nf": pl.String, "sqlstate": pl.String, "message": pl.String, "moves": pl.List(pl.Int64)})


def open_frame(raw: str | None) -> pl.DataFrame:
    """`OPEN_SQL`'s JSON as a frame (schema `OPEN_SCHEMA`)."""
    rows = json.loads(raw or "[]")
    if not rows:
        return pl.DataFrame(schema=OPEN_SCHEMA)
    return pl.DataFrame(rows, schema=OPEN_SCHEMA, strict=False)


def record(writer, job: str, run_id: str, now, refused: pl.DataFrame, released: list[str], *,
           backoff_seconds: float, cap_seconds: float) -> dict[str, int]:
    """Upsert the refused NFs, release the `released` ones: one statement in the run's transaction."""
    ids = pl.col("moves").cast(pl.List(pl.Int64)).fill_null([]).list.eval(pl.element().cast(pl.String)).list.join(",")
    moves_json = refused.select(pl.concat_str(pl.lit("["), ids, pl.lit("]"))).to_series().to_list()
    writer.execute(_RECORD, (
        job, run_id, now, refused.get_column("numero_nf").to_list(), refused.get_column("sqlstate").to_list(),
        refused.get_column("message").to_list(), moves_json, float(backoff_seconds), float(cap_seconds), released,
    ))  # fmt: skip
    recorded, new, rel = writer.cur.fetchone()
    return {"quarantined": int(recorded), "new": int(new), "released": int(rel)}


def list_rows(cur, job: str, state: str = "quarantined") -> pl.DataFrame:
    cur.execute(_LIST, (job, state))
    return pl.from_arrow(cur.fetch_arrow_table())  # type: ignore[return-value]


def retry(cur, job: str, nfs: list[str]) -> list[str]:
    cur.execute(_RETRY, (job, nfs))
    return list(cur.fetchone()[0] or [])


def drop(cur, job: str, nfs: list[str]) -> list[str]:
    cur.execute(_DROP, (job, nfs))
    return list(cur.fetchone()[0] or [])
