"""One NF PostgreSQL refuses does not stop invoicing (DESIGN §12): find the bad NFs, write the rest.

`write_excluding(writer, nfs, attempt)` runs `attempt(exclude)` — the run's writes for every NF
but `exclude`, inside the open transaction, not committed — first with nothing excluded: a
healthy run sends exactly the statements it always sent. When that fails with a row-specific
error (`errors.is_row_specific`: SQLSTATE class 22 or 23, or P0001), the transaction is rolled
back and restarted with savepoints (`Writer.begin_savepoints`), then:
  1. the error names the NF (a unique violation's `Key (…numero_nf…)=(…)`): that NF is out;
  2. else bisection: the suspects split in halves, each half written alone under the savepoint
     and rolled back to it (a probe), level by level, keeping the halves that fail; a half whose
     sibling passed inherits the parent's error without a probe of its own. About k·log₂ n
     probes for k bad NFs among n; more failing groups than the limit stops early;
  3. `attempt(bad)` again under the savepoint; if it fails with another row-specific error the
     loop goes on from 1 with what is left.
More NFs refused than `limit(n)` (20, or 1 % of the run's NFs if larger) is not bad data but a
systematic failure: `QuarantineLimit` (exit 1), and the caller's rollback leaves nothing written.
Any other error (connection, privilege, lock, timeout) propagates as it is.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Generic, TypeVar

import polars as pl

from . import artifacts
from .db import quarantine as table
from .errors import DatabaseError, QuarantineLimit, is_row_specific
from .odoo.source import RawBatch, Source, merge_batches

log = logging.getLogger(__name__)
T = TypeVar("T")

LIMIT_NFS = 20
LIMIT_RATIO = 0.01
BACKOFF_SECONDS = 15 * 60  # one run interval: the first retry
BACKOFF_CAP_SECONDS = 6 * 3600
REFUSED_SCHEMA = pl.Schema({"numero_nf": pl.String, "sqlstate": pl.String, "message": pl.String})
NO_NFS = pl.Series("numero_nf", [], dtype=pl.String)


def limit(n_nfs: int) -> int:
    """The most NFs one run may quarantine; more is a systematic failure."""
    return max(LIMIT_NFS, math.ceil(n_nfs * LIMIT_RATIO))


@dataclass
class Outcome(Generic[T]):
    """`attempt`'s result for the NFs that went through, and the refused ones (REFUSED_SCHEMA)."""

    result: T
    refused: pl.DataFrame
    probes: int = 0  # bisection writes (each one rolled back)
    named: int = 0  # NFs named by the error itself
    rounds: int = 0  # final writes tried (1 + the ones another refusal failed)

    def manifest(self) -> dict:
        return {"nfs": self.refused.get_column("numero_nf").to_list(), "probes": self.probes,
                "named_by_error": self.named, "rounds": self.rounds}  # fmt: skip


# `Key (ltrim(numero_nf::text, '0'::text), cod_produto)=(123, P1) already exists.`
_KEY = re.compile(r"Key \((?P<cols>.*)\)=\((?P<vals>.*)\) (?:already exists|conflicts with existing key)", re.S)
_NF_COLUMNS = ("numero_nf", "nota_fiscal")


def _split_top(text: str) -> list[str]:
    """Split on the commas outside parentheses (an index's expressions hold commas of their own)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    return [*parts, text[start:].strip()]


def named_nf(exc: BaseException, suspects: pl.Series) -> str | None:
    """The NF a unique violation's detail names, when it is one of `suspects`; else None."""
    detail = getattr(exc, "detail", None) or ""
    m = _KEY.search(detail)
    if not m:
        return None
    cols, vals = _split_top(m.group("cols")), [v.strip() for v in m.group("vals").split(",")]
    if len(cols) != len(vals):  # a value with a comma of its own: cannot tell which is the NF
        return None
    for col, val in zip(cols, vals):
        if any(name in col for name in _NF_COLUMNS) and suspects.is_in([val]).any():
            return val
    return None


def message_of(exc: BaseException) -> str:
    """The server's own words (a trigger's RAISE text, a constraint's name), with the key detail."""
    primary = getattr(exc, "primary", None) or str(exc)
    detail = getattr(exc, "detail", None)
    return f"{primary} ({detail})" if detail else primary


