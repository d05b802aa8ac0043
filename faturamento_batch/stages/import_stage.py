"""The import stage of a run: extract → transform → diff, chunk by chunk of whole NFs (DESIGN §8).

Every mode goes through here: a full run pulls its chunks from the source's
chunked extraction; an incremental run (and `--chunk-size 0`) is a single chunk.
Extraction runs in a thread one chunk ahead (a queue of one item), so at most a
couple of chunks are alive at once, whatever the size of the run.

The diff of a chunk needs the existing rows of its NFs. An incremental run reads
them for its one chunk on the run's connection. A full run holds the tables when
they hold at most a chunk's worth of rows (`db.full_state`) and diffs each chunk
as it comes; orphans are then the held rows of NFs no chunk returned, plus
per-chunk orphans. When they hold more, the transformed chunks are spilled to
buckets by a hash of `numero_nf`, and each bucket is diffed against the same
bucket of existing rows (a hash join on disk): exact and bounded.

Nothing is written to the database here: every part of the ChangeSet is spilled
(the run's Parquet artifacts, and the staged frames in the run's work
directory), and `stages.write_run` sends them — replayable, e.g. without some NFs.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from ..db.full_state import FullState, bucket_of, read_batch_state
from ..db.write import _changes
from ..db.write_stream import Spill
from ..diff import ChangeSet, compute_changeset
from ..errors import RejectRatioExceeded
from ..odoo.chunks import ChunkedExtraction
from ..events import PER_NF, SUMMARY_COLUMNS, per_nf
from ..schemas import (CONSOLIDATION, EXISTING_CONSOLIDATION, EXISTING_LINE, EXISTING_PRODUCT, KEY, LINE, NEW_PRODUCT, REJECTED, STATUS_CHANGE,
                       empty)
from ..odoo.fields import LINE as ODOO_LINE
from ..progress import Progress
from ..transform import POLICY_REASONS, TransformResult, nfs_on_several_moves, transform

log = logging.getLogger(__name__)

_DONE = object()
PARTS = ("inserts", "status_changes", "drift", "cancellations", "reactivations", "new_products",
         "consolidation", "orphans", "rejected", "downstream")  # fmt: skip
STAGED = ("changes", "new_products", "consolidation")
# Beside the staged writes: each NF's Odoo moves, for the quarantine's retries by move id (§12);
# the new lines summed per NF, chunk by chunk, for the run's events (§11).
SIDE = ("moves", "insert_summary")
DOWNSTREAM_KINDS = ("nfs_inserted", "nfs_changed", "nfs_to_reprocess")


class _Stopped(Exception):
    """The other side failed: this one stops without adding an error of its own."""


@dataclass(frozen=True)
class ImportSummary:
    """What the import stage reports: counts, timings, statements (its reads)."""

    counts: dict[str, int]
    rows_to_write: int
    reject_ratio: float
    reject_reasons: tuple[tuple[str, int], ...]  # the top three, with their counts
    downstream: dict[str, int]
    max_write_date: datetime | None
    odoo: dict
    chunks: int
    buckets: int
    statements: int
    timings: dict[str, float]


@dataclass
class Imported:
    """The stage's outcome: its summary, and the spills `write_run` sends."""

    summary: ImportSummary
    parts: dict[str, Spill]  # run artifacts: <run_dir>/<part>.parquet
    staged: dict[str, Spill]  # changes, new_products, consolidation: what the staged writes send
    state: FullState
    apply_drift: bool
    run_dir: Path

    def check_rejects(self, max_ratio: float) -> None:
        """Too many rejected lines abort the run before it writes (DESIGN §7): an upstream change."""
        s = self.summary
        # Policy rejections (`no_origin`, DESIGN §10) are not bad data: they stay out of the ratio.
        rejected = s.counts["rejected"] - s.counts["policy_rejected"]
        considered = s.counts["odoo_lines"] - s.counts["policy_rejected"]
        if rejected / max(considered, 1) > max_ratio:
            raise RejectRatioExceeded(rejected, considered, max_ratio, list(s.reject_reasons))

    @property
    def cancelled(self) -> pl.DataFrame:
        """schemas.NF_LIST: the NFs the run cancels (the cascade's input)."""
        return self.part("cancellations").select("numero_nf").unique().sort("numero_nf")

    def read_nfs(self) -> pl.DataFrame:
        """schemas.NF_LIST: every NF of the lines the import read from Odoo (kept or rejected), from
        the `moves` spill (empty once the run's work directory is gone)."""
        spill = self.staged.get("moves")
        if spill is None or not spill.rows or not spill.file.exists():
            return pl.DataFrame(schema={"numero_nf": pl.String})
        spill.close()
        return pl.scan_parquet(spill.file).select("numero_nf").drop_nulls().unique().sort("numero_nf").collect()

    def insert_summary(self) -> pl.DataFrame:
        """The new lines summed per NF (`events.per_nf`), chunk by chunk."""
        spill = self.staged.get("insert_summary")
        if spill is None or not spill.rows:
            return pl.DataFrame(schema=PER_NF)
        spill.close()
        return pl.read_parquet(spill.file)

    def balance_nfs(self) -> pl.DataFrame:
        """schemas.NF_LIST: the NFs whose orders get their balance recomputed (§10) besides the
        cancelled ones: those with new lines or a status change."""
        found = [self.part(p, ["numero_nf"]) for p in ("inserts", "status_changes")]
        return pl.concat(found).unique().sort("numero_nf")

    def part(self, name: str, columns: list[str] | None = None) -> pl.DataFrame:
        return pl.read_parquet(self.parts[name].file, columns=columns)

    def part_batches(self, name: str, columns: list[str]) -> Iterator[pl.DataFrame]:
        """A part, `columns` only, one Parquet batch at a time (a first run's every line: never whole)."""
        spill = self.parts[name]
        spill.close()
        if spill.rows and spill.file.exists():
            for batch in pq.ParquetFile(spill.file).iter_batches(batch_size=65_536, columns=columns):
                yield pl.from_arrow(batch)  # type: ignore[misc]

    def stock_inputs(self) -> tuple[ChangeSet, pl.DataFrame]:
        """What the stock stage needs besides the new lines (`part_batches("inserts", …)`), read
        back from the spills: the NFs with new lines (in `inserts`, `numero_nf` only), status
        changes, drift, cancellations, reactivations, and the existing rows of the NFs the run
        inserted, changed or reactivated."""
        inserted = pl.scan_parquet(self.parts["inserts"].file).select("numero_nf").unique().collect() \
            if self.parts["inserts"].rows else pl.DataFrame(schema={"numero_nf": pl.String})
        status = self.part("status_changes").cast(dict(STATUS_CHANGE))  # type: ignore[arg-type]
        drift, reactivations = self.part("drift"), self.part("reactivations")
        nfs = pl.concat([inserted, status.select("numero_nf"), drift.select("numero_nf"), reactivations]).unique()
        existing = pl.concat([self.state.bucket_lines(b).join(nfs, on="numero_nf", how="semi") for b in range(self.state.buckets)])
        cs = ChangeSet(
            inserts=inserted, status_changes=status, drift=drift, cancellations=self.part("cancellations"),
            reactivations=reactivations, new_products=pl.DataFrame(schema=NEW_PRODUCT),
            consolidation=pl.DataFrame(schema=CONSOLIDATION), orphans=pl.DataFrame(), rejected=pl.DataFrame(schema=REJECTED),
            apply_drift=self.apply_drift,
        )  # fmt: skip
        return cs, existing


