"""A full run by chunks of whole NFs, pipelined, in memory set by the chunk size (DESIGN §8).

Three stages run side by side, joined by queues of one item (so at most a few
chunks are alive at once, whatever the size of the run):

    extract (thread)  → transform + diff (thread) → COPY (this thread, one `adbc_ingest`)
    source.extract_chunks        per chunk or bucket        faturamento_produto, streamed

The diff of a chunk needs the existing rows of its NFs. When the tables hold at
most a chunk's worth of rows they are held (`db.full_state`) and each chunk is
diffed as it comes; orphans are the held rows of NFs no chunk returned, plus
per-chunk orphans. When they hold more, the transformed chunks are spilled to
buckets by a hash of `numero_nf`, and each bucket is diffed against the same
bucket of existing rows (a hash join on disk): exact, bounded, and the COPY
starts once extraction is over. Parts other than the new lines are spilled and
sent after the COPY (`db.write_stream`). Still one transaction: the caller
commits the data, the cursor and the run record together.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import polars as pl

from .db.full_state import FullState, bucket_of, read_full_state
from .db.write import ACTOR, Writer, _changes, to_arrow
from .db.write_stream import Spill, arrow_schema, ingest_stream, write_staged
from .diff import ChangeSet, compute_changeset
from .errors import RejectRatioExceeded
from .odoo.chunks import ChunkedExtraction, one_chunk
from .odoo.fields import LINE as ODOO_LINE
from .odoo.source import Source
from .schemas import CONSOLIDATION, KEY, LINE, LINE_VALUES, NEW_PRODUCT, REJECTED, STATUS_CHANGE, STOCK_NF_LINE
from .progress import Progress
from .settings import Settings
from .transform import TransformResult, nfs_on_several_moves, transform

log = logging.getLogger(__name__)

_DONE = object()
PARTS = ("inserts", "status_changes", "drift", "cancellations", "reactivations", "new_products",
         "consolidation", "orphans", "rejected")  # fmt: skip


class _Stopped(Exception):
    """Another stage failed: this one stops without adding an error of its own."""


@dataclass
class FullOutcome:
    """What the chunked run hands back to the pipeline for the manifest and the run record."""

    counts: dict[str, int]
    rows_to_write: int
    reject_ratio: float
    downstream: dict[str, list[str]]
    max_write_date: datetime | None
    odoo: dict
    artifacts: dict[str, str]
    chunks: int
    buckets: int
    reads: int
    run_dir: Path
    state: FullState
    apply_drift: bool
    timings: dict[str, float] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)
    cascade: pl.DataFrame | None = None

    @property
    def statements(self) -> int:
        """SQL statements the reads sent (the writer counts its own)."""
        return self.reads

    def stock_inputs(self) -> tuple[ChangeSet, pl.DataFrame]:
        """What the stock stage of this run needs, read back from the run's artifacts.

        The stage looks at the NFs the run inserted, reactivated or changed: their
        new lines (the `inserts` part, only the stage's columns), the status changes
        and drift, and the existing rows of those NFs. So what it holds grows with
        those NFs (every NF on a first full run), not with the tables.
        """
        cols = STOCK_NF_LINE.names()
        part = lambda name, columns=None: pl.read_parquet(self.run_dir / f"{name}.parquet", columns=columns)  # noqa: E731
        inserts = part("inserts", cols).cast(dict(STOCK_NF_LINE))  # type: ignore[arg-type]
        status = part("status_changes").cast(dict(STATUS_CHANGE))  # type: ignore[arg-type]
        drift = part("drift")
        nfs = pl.concat([inserts.select("numero_nf"), status.select("numero_nf"), drift.select("numero_nf"),
                         part("reactivations")]).unique()  # fmt: skip
        existing = pl.concat([self.state.bucket(b)[0].join(nfs, on="numero_nf", how="semi") for b in range(self.state.buckets)])
        cs = ChangeSet(
            inserts=inserts, status_changes=status, drift=drift, cancellations=part("cancellations"),
            reactivations=part("reactivations"), new_products=pl.DataFrame(schema=NEW_PRODUCT),
            consolidation=pl.DataFrame(schema=CONSOLIDATION), orphans=pl.DataFrame(), rejected=pl.DataFrame(schema=REJECTED),
            apply_drift=self.apply_drift,
        )  # fmt: skip
        return cs, existing


def extraction_of(source: Source, chunk_lines: int) -> ChunkedExtraction:
    """The source's chunked extraction; a source that cannot chunk gives one chunk."""
    if hasattr(source, "extract_chunks"):
        return source.extract_chunks(chunk_lines)  # type: ignore[attr-defined]
    return one_chunk(source.extract(None))


class _Run:
    """The state one chunked run accumulates: totals, spills, queues (keys and counts only)."""

    def __init__(self, settings: Settings, state: FullState, several: pl.Series, run_dir: Path, tmp: Path, now: datetime):
        self.settings, self.state, self.several, self.now = settings, state, several, now
        run_dir.mkdir(parents=True, exist_ok=True)
        self.artifacts = {p: Spill(run_dir / f"{p}.parquet") for p in PARTS}
        self.staged = {p: Spill(tmp / f"staged-{p}.parquet") for p in ("changes", "new_products", "consolidation")}
        self.tmp = tmp
        self.products = state.products.select("cod_produto")
        self.counts: dict[str, int] = dict.fromkeys(PARTS, 0)
        self.reasons: dict[str, int] = {}
        self.in_domain = self.lines = self.merged = self.rows_to_write = 0
        self.downstream: dict[str, list[pl.Series]] = {}
        self.cancelled: list[pl.Series] = []
        self.met_nfs: list[pl.DataFrame] = []  # held mode: NFs of existing rows some chunk returned
        self.several_keys: list[pl.DataFrame] = []  # keys returned for NFs on several moves
        self.timings: dict[str, float] = {"extract": 0.0, "transform": 0.0, "diff": 0.0, "artifacts": 0.0}
        self.max_write_date: datetime | None = None
        self.stop = threading.Event()
        self.errors: list[BaseException] = []

    # -- queues that give up when another stage failed -------------------------------------
    def put(self, q: queue.Queue, item) -> None:
        while not self.stop.is_set():
            try:
                q.put(item, timeout=0.2)
                return
            except queue.Full:
                continue
        raise _Stopped

    def get(self, q: queue.Queue):
        while not self.stop.is_set():
            try:
                return q.get(timeout=0.2)
            except queue.Empty:
                continue
        raise _Stopped

    def stage(self, name: str, work) -> threading.Thread:
        def guarded():
            try:
                work()
            except _Stopped:
                pass
            except BaseException as exc:
                self.errors.append(exc)
                self.stop.set()

        thread = threading.Thread(target=guarded, name=f"full-run-{name}", daemon=True)
        thread.start()
        return thread

    # -- the stages ------------------------------------------------------------------------
    def extract(self, extraction: ChunkedExtraction, raw: queue.Queue) -> None:
        chunks = iter(extraction.chunks)
        while True:
            t = time.perf_counter()
            batch = next(chunks, None)
            self.timings["extract"] += time.perf_counter() - t
            if batch is None:
                break
            if batch.max_write_date and (self.max_write_date is None or batch.max_write_date > self.max_write_date):
                self.max_write_date = batch.max_write_date
            self.put(raw, batch)
        self.put(raw, _DONE)

    def process(self, raw: queue.Queue, out: queue.Queue) -> None:
        held = self.state.buckets == 1
        spills = {} if held else self._bucket_spills()
        while (batch := self.get(raw)) is not _DONE:
            t = time.perf_counter()
            result = transform(batch.frames, self.several)
            del batch
            self.timings["transform"] += time.perf_counter() - t
            self._count(result)
            if held:
                self.emit(self._diff_held(result), out)
            else:
                self._spill_by_bucket(result, spills)
        if not held:
            for b in range(self.state.buckets):
                self.emit(self._diff_bucket(b, spills), out)
        self.put(out, _DONE)

    def _count(self, result: TransformResult) -> None:
        self.in_domain += result.in_domain
        self.lines += result.lines.height
        self.merged += result.merged
        by_reason = result.rejected.group_by("reason").len()
        for reason, n in zip(by_reason["reason"].to_list(), by_reason["len"].to_list()):  # a handful of reasons
            self.reasons[reason] = self.reasons.get(reason, 0) + n

    def _diff(self, lines: pl.DataFrame, existing: pl.DataFrame, consolidation: pl.DataFrame, rejected: pl.DataFrame) -> ChangeSet:
        t = time.perf_counter()
        cs = compute_changeset(lines, existing, self.products, consolidation, full=True,
                               apply_drift=self.settings.apply_drift, rejected=rejected)  # fmt: skip
        self.timings["diff"] += time.perf_counter() - t
        return cs

    def _diff_held(self, result: TransformResult) -> ChangeSet:
        nfs = pl.concat([result.lines.select("numero_nf"), result.rejected.select("numero_nf")]).drop_nulls().unique()
        existing = self.state.lines.join(nfs, on="numero_nf", how="semi")  # type: ignore[union-attr]
        stored = self.state.consolidation.join(nfs, on="numero_nf", how="semi")  # type: ignore[union-attr]
        cs = self._diff(result.lines, existing, stored, result.rejected)
        # An NF on several moves may have lines in other chunks: its orphans wait for the end.
        several = pl.col("numero_nf").is_in(self.several.implode())
        self.met_nfs.append(existing.select("numero_nf").unique().filter(~several))
        self.several_keys.append(result.rejected.filter(several).select(KEY))
        return _with_orphans(cs, cs.orphans.filter(~several))

    def _bucket_spills(self) -> dict[tuple[str, int], Spill]:
        return {(kind, b): Spill(self.tmp / f"in-{kind}-{b}.parquet")
                for kind in ("lines", "rejected") for b in range(self.state.buckets)}  # fmt: skip

    def _spill_by_bucket(self, result: TransformResult, spills: dict[tuple[str, int], Spill]) -> None:
        for kind, frame in (("lines", result.lines), ("rejected", result.rejected)):
            tagged = frame.with_columns(bucket_of(pl.col("numero_nf"), self.state.buckets).fill_null(0).alias("_b"))
            for (b,), part in tagged.partition_by("_b", as_dict=True, include_key=False).items():
                spills[(kind, b)].append(part)

    def _diff_bucket(self, b: int, spills: dict[tuple[str, int], Spill]) -> ChangeSet:
        lines = _read(spills[("lines", b)], LINE)
        rejected = _read(spills[("rejected", b)], REJECTED)
        existing, stored = self.state.bucket(b)
        return self._diff(lines, existing, stored, rejected)

    def emit(self, cs: ChangeSet, out: queue.Queue) -> None:
        """One chunk's (or bucket's) ChangeSet: new lines to the COPY, the rest to spills."""
        t = time.perf_counter()
        self.products = pl.concat([self.products, cs.new_products.select("cod_produto")])
        for name in PARTS:
            part = getattr(cs, name)
            self.artifacts[name].append(part)
            self.counts[name] += part.height
        self.staged["changes"].append(_changes(cs))
        self.staged["new_products"].append(cs.new_products.select(NEW_PRODUCT.names()))
        self.staged["consolidation"].append(cs.consolidation.select(CONSOLIDATION.names()))
        self.rows_to_write += cs.writes
        self.cancelled.append(cs.cancellations.get_column("numero_nf"))
        for key, values in cs.downstream.items():
            self.downstream.setdefault(key, []).append(pl.Series(key, values, dtype=pl.String))
        self.timings["artifacts"] += time.perf_counter() - t
        self.put(out, insert_rows(cs.inserts, self.now))

    def finish_orphans(self) -> None:
        """Held mode: existing rows of NFs no chunk returned are orphans too."""
        if self.state.buckets != 1:
            return
        met = pl.concat([pl.DataFrame(schema={"numero_nf": pl.String}), *self.met_nfs])
        rest = self.state.lines.join(met, on="numero_nf", how="anti")  # type: ignore[union-attr]
        returned = pl.concat([pl.DataFrame(schema={k: pl.String for k in KEY}), *self.several_keys]).drop_nulls()
        orphans = rest.join(returned, on=list(KEY), how="anti").select(*KEY, "status_nf").sort(KEY)
        self.artifacts["orphans"].append(orphans)
        self.counts["orphans"] += orphans.height

    def listed(self, key: str) -> list[str]:
        parts = self.downstream.get(key, [])
        return pl.concat(parts).unique().sort().to_list() if parts else []


def insert_rows(inserts: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """New lines as faturamento_produto rows (the audit columns of the run)."""
    return inserts.select(LINE_VALUES.names()).with_columns(
        pl.lit(now).alias("created_at"), pl.lit(now).alias("updated_at"),
        pl.lit(ACTOR).alias("created_by"), pl.lit(ACTOR).alias("updated_by"),
    )  # fmt: skip


def _with_orphans(cs: ChangeSet, orphans: pl.DataFrame) -> ChangeSet:
    return replace(cs, orphans=orphans)


def _read(spill: Spill, schema: pl.Schema) -> pl.DataFrame:
    spill.close()
    if not spill.file.exists():
        return pl.DataFrame(schema=schema)
    return pl.read_parquet(spill.file).cast(dict(schema))  # type: ignore[arg-type]


def run_full(settings: Settings, source: Source, writer: Writer, now: datetime, url: str, run_dir: Path,
             workdir: Path) -> FullOutcome:
    """Extract, transform, diff and write a full run chunk by chunk, inside the open transaction.

    `workdir` holds the spills (an empty temporary directory the caller removes
    after the run: the stock stage still reads the state's buckets).
    Not committed here; raises like a one-piece run (a `RejectRatioExceeded` once
    every chunk has been counted, a `DatabaseError` from any statement).
    """
    started = time.perf_counter()
    extraction = extraction_of(source, settings.chunk_size)
    extraction.chunks = Progress.start(extraction.n_chunks, extraction.total_lines).track(extraction.chunks, lambda b: b.frames[ODOO_LINE].height)
    several = nfs_on_several_moves(extraction.moves_index)
    extraction.moves_index = extraction.moves_index.clear()  # keys no longer needed
    plan_seconds = time.perf_counter() - started
    tmp = workdir
    t = time.perf_counter()
    state = read_full_state(url, settings.chunk_size, tmp / "state")
    read_seconds = time.perf_counter() - t
    run = _Run(settings, state, several, run_dir, tmp, now)
    log.info("full run: %d chunks of ~%d lines, %d existing lines in %d bucket(s)",
             extraction.n_chunks, settings.chunk_size, state.rows["lines"], state.buckets)  # fmt: skip
    raw: queue.Queue = queue.Queue(maxsize=1)
    out: queue.Queue = queue.Queue(maxsize=1)
    threads = [run.stage("extract", lambda: run.extract(extraction, raw)),
               run.stage("process", lambda: run.process(raw, out))]  # fmt: skip
    t = time.perf_counter()
    try:
        schema = arrow_schema(insert_rows(pl.DataFrame(schema=LINE_VALUES), now))
        batches = _insert_batches(run, out, schema)
        if settings.dry_run:
            written = sum(batch.num_rows for batch in batches)
        else:
            written = ingest_stream(writer, "faturamento_produto", schema, batches, temporary=False)
    except BaseException:
        run.stop.set()
        raise
    finally:
        for thread in threads:
            thread.join()
    if run.errors:
        raise run.errors[0]
    copy_seconds = time.perf_counter() - t
    run.finish_orphans()
    for spill in run.artifacts.values():
        spill.close()
    _check_rejects(run, settings)
    t = time.perf_counter()
    summary = None
    if not settings.dry_run:
        cancelled = pl.concat([pl.Series("numero_nf", [], dtype=pl.String), *run.cancelled]).unique().sort().to_list()
        summary = write_staged(writer, run.staged, cancelled, now, stock=settings.stock)
        summary.rows["faturamento_produto.insert"] = written
    return FullOutcome(
        counts={**run.counts, "odoo_lines": run.in_domain, "lines": run.lines, "merged_lines": run.merged,
                "existing_lines_read": state.rows["lines"]},
        rows_to_write=run.rows_to_write,
        reject_ratio=round(run.counts["rejected"] / max(run.in_domain, 1), 6),
        downstream={k: run.listed(k) for k in ("nfs_inserted", "nfs_changed", "nfs_to_reprocess", "cnpjs_touched")},
        max_write_date=run.max_write_date,
        odoo=extraction.stats.as_dict(),
        artifacts={p: s.file.name for p, s in run.artifacts.items()},
        chunks=extraction.n_chunks,
        buckets=state.buckets,
        reads=state.statements,
        run_dir=run_dir,
        state=state,
        apply_drift=settings.apply_drift,
        timings={"plan": round(plan_seconds, 4), "read_state": round(read_seconds, 4),
                 **{k: round(v, 4) for k, v in run.timings.items()},
                 "copy": round(copy_seconds, 4), "staged_writes": round(time.perf_counter() - t, 4)},  # fmt: skip
        written=summary.rows if summary else {},
        cascade=summary.cascade if summary else None,
    )


def _insert_batches(run: _Run, out: queue.Queue, schema) -> Iterator:
    """The new lines of every chunk as Arrow batches, in `schema`, as the process stage emits them."""
    while True:
        try:
            item = run.get(out)
        except _Stopped:
            if run.errors:
                raise run.errors[0] from None
            raise
        if item is _DONE:
            return
        yield from to_arrow(item).cast(schema).to_batches()


def _check_rejects(run: _Run, settings: Settings) -> None:
    rejected = run.counts["rejected"]
    if rejected / max(run.in_domain, 1) > settings.max_reject_ratio:
        top = sorted(run.reasons.items(), key=lambda kv: -kv[1])[:3]
        raise RejectRatioExceeded(rejected, run.in_domain, settings.max_reject_ratio, top)