class _Search:
    def __init__(self, writer, nfs: pl.Series, attempt: Callable[[pl.Series], object]):
        self.writer, self.nfs, self.attempt = writer, nfs, attempt
        self.probes = 0

    def probe(self, group: pl.Series) -> DatabaseError | None:
        """Write `group` alone under the savepoint and roll back to it; the row-specific error, or None."""
        self.probes += 1
        try:
            self.attempt(self.nfs.filter(~self.nfs.is_in(group.implode())))
        except DatabaseError as exc:
            if not is_row_specific(exc):
                raise
            self.writer.rollback_to()
            return exc
        self.writer.rollback_to()
        return None

    def bisect(self, suspects: pl.Series, err: DatabaseError, room: int) -> dict[str, DatabaseError]:
        """The NFs among `suspects` (which failed together with `err`) that fail alone, level by level."""
        found: dict[str, DatabaseError] = {}
        level = [(suspects, err)]
        while level:
            failing = []
            for group, group_err in level:  # at most 2·room groups: bounded by the limit, not the data
                if group.len() == 1:
                    found[group[0]] = group_err
                    continue
                left, right = group.head(group.len() // 2), group.tail(group.len() - group.len() // 2)
                left_err = self.probe(left)
                right_err = self.probe(right) if left_err is not None else group_err
                failing += [(g, e) for g, e in ((left, left_err), (right, right_err)) if e is not None]
            if len(found) + len(failing) > room:
                raise _Overflow(len(found) + len(failing))
            level = failing
        return found


class _Overflow(Exception):
    def __init__(self, n: int):
        self.n = n


def write_excluding(writer, nfs: pl.Series | Callable[[], pl.Series], attempt: Callable[[pl.Series], T]) -> Outcome[T]:
    """`attempt(NO_NFS)`; on a row-specific refusal, find the refused NFs and `attempt(them)`.

    `nfs`: every NF the run writes for (sorted, unique), or a function that reads them — called
    only on the failure path, so a healthy run never gathers them. `attempt(exclude)` must write
    the run's parts without the NFs in `exclude` and may be called several times in one transaction.
    """
    try:
        return Outcome(attempt(NO_NFS), pl.DataFrame(schema=REFUSED_SCHEMA), rounds=1)
    except DatabaseError as exc:
        if not is_row_specific(exc):
            raise
        err: DatabaseError = exc
    if callable(nfs):
        nfs = nfs()
    room = limit(nfs.len())
    log.warning("write refused (SQLSTATE %s): looking for the NFs responsible among %d", err.sqlstate, nfs.len())
    writer.rollback()
    writer.begin_savepoints()
    writer.savepoint()
    search = _Search(writer, nfs, attempt)
    bad: dict[str, DatabaseError] = {}
    named = rounds = 0
    while True:
        suspects = nfs.filter(~nfs.is_in(pl.Series(list(bad), dtype=pl.String).implode()))
        nf = named_nf(err, suspects)
        try:
            found = {nf: err} if nf else search.bisect(suspects, err, room - len(bad))
        except _Overflow as over:
            raise _limit_error(len(bad) + over.n, nfs.len(), room, err) from err
        named += bool(nf)
        if not found or len(bad) + len(found) > room:
            raise _limit_error(len(bad) + len(found), nfs.len(), room, err) from err
        bad.update(found)
        log.warning("quarantine: %d NF(s) refused so far (%d probes)", len(bad), search.probes)
        rounds += 1
        try:
            result = attempt(pl.Series("numero_nf", sorted(bad), dtype=pl.String))
        except DatabaseError as exc:
            if not is_row_specific(exc):
                raise
            writer.rollback_to()
            err = exc
            continue
        refused = pl.DataFrame({
            "numero_nf": list(bad), "sqlstate": [e.sqlstate for e in bad.values()],
            "message": [message_of(e) for e in bad.values()],
        }, schema=REFUSED_SCHEMA).sort("numero_nf")  # fmt: skip
        return Outcome(result, refused, probes=search.probes, named=named, rounds=rounds + 1)


def _limit_error(n: int, total: int, room: int, err: DatabaseError) -> QuarantineLimit:
    text = QuarantineLimit(
        f"PostgreSQL refused the writes of more than {room} of the run's {total} NFs (at least {min(n, room + 1)}; "
        f"last: SQLSTATE {err.sqlstate}: {message_of(err)[:300]}). That is not a bad NF but a systematic "
        "failure (a schema change, a new constraint or trigger of the application): nothing was written, "
        "nothing quarantined. Fix the cause and run again.",
        err.sqlstate,
    )  # fmt: skip
    text.primary, text.detail = err.primary, err.detail
    return text


@dataclass
class SyncWrite:
    """What `write_sync` wrote: the import's summary, the stock stage as written, the search."""

    summary: object  # db.write.WriteSummary
    stock: object  # stock_stage.StockStage | None (its plan without the refused NFs)
    outcome: Outcome
    recorded: dict[str, int] = field(default_factory=dict)
    released: list[str] = field(default_factory=list)


def settle(writer, run, done: Outcome) -> SyncWrite:
    """After `write_excluding`: record the refused NFs and release the quarantined ones the run
    wrote again (one statement in the run's transaction, only when there is either). `run` is the
    pipeline's `Run`: its id, job, clock, open quarantine, parts and scrubbing."""
    refused = done.refused
    released = run.released(refused if refused.height else None).get_column("numero_nf").to_list()
    out = SyncWrite(done.result, run.stock, done, released=released)
    if refused.height == 0 and not released:
        return out
    settings = run.settings
    moves = _moves(run, refused)
    # A few messages (at most `limit(n)` refused NFs), each scrubbed of the run's secrets.
    refused = refused.with_columns(pl.Series("message", [settings.scrub(m) for m in refused.get_column("message").to_list()]))
    refused = refused.join(moves, on="numero_nf", how="left").select(table.REFUSED.names())
    out.outcome.refused = refused.drop("moves")
    out.recorded = table.record(writer, settings.job, run.id, run.now, refused, released,
                                backoff_seconds=BACKOFF_SECONDS, cap_seconds=BACKOFF_CAP_SECONDS)  # fmt: skip
    return out


def _moves(run, refused: pl.DataFrame) -> pl.DataFrame:
    """The Odoo moves of the refused NFs, from the lines the run read (the import's `moves` spill),
    so a later run can fetch them again by id once the cursor has moved past them."""
    frames = [pl.DataFrame(schema={"numero_nf": pl.String, "odoo_move_id": pl.Int64})]
    spill = run.imported.staged.get("moves") if run.imported is not None else None
    if spill is not None and spill.rows:
        spill.close()
        frames.append(pl.scan_parquet(spill.file).join(refused.lazy().select("numero_nf"), on="numero_nf", how="semi").collect())
    return pl.concat(frames, how="vertical_relaxed").group_by("numero_nf").agg(pl.col("odoo_move_id").drop_nulls().unique().sort().alias("moves"))


def with_due_moves(source: Source, batch: RawBatch, open_nfs, retry: dict) -> RawBatch:
    """The batch plus the moves of the quarantined NFs due for a retry it does not hold (DESIGN §12);
    `retry` gets the counts (`nfs` due, `moves_fetched`)."""
    due = open_nfs.filter(pl.col("due")).explode("moves").get_column("moves").drop_nulls().unique()
    held = batch.frames["account.move.line"].get_column("move_id").unique().implode()
    wanted = due.filter(~due.is_in(held)).sort().to_list()
    retry.update(nfs=open_nfs.filter(pl.col("due")).height, moves_fetched=len(wanted))
    if not wanted:
        return batch
    log.info("extract: %d moves of quarantined NFs due for a retry, by id", len(wanted))
    return merge_batches(batch, source.extract_moves(wanted))


def report(manifest: dict, run_dir: Path, done, open_nfs, now) -> None:
    """The manifest's `quarantined_nfs` (bounded by the quarantine limit), `quarantine` section and
    the `quarantine` part: (numero_nf, kind) events for the events outbox, with the refusal."""
    refused = done.outcome.refused
    manifest["quarantined_nfs"] = refused.get_column("numero_nf").to_list()
    if refused.height:  # also in the run record (`sync_runs.counts`); a healthy run's counts stay as they were
        manifest.setdefault("counts", {})["quarantined_nfs"] = refused.height
    manifest["released_nfs"] = list(done.released)
    still_open = open_nfs.filter(~pl.col("numero_nf").is_in(pl.Series(done.released, dtype=pl.String).implode()))
    newly = refused.join(open_nfs.select("numero_nf"), on="numero_nf", how="anti").height
    oldest = still_open.get_column("first_seen").str.to_datetime(strict=False).min() if still_open.height else None
    oldest = oldest or (now if newly else None)
    manifest["quarantine"] = {
        **done.outcome.manifest(), "released": len(done.released), "open": still_open.height + newly,
        "oldest_age_seconds": round((now - oldest).total_seconds(), 1) if oldest else 0.0, **done.recorded,
    }  # fmt: skip
    if refused.height or done.released:
        events = pl.concat([
            refused.with_columns(pl.lit("nf_quarantined").alias("kind")),
            pl.DataFrame({"numero_nf": done.released}, schema={"numero_nf": pl.String}).with_columns(
                pl.lit("nf_released").alias("kind"), pl.lit(None, pl.String).alias("sqlstate"), pl.lit(None, pl.String).alias("message")),
        ], how="diagonal_relaxed").select("numero_nf", "kind", "sqlstate", "message")  # fmt: skip
        manifest.setdefault("artifacts", {}).update(artifacts.write_parts(run_dir, {"quarantine": events}))