class _Chunks:
    """The chunks as they are diffed: totals and spills (keys and counts only in memory)."""

    def __init__(self, state: FullState | None, several: pl.Series, *, full: bool, apply_drift: bool,
                 run_dir: Path, tmp: Path):  # fmt: skip
        self.state, self.several, self.full, self.apply_drift, self.tmp = state, several, full, apply_drift, tmp
        run_dir.mkdir(parents=True, exist_ok=True)
        self.parts = {p: Spill(run_dir / f"{p}.parquet") for p in PARTS}
        self.staged = {p: Spill(tmp / f"staged-{p}.parquet") for p in (*STAGED, *SIDE)}
        self.products = state.products.select("cod_produto") if state is not None else None
        self.counts: dict[str, int] = dict.fromkeys(PARTS, 0)
        self.reasons: dict[str, int] = {}
        self.in_domain = self.lines = self.merged = self.rows_to_write = 0
        self.met_nfs: list[pl.DataFrame] = []  # held full state: NFs of existing rows some chunk returned
        self.several_keys: list[pl.DataFrame] = []  # keys returned for NFs on several moves
        self.timings: dict[str, float] = {"extract": 0.0, "transform": 0.0, "diff": 0.0, "artifacts": 0.0}

    def process(self, batches: Callable[[], object], read_state: Callable[[pl.DataFrame], FullState]) -> None:
        """Transform and diff every chunk `batches()` hands over (until `_DONE`)."""
        spills: dict[tuple[str, int], Spill] = {}
        while (batch := batches()) is not _DONE:
            t = time.perf_counter()
            result = transform(batch.frames, self.several)  # type: ignore[attr-defined]
            del batch
            self.timings["transform"] += time.perf_counter() - t
            self._count(result)
            if self.state is None:  # incremental: the existing rows of this (only) chunk's NFs
                self.state = read_state(result.lines)
                self.products = self.state.products.select("cod_produto")
            if self.state.buckets == 1:
                self.emit(self._diff_held(result))
            else:
                if not spills:
                    spills = {(kind, b): Spill(self.tmp / f"in-{kind}-{b}.parquet")
                              for kind in ("lines", "rejected") for b in range(self.state.buckets)}  # fmt: skip
                self._spill_by_bucket(result, spills)
        for b in range(self.state.buckets if spills else 0):  # type: ignore[union-attr]
            self.emit(self._diff_bucket(b, spills))

    def _count(self, result: TransformResult) -> None:
        self.in_domain += result.in_domain
        self.lines += result.lines.height
        self.merged += result.merged
        by_reason = result.rejected.group_by("reason").len()
        for reason, n in zip(by_reason["reason"].to_list(), by_reason["len"].to_list()):  # a handful of reasons
            self.reasons[reason] = self.reasons.get(reason, 0) + n

    def _diff(self, lines: pl.DataFrame, existing: pl.DataFrame, consolidation: pl.DataFrame, rejected: pl.DataFrame) -> ChangeSet:
        t = time.perf_counter()
        cs = compute_changeset(lines, existing, self.products, consolidation, full=self.full,
                               apply_drift=self.apply_drift, rejected=rejected)  # fmt: skip
        self.staged["moves"].append(pl.concat([lines.select("numero_nf", "odoo_move_id"),
                                               rejected.select("numero_nf", "odoo_move_id")]).unique())  # fmt: skip
        self.timings["diff"] += time.perf_counter() - t
        return cs

    def _diff_held(self, result: TransformResult) -> ChangeSet:
        state = self.state
        nfs = pl.concat([result.lines.select("numero_nf"), result.rejected.select("numero_nf")]).drop_nulls().unique()
        existing = state.lines.join(nfs, on="numero_nf", how="semi")  # type: ignore[union-attr]
        stored = state.consolidation.join(nfs, on="numero_nf", how="semi")  # type: ignore[union-attr]
        cs = self._diff(result.lines, existing, stored, result.rejected)
        if not self.full:
            return cs
        # An NF on several moves may have lines in other chunks: its orphans wait for the end.
        several = pl.col("numero_nf").is_in(self.several.implode())
        self.met_nfs.append(existing.select("numero_nf").unique().filter(~several))
        self.several_keys.append(result.rejected.filter(several).select(KEY))
        return replace(cs, orphans=cs.orphans.filter(~several))

    def _spill_by_bucket(self, result: TransformResult, spills: dict[tuple[str, int], Spill]) -> None:
        for kind, frame in (("lines", result.lines), ("rejected", result.rejected)):
            tagged = frame.with_columns(bucket_of(pl.col("numero_nf"), self.state.buckets).fill_null(0).alias("_b"))  # type: ignore[union-attr]
            for (b,), part in tagged.partition_by("_b", as_dict=True, include_key=False).items():
                spills[(kind, b)].append(part)

    def _diff_bucket(self, b: int, spills: dict[tuple[str, int], Spill]) -> ChangeSet:
        lines = _read(spills[("lines", b)], LINE)
        rejected = _read(spills[("rejected", b)], REJECTED)
        existing, stored = self.state.bucket(b)  # type: ignore[union-attr]
        return self._diff(lines, existing, stored, rejected)

    def emit(self, cs: ChangeSet) -> None:
        """One chunk's (or bucket's) ChangeSet, to the spills."""
        t = time.perf_counter()
        self.products = pl.concat([self.products, cs.new_products.select("cod_produto")])  # type: ignore[list-item]
        for name in PARTS:
            part = getattr(cs, name)
            self.parts[name].append(part)
            self.counts[name] += part.height
        self.staged["changes"].append(_changes(cs))
        self.staged["new_products"].append(cs.new_products.select(NEW_PRODUCT.names()))
        self.staged["consolidation"].append(cs.consolidation.select(CONSOLIDATION.names()))
        if cs.inserts.height:
            self.staged["insert_summary"].append(per_nf(cs.inserts.lazy().select(SUMMARY_COLUMNS)).collect())
        self.rows_to_write += cs.writes
        self.timings["artifacts"] += time.perf_counter() - t

    def finish_orphans(self) -> None:
        """Held full state: existing rows of NFs no chunk returned are orphans too."""
        if not self.full or self.state is None or self.state.buckets != 1:
            return
        met = pl.concat([pl.DataFrame(schema={"numero_nf": pl.String}), *self.met_nfs])
        rest = self.state.lines.join(met, on="numero_nf", how="anti")  # type: ignore[union-attr]
        returned = pl.concat([pl.DataFrame(schema={k: pl.String for k in KEY}), *self.several_keys]).drop_nulls()
        orphans = rest.join(returned, on=list(KEY), how="anti").select(*KEY, "status_nf").sort(KEY)
        self.parts["orphans"].append(orphans)
        self.counts["orphans"] += orphans.height


