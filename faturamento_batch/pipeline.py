"""One sync run: lock → cursor → extract → transform → read state → diff → stock → write → artifacts.

The pipeline only wires the stages; each stage returns frames or a small
summary, and this module assembles the manifest from them. `run_stock` is the
stock stage alone (the `stock` command), with the same lock, artifacts,
manifest and run record.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path


from . import artifacts, events_stage, stock_stage
from .db.admin import init_db
from .db.connection import adbc_connect, database_url, with_session_options
from .db.lock import lock_and_read_cursor
from .db.privileges import GrantCheck
from .db.read import read_existing, read_existing_on
from .db.write import RunRecord, Writer
from .diff import ChangeSet, compute_changeset
from .errors import (
    ConfigError,
    DatabaseError,
    FaturamentoError,
    RejectRatioExceeded,
)
from .odoo.source import RawBatch, Source
from .settings import Settings
from .stock_stage import StockStage
from .write_retries import with_write_retries
from .transform import transform

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    manifest: dict
    changeset: ChangeSet | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def changed(self) -> int:
        return self.manifest.get("rows_to_write", 0)


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def make_source(settings: Settings) -> Source:
    if settings.source is not None:
        from .odoo.dataset import DatasetSource

        return DatasetSource(settings.source)
    if settings.odoo_url:
        from .odoo.extract import OdooSource

        return OdooSource.from_settings(settings)
    raise ConfigError("no Odoo to read from: pass `--source DATASET` or set `ODOO_URL` (and `ODOO_DB`, `ODOO_USER`, ...)")


class _Clock:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._t0 = time.perf_counter()

    def phase(self, name: str, started: float) -> None:
        self.timings[name] = round(time.perf_counter() - started, 4)

    def total(self) -> float:
        return round(time.perf_counter() - self._t0, 4)


def _lock(writer: Writer, settings: Settings, url):
    """Lock the job, check the role's grants and read the cursor; a database without the
    schema is set up when it is the embedded one, and refused with a clear message otherwise."""
    check = GrantCheck.build(include_stock=settings.stock, dry_run=settings.dry_run)
    try:
        return lock_and_read_cursor(writer, settings.job, settings.wait_seconds, check)
    except DatabaseError as exc:
        if "sync_state" not in str(exc) or "does not exist" not in str(exc):
            raise
        writer.rollback()
    if settings.database_url:
        raise ConfigError("the database has no `sync_state` table: run `faturamento-batch init-db` first")
    init_db(url)  # the embedded database is ours to set up
    return lock_and_read_cursor(writer, settings.job, settings.wait_seconds, check)


def _run_full_chunked(settings: Settings, source: Source, writer: Writer, start, since, url: str, run_dir: Path,
                      manifest: dict, clock: _Clock):
    """A full run by chunks (`full_run`), then the stock stage once over the NFs it touched,
    committed with its run record. Returns the read summaries (for the statement count)."""
    import tempfile

    from .full_run import run_full

    reads: list = []
    with tempfile.TemporaryDirectory(prefix="faturamento-full-") as workdir:
        t = time.perf_counter()
        outcome = run_full(settings, source, writer, start.now, url, run_dir, Path(workdir))
        reads.append(outcome)
        clock.phase("chunked", t)
        clock.timings.update(outcome.timings)
        manifest.update(
            counts=outcome.counts, rows_to_write=outcome.rows_to_write, reject_ratio=outcome.reject_ratio,
            downstream=outcome.downstream, odoo=outcome.odoo, artifacts=outcome.artifacts,
            chunks={"chunk_size": settings.chunk_size, "chunks": outcome.chunks, "state_buckets": outcome.buckets},
            cursor={**manifest["cursor"], "new": outcome.max_write_date or start.cursor},
        )  # fmt: skip
        stock = None
        if settings.stock:
            t = time.perf_counter()
            cs, existing = outcome.stock_inputs()
            stock = stock_stage.plan_for_sync(url, cs, existing, full=True)
            del cs, existing
            reads.append(stock)
            clock.phase("stock", t)
            _report_stock(manifest, run_dir, stock)
        events = events_stage.for_full_run(manifest["run_id"], settings.job, start.now, outcome, stock)
        events_stage.report(manifest, run_dir, events)
    if settings.dry_run:
        writer.rollback()
        manifest["status"] = "dry_run"
        return reads
    t = time.perf_counter()
    _finish_run(writer, settings, manifest, run_dir, clock, start.now, outcome.written, outcome.cascade, stock,
                outcome.counts, since, manifest["cursor"]["new"], events)  # fmt: skip
    clock.phase("write", t)
    return reads


def _finish_run(writer: Writer, settings: Settings, manifest: dict, run_dir: Path, clock: _Clock, now,
                written: dict, cascade, stock: StockStage | None, counts: dict, cursor_from, cursor_to,
                events=None) -> None:
    """The run's last writes and its commit: the stock stage's writes (last, so the logistics
    application's rows stay locked only until the commit), the events, the run record and cursor."""
    manifest["written"] = dict(written)
    if cascade is not None:
        manifest["artifacts"].update(artifacts.write_parts(run_dir, {"cascade": cascade}))
    if stock is not None:
        manifest["written"].update(stock.write(writer, now).written)
        manifest["stock"] = stock.manifest()
    if events is not None:  # issue 18 — the run path's `write_events(...)` hook step takes this call
        events_stage.write(writer, manifest, events, now, settings.events_retention_days)
    record = RunRecord(
        run_id=manifest["run_id"], job=settings.job, mode=manifest["mode"], started_at=now,
        cursor_from=cursor_from, cursor_to=cursor_to, counts=_record_counts(counts, stock),
        timings=dict(clock.timings), artifacts_dir=str(run_dir),
    )  # fmt: skip
    writer.finish(record)
    writer.commit()
    manifest["status"] = "success"


def run_sync(settings: Settings, source: Source | None = None) -> RunResult:
    """Run one sync. Raises a `FaturamentoError` when the run fails; nothing is written then.

    The raised exception carries the failed run's manifest as `exc.manifest`.
    """
    run_id = new_run_id()
    run_dir = settings.artifacts_dir / run_id
    clock = _Clock()
    started_at = datetime.now(timezone.utc).replace(tzinfo=None)
    manifest: dict = {
        "run_id": run_id,
        "job": settings.job,
        "status": "running",
        "dry_run": settings.dry_run,
        "apply_drift": settings.apply_drift,
        "started_at": started_at,
    }
    writer = None
    reads: list = []  # the read stages' summaries, for the statement count
    try:
        t = time.perf_counter()
        source = source or make_source(settings)
        manifest["source"] = settings.scrub(source.description)
        # One resolved setting for both drivers, with the job's name and its statement and lock bounds.
        url = with_session_options(database_url(settings), settings.statement_timeout, settings.lock_timeout)
        writer = Writer(adbc_connect(url))
        writer.role = url.get("user") or ""
        clock.phase("connect", t)

        t = time.perf_counter()
        start = _lock(writer, settings, url)
        clock.phase("lock", t)
        full = settings.full or (start.cursor is None and settings.since is None)
        since = None if full else (settings.since or start.cursor - settings.overlap)
        manifest.update(mode="full" if full else "incremental", cursor={"stored": start.cursor, "since": since})
        log.info("run %s: %s sync from %s", run_id, manifest["mode"], manifest["source"])
        if full and settings.chunk_size > 0:
            # The chunks stream from Odoo into the one write transaction, so a retry reads Odoo again.
            reads.extend(with_write_retries(
                settings, manifest, writer,
                lambda: _run_full_chunked(settings, source, writer, start, since, url, run_dir, manifest, clock),
            ))  # fmt: skip
            return RunResult(run_id, run_dir, manifest, None, clock.timings)

        t = time.perf_counter()
        log.info("extract: reading Odoo")
        batch: RawBatch = source.extract(since)
        clock.phase("extract", t)
        manifest["odoo"] = batch.stats.as_dict()
        log.info("extracted %d lines in %.2fs", batch.frames["account.move.line"].height, clock.timings["extract"])

        t = time.perf_counter()
        result = transform(batch.frames)
        clock.phase("transform", t)
        lines = result.lines
        rejected_ratio = result.rejected.height / max(result.in_domain, 1)

        def read_diff_write() -> ChangeSet:
            """The post-extract part, one write transaction: read state → diff → write → commit."""
            t = time.perf_counter()
            nfs = lines.get_column("numero_nf").unique().to_list()
            codes = lines.get_column("cod_produto").unique().to_list()
            # Incremental batches are small: read on the open connection, not three new ones.
            state = read_existing(url, nfs, codes, full=True) if full else read_existing_on(writer.cur, nfs, codes)
            reads.append(state)
            clock.phase("read_state", t)

            t = time.perf_counter()
            cs = compute_changeset(
                lines, state.lines, state.products, state.consolidation,
                full=full, apply_drift=settings.apply_drift, rejected=result.rejected,
            )  # fmt: skip
            clock.phase("diff", t)
            counts = {
                **cs.counts(),
                "odoo_lines": result.in_domain,
                "lines": lines.height,
                "merged_lines": result.merged,
                "existing_lines_read": state.lines.height,
            }
            manifest.update(
                counts=counts,
                rows_to_write=cs.writes,
                reject_ratio=round(rejected_ratio, 6),
                downstream=cs.downstream,
                cursor={**manifest["cursor"], "new": batch.max_write_date or start.cursor},
            )
            t = time.perf_counter()
            manifest["artifacts"] = artifacts.write_parts(run_dir, cs.parts())
            clock.phase("artifacts", t)

            if rejected_ratio > settings.max_reject_ratio:
                top = cs.rejected.group_by("reason").len().sort("len", descending=True).head(3)
                raise RejectRatioExceeded(
                    result.rejected.height, result.in_domain, settings.max_reject_ratio,
                    list(zip(top["reason"].to_list(), top["len"].to_list())),
                )  # fmt: skip

            stock = None
            if settings.stock:
                t = time.perf_counter()
                stock = stock_stage.plan_for_sync(url, cs, state.lines, full=full)
                reads.append(stock)
                clock.phase("stock", t)
                _report_stock(manifest, run_dir, stock)
            events = events_stage.for_sync(run_id, settings.job, start.now, cs, state.lines, stock)
            events_stage.report(manifest, run_dir, events)

            t = time.perf_counter()
            if settings.dry_run:
                writer.rollback()
                manifest["status"] = "dry_run"
            else:
                summary = writer.write(cs, start.now, stock=settings.stock)
                _finish_run(writer, settings, manifest, run_dir, clock, start.now, summary.rows, summary.cascade,
                            stock, counts, since, manifest["cursor"]["new"], events)  # fmt: skip
            clock.phase("write", t)
            return cs

        cs = with_write_retries(settings, manifest, writer, read_diff_write)
        return RunResult(run_id, run_dir, manifest, cs, clock.timings)
    except Exception as exc:  # a bug fails the run the same way: rolled back, recorded
        _fail(writer, manifest, settings, exc)
        raise
    finally:
        _close(writer, manifest, reads, clock, run_dir)


def _report_stock(manifest: dict, run_dir: Path, stock: StockStage) -> None:
    manifest["stock"] = stock.manifest()
    manifest["rows_to_write"] = manifest.get("rows_to_write", 0) + stock.rows_to_write
    manifest.setdefault("artifacts", {}).update(artifacts.write_parts(run_dir, stock.parts()))


def _record_counts(counts: dict, stock: StockStage | None) -> dict:
    """The counts `sync_runs` keeps: the ChangeSet's, and the stock stage's under `stock`."""
    if stock is None:
        return counts
    section = stock.manifest()
    return {**counts, "stock": {k: v for k, v in section.items() if isinstance(v, (int, dict)) and k != "seconds"}}


def _fail(writer: Writer | None, manifest: dict, settings: Settings, exc: Exception) -> None:
    if writer is not None:
        writer.rollback()
    manifest["status"] = "failed"
    if "written" in manifest:  # what the statements did before the failure; all of it rolled back
        manifest["rolled_back"] = manifest.pop("written")
    prefix = "" if isinstance(exc, FaturamentoError) else "internal error: "
    manifest["error"] = settings.scrub(f"{prefix}{exc}")
    manifest["error_type"] = type(exc).__name__
    manifest["exit_code"] = exc.exit_code if isinstance(exc, FaturamentoError) else 1
    if getattr(exc, "sqlstate", None):
        manifest["sqlstate"] = exc.sqlstate
    # The CLI writes the metrics of failed runs too; `_close` completes this dict.
    with contextlib.suppress(AttributeError):
        exc.manifest = manifest  # type: ignore[attr-defined]


def _close(writer: Writer | None, manifest: dict, reads: list, clock: _Clock, run_dir: Path) -> None:
    """Count the statements, close the connection (releasing the lock), write the manifest."""
    if writer is not None:
        manifest["sql_statements"] = {
            "writer": writer.statements,
            "reads": sum(r.statements for r in reads),
        }
        manifest["sql_statements"]["total"] = sum(manifest["sql_statements"].values())
        writer.close()
    manifest["timings"] = {**clock.timings, "total": clock.total()}
    manifest["peak_memory_mb"] = peak_memory_mb()
    manifest["finished_at"] = datetime.now(timezone.utc).replace(tzinfo=None)
    try:
        artifacts.write_manifest(run_dir, manifest)
    except OSError as exc:
        log.error("could not write the run manifest to %s: %s", run_dir, exc)


def run_stock(settings: Settings) -> RunResult:
    """The stock stage alone (`stock`): the pending NFs, or `settings.stock_nfs`; no Odoo.

    Same lock as `sync` (the job's), same artifacts and manifest, a `sync_runs`
    row of mode `stock`; the cursor is left as it is. Raises a `FaturamentoError`
    when the run fails; nothing is written then.
    """
    run_id = new_run_id()
    run_dir = settings.artifacts_dir / run_id
    clock = _Clock()
    started_at = datetime.now(timezone.utc).replace(tzinfo=None)
    manifest: dict = {"run_id": run_id, "job": settings.job, "status": "running", "mode": "stock",
                      "dry_run": settings.dry_run, "started_at": started_at, "nfs": list(settings.stock_nfs)}  # fmt: skip
    writer = None
    reads: list = []
    try:
        t = time.perf_counter()
        url = with_session_options(database_url(settings), settings.statement_timeout, settings.lock_timeout)
        writer = Writer(adbc_connect(url))
        writer.role = url.get("user") or ""
        clock.phase("connect", t)
        t = time.perf_counter()
        start = _lock(writer, settings, url)
        clock.phase("lock", t)
        log.info("run %s: stock stage for %s", run_id, ", ".join(settings.stock_nfs) or "the pending NFs")
        t = time.perf_counter()
        stock = stock_stage.plan_for_nfs(url, list(settings.stock_nfs))
        reads.append(stock)
        clock.phase("stock", t)
        _report_stock(manifest, run_dir, stock)
        events = events_stage.for_stock(run_id, settings.job, start.now, stock)
        events_stage.report(manifest, run_dir, events)
        t = time.perf_counter()
        if settings.dry_run:
            writer.rollback()
            manifest["status"] = "dry_run"
        else:
            _finish_run(writer, settings, manifest, run_dir, clock, start.now, {}, None, stock, {}, None, None, events)
        clock.phase("write", t)
        return RunResult(run_id, run_dir, manifest, None, clock.timings)
    except Exception as exc:
        _fail(writer, manifest, settings, exc)
        raise
    finally:
        _close(writer, manifest, reads, clock, run_dir)