def _read(spill: Spill, schema: pl.Schema) -> pl.DataFrame:
    spill.close()
    if not spill.file.exists():
        return pl.DataFrame(schema=schema)
    return pl.read_parquet(spill.file).cast(dict(schema))  # type: ignore[arg-type]


def _downstream_counts(parts: dict[str, Spill]) -> dict[str, int]:
    """The downstream part as counts (NFs per kind, customers touched): the manifest keeps these."""
    frame = pl.read_parquet(parts["downstream"].file).unique()
    counts = {k: frame.filter(pl.col("kind") == k).get_column("numero_nf").n_unique() for k in DOWNSTREAM_KINDS}
    touched = frame.filter(pl.col("kind").is_in(["nfs_inserted", "nfs_changed"]) & (pl.col("cnpj_cliente") != ""))
    counts["cnpjs_touched"] = touched.get_column("cnpj_cliente").drop_nulls().n_unique()
    return counts


def run_import(extraction: ChunkedExtraction, state: Callable[[], FullState] | None,
               read_batch_state_on, *, full: bool, apply_drift: bool, run_dir: Path, workdir: Path) -> Imported:  # fmt: skip
    """Extract, transform and diff every chunk of `extraction`, spilling every part.

    `state()`: a full run's existing state (`db.full_state.read_full_state`), read
    once extraction has been planned; None for an incremental run, whose state is
    read for its one chunk on the run's connection (`read_batch_state_on`, a cursor).
    The caller checks the reject ratio (`Imported.check_rejects`) once the counts are known.
    """
    started = time.perf_counter()
    several = nfs_on_several_moves(extraction.moves_index)
    extraction.moves_index = extraction.moves_index.clear()  # keys no longer needed
    plan_seconds = time.perf_counter() - started
    t = time.perf_counter()
    held = state() if state is not None else None
    read_seconds = time.perf_counter() - t
    chunks = _Chunks(held, several, full=full, apply_drift=apply_drift, run_dir=run_dir, tmp=workdir)
    if held is not None:
        log.info("import: %d chunk(s), %d existing lines in %d bucket(s)", extraction.n_chunks, held.rows["lines"], held.buckets)

    def read_state(lines: pl.DataFrame) -> FullState:
        nfs = lines.get_column("numero_nf").unique().to_list()
        codes = lines.get_column("cod_produto").unique().to_list()
        return read_batch_state(read_batch_state_on, nfs, codes)

    # Each chunk reported as it lands (k of N, lines, rate, ETA); one chunk reports nothing.
    extraction.chunks = Progress.start(extraction.n_chunks, extraction.total_lines).track(
        extraction.chunks, lambda b: b.frames[ODOO_LINE].height
    )
    raw: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    errors: list[BaseException] = []
    max_write_date: list[datetime] = []

    def extract() -> None:
        try:
            for batch in _timed(extraction, chunks.timings):
                if batch.max_write_date:
                    max_write_date.append(batch.max_write_date)
                _put(raw, batch, stop)
            _put(raw, _DONE, stop)
        except _Stopped:
            pass
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    thread = threading.Thread(target=extract, name="import-extract", daemon=True)
    thread.start()
    try:
        chunks.process(lambda: _get(raw, stop, errors), read_state)
    finally:
        stop.set()
        thread.join()
    if errors:
        raise errors[0]
    chunks.finish_orphans()
    for spill in (*chunks.parts.values(), *chunks.staged.values()):
        spill.close()
    policy = sum(n for reason, n in chunks.reasons.items() if reason in POLICY_REASONS)
    rejected = chunks.counts["rejected"] - policy
    final = chunks.state
    counts = {name: n for name, n in chunks.counts.items() if name != "downstream"}
    summary = ImportSummary(
        counts={**counts, "odoo_lines": chunks.in_domain, "lines": chunks.lines, "merged_lines": chunks.merged,
                "policy_rejected": policy, "existing_lines_read": final.rows["lines"] if final else 0},  # fmt: skip
        rows_to_write=chunks.rows_to_write,
        reject_ratio=round(rejected / max(chunks.in_domain - policy, 1), 6),
        reject_reasons=tuple(sorted(((r, n) for r, n in chunks.reasons.items() if r not in POLICY_REASONS),
                                    key=lambda kv: -kv[1])[:3]),  # fmt: skip
        downstream=_downstream_counts(chunks.parts),
        max_write_date=max(max_write_date) if max_write_date else None,
        odoo=extraction.stats.as_dict(),
        chunks=extraction.n_chunks,
        buckets=final.buckets if final else 1,
        statements=final.statements if final else 0,
        timings=_ordered(chunks.timings, read_seconds + (final.seconds if state is None and final else 0), plan_seconds,
                         extraction.n_chunks),  # fmt: skip
    )
    nothing = FullState(empty(EXISTING_PRODUCT), 1, empty(EXISTING_LINE), empty(EXISTING_CONSOLIDATION))
    return Imported(summary, chunks.parts, chunks.staged, final or nothing, apply_drift, run_dir)


def _ordered(timings: dict[str, float], read_state: float, plan: float, n_chunks: int) -> dict[str, float]:
    """The stage's phases in the order a reader expects; `plan` (cutting Odoo into chunks) when there are chunks."""
    out = {"extract": timings["extract"], "transform": timings["transform"], "read_state": read_state,
           "diff": timings["diff"], "artifacts": timings["artifacts"]}  # fmt: skip
    if n_chunks > 1:
        out["plan"] = plan
    return {k: round(v, 4) for k, v in out.items()}


def _timed(extraction: ChunkedExtraction, timings: dict[str, float]):
    chunks = iter(extraction.chunks)
    while True:
        t = time.perf_counter()
        batch = next(chunks, None)
        timings["extract"] += time.perf_counter() - t
        if batch is None:
            return
        yield batch


def _put(q: queue.Queue, item, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.2)
            return
        except queue.Full:
            continue
    raise _Stopped


def _get(q: queue.Queue, stop: threading.Event, errors: list[BaseException]):
    while True:
        try:
            return q.get(timeout=0.2)
        except queue.Empty:
            if errors:
                raise errors[0] from None
            if stop.is_set():
                raise _Stopped from None
