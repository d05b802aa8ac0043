"""One run, read top to bottom (DESIGN §2, §7, §8): the same path for every mode.

    connect → lock (cursor, grants, features)
    → import stage: extract → transform → diff, chunk by chunk, every part spilled
      (an incremental run, and `--chunk-size 0`, is a full run's single chunk)
    → stock stage: plan (§9)          (`stock`: this stage alone, no import)
    → events: the run's downstream events, built from its parts (§11)
    → write_run: COPY + staged writes, cascade, consolidation, stock writes, events
      (an NF PostgreSQL refuses is left out and quarantined: `quarantine`, §12)
    → run record + cursor → commit    (all in one transaction; retried on lock
                                       timeouts and deadlocks: `write_retries`)
    → manifest, assembled once from the stages' summaries

`Run` owns what a run accumulates; each stage hands back a small summary and
`Run.manifest()` turns them into `manifest.json` at the end, failed runs included.
"""

from __future__ import annotations

import logging
import resource
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from . import artifacts, events_stage, quarantine
from .events import amend, counts, extra_events
from .db.connection import adbc_connect, session_target
from .db.features import Features
from .db.full_state import read_full_state
from .db.lock import lock_and_read_cursor
from .db.privileges import GrantCheck
from .db.quarantine import open_frame
from .db.read_stock import CatchUp
from .db.write import RunRecord, Writer
from .errors import ConfigError, DatabaseError, FaturamentoError
from .odoo.chunks import ChunkedExtraction, one_chunk
from .odoo.source import Source
from .settings import Settings
from .stages.import_stage import Imported, run_import
from .stages.stock_stage import StockStage, plan_for_nfs, plan_for_sync
from .stages.write_run import WriteSummary, write_run
from .write_retries import with_write_retries

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    manifest: dict
    changeset: None = None  # the ChangeSet is in the run's Parquet parts (`artifacts.read_part`)
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

        return DatasetSource(settings.source, settings.rules)
    if settings.odoo_url:
        from .odoo.extract import OdooSource

        return OdooSource.from_settings(settings)
    raise ConfigError("no Odoo to read from: pass `--source DATASET` or set `ODOO_URL` (and `ODOO_DB`, `ODOO_USER`, ...)")


def extraction_of(source: Source, chunk_lines: int) -> ChunkedExtraction:
    """The source's chunked extraction; a source that cannot chunk gives one chunk."""
    if hasattr(source, "extract_chunks"):
        return source.extract_chunks(chunk_lines)  # type: ignore[attr-defined]
    return one_chunk(source.extract(None))


@dataclass
class Run:
    """What one run accumulates, from its lock to its manifest."""

    settings: Settings
    mode: str  # "sync" until the lock tells full from incremental; "stock"
    id: str = field(default_factory=new_run_id)
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc).replace(tzinfo=None))
    timings: dict[str, float] = field(default_factory=dict)
    source: str | None = None
    now: datetime | None = None  # the database's clock at the lock: every audit column
    cursor: datetime | None = None  # the stored cursor
    since: datetime | None = None
    features: Features | None = None  # the optional schema parts the lock found (§10)
    open_quarantine: pl.DataFrame | None = None  # the job's quarantined NFs (db.quarantine.open_frame)
    quarantine_retry: dict = field(default_factory=dict)
    imported: Imported | None = None
    stock: StockStage | None = None
    written: WriteSummary | None = None
    events: pl.DataFrame | None = None  # the run's events (events.EVENTS_PART), before the quarantine
    refused: quarantine.SyncWrite | None = None  # what the quarantine left out and released
    _read_nfs: pl.DataFrame | None = None  # the NFs the import read (per attempt)
    parts: dict[str, str] = field(default_factory=dict)  # artifact part → file name
    status: str = "running"
    attempts: int = 0
    retries: list[dict] = field(default_factory=list)
    error: BaseException | None = None
    writer_statements: int = 0
    _t0: float = field(default_factory=time.perf_counter)

    @property
    def dir(self) -> Path:
        return self.settings.artifacts_dir / self.id

    def nfs(self) -> pl.Series:
        """Every NF the run writes for (read back from its parts): the quarantine's suspects,
        gathered only when PostgreSQL refused a write."""
        found = [self.stock.plan.nfs()] if self.stock is not None else []
        if self.imported is not None:
            found += [self.imported.part(p, ["numero_nf"]).get_column("numero_nf")
                      for p in ("inserts", "status_changes", "drift", "cancellations", "reactivations", "consolidation")]
        return pl.concat([pl.Series("numero_nf", [], dtype=pl.String), *found]).drop_nulls().unique().sort()

    def released(self, exclude: pl.DataFrame | None) -> pl.DataFrame:
        """Quarantined NFs this run read from Odoo again and does not leave out: they went through
        the whole path (import, stock stage, events) and are released — also when nothing of them
        differs any more. An NF the stock stage alone looks at is not: its refused change may be
        the import's, which only a read from Odoo brings back."""
        open_nfs = self.open_quarantine
        if open_nfs is None or open_nfs.height == 0 or self.imported is None:
            return pl.DataFrame(schema={"numero_nf": pl.String})
        if self._read_nfs is None:  # once per attempt: the NFs of the lines the import read
            self._read_nfs = self.imported.read_nfs()
        back = open_nfs.select("numero_nf").join(self._read_nfs, on="numero_nf", how="semi")
        return back if exclude is None else back.join(exclude.select("numero_nf"), on="numero_nf", how="anti")

    def events_to_write(self, exclude: pl.DataFrame | None) -> pl.DataFrame | None:
        """The run's events as they commit: without `exclude`'s NFs, with their `nf_quarantined` and
        the released NFs' `nf_released` (§11, §12)."""
        if self.events is None:
            return None
        released = self.released(exclude)
        if (exclude is None or exclude.height == 0) and released.height == 0:
            return self.events
        extra = [extra_events(released, "nf_released")]
        if exclude is not None:  # with the order and customer the NF's own events carried
            who = self.events.select("numero_nf", "origem", "cnpj_cliente").unique("numero_nf", keep="first")
            extra.append(extra_events(exclude.select("numero_nf").join(who, on="numero_nf", how="left"), "nf_quarantined"))
        return amend(self.events, self.id, self.settings.job, self.now, leave_out=exclude, extra=extra)

    def timed(self, phase: str, started: float) -> None:
        self.timings[phase] = round(self.timings.get(phase, 0.0) + time.perf_counter() - started, 4)

    def reads(self) -> int:
        """SQL statements the read stages sent on their own connections or cursors."""
        return (self.imported.summary.statements if self.imported else 0) + (self.stock.statements if self.stock else 0)

    def counts(self) -> dict:
        return dict(self.imported.summary.counts) if self.imported else {}

    def cursor_to(self) -> datetime | None:
        new = self.imported.summary.max_write_date if self.imported else None
        return new or self.cursor

    def record(self) -> RunRecord:
        """The `sync_runs` row: the ChangeSet's counts, and the stock stage's under `stock`."""
        counts = self.counts()
        if self.refused is not None and self.refused.outcome.refused.height:  # a healthy run's counts stay as they were
            counts["quarantined_nfs"] = self.refused.outcome.refused.height
        if self.stock is not None:
            section = self.stock.manifest()
            counts["stock"] = {k: v for k, v in section.items() if isinstance(v, (int, dict)) and k != "seconds"}
        return RunRecord(
            run_id=self.id, job=self.settings.job, mode=self.mode, started_at=self.now,  # type: ignore[arg-type]
            cursor_from=self.since if self.mode != "stock" else None,
            cursor_to=self.cursor_to() if self.mode != "stock" else None,
            counts=counts, timings=dict(self.timings), artifacts_dir=str(self.dir),
        )  # fmt: skip

    def manifest(self) -> dict:
        """`manifest.json`, assembled once from what the stages reported."""
        s = self.settings
        mode = None if self.mode == "sync" else self.mode  # "sync": the run stopped before its lock said which
        m: dict = {"run_id": self.id, "job": s.job, "status": self.status, "mode": mode, "dry_run": s.dry_run,
                   "started_at": self.started_at}  # fmt: skip
        if self.mode == "stock":
            m["nfs"] = list(s.stock_nfs)
        else:
            m.update(apply_drift=s.apply_drift, source=self.source)
            m["cursor"] = {"stored": self.cursor, "since": self.since}
        m["rules"] = s.rules.as_dict()  # the effective business rules (DESIGN §10)
        if self.imported is not None:
            i = self.imported.summary
            m.update(odoo=i.odoo, counts=self.counts(), reject_ratio=i.reject_ratio, downstream=dict(i.downstream),
                     chunks={"chunk_size": s.chunk_size, "chunks": i.chunks, "state_buckets": i.buckets})  # fmt: skip
            m["cursor"]["new"] = self.cursor_to()
        rows = (self.imported.summary.rows_to_write if self.imported else 0) + (self.stock.rows_to_write if self.stock else 0)
        if self.imported is not None or self.stock is not None:
            m["rows_to_write"] = rows
        if self.stock is not None:
            m["stock"] = self.stock.manifest()
        if self.quarantine_retry:
            m["quarantine_retry"] = dict(self.quarantine_retry)
        if self.refused is not None and self.status == "success":  # a failed run quarantined nothing
            quarantine.report(m, self.dir, self.refused, self.open_quarantine, self.now)
        if self.events is not None:
            written = self.written.events if self.written is not None and self.status == "success" else None
            refused = self.refused.outcome.refused if self.refused is not None else None
            # What commits (a dry run writes `events` as planned, without the quarantine's own).
            kinds = counts(self.events if self.status == "dry_run" else self.events_to_write(refused))  # type: ignore[arg-type]
            m["events"] = written.manifest() if written is not None else {"kinds": kinds, "written": 0}
        if self.parts:
            m.setdefault("artifacts", {}).update(self.parts)
        if self.attempts:
            m["write_attempts"] = self.attempts
        if self.retries:
            m["write_retries"] = list(self.retries)
        if self.written is not None:
            written = {**self.written.rows, **(self.written.stock.written if self.written.stock else {})}
            m["rolled_back" if self.status == "failed" else "written"] = written
        if self.error is not None:
            exc = self.error
            prefix = "" if isinstance(exc, FaturamentoError) else "internal error: "
            m["error"] = s.scrub(f"{prefix}{exc}")
            m["error_type"] = type(exc).__name__
            m["exit_code"] = exc.exit_code if isinstance(exc, FaturamentoError) else 1
            if getattr(exc, "sqlstate", None):
                m["sqlstate"] = exc.sqlstate  # type: ignore[attr-defined]
        if self.features is not None:
            m["features"] = self.features.as_dict()
        reads = self.reads()
        m["sql_statements"] = {"writer": self.writer_statements, "reads": reads, "total": self.writer_statements + reads}
        m["timings"] = {**self.timings, "total": round(time.perf_counter() - self._t0, 4)}
        m["peak_memory_mb"] = peak_memory_mb()
        m["finished_at"] = datetime.now(timezone.utc).replace(tzinfo=None)
        return m


def run_sync(settings: Settings, source: Source | None = None) -> RunResult:
    """Run one sync. Raises a `FaturamentoError` when the run fails; nothing is written then.

    The raised exception carries the failed run's manifest as `exc.manifest`.
    """
    return _execute(Run(settings, mode="sync"), source)


def run_stock(settings: Settings) -> RunResult:
    """The stock stage alone (`stock`): the pending NFs, or `settings.stock_nfs`; no Odoo.

    The same path as `sync` without the import stage: same lock, artifacts, manifest,
    and a `sync_runs` row of mode `stock`; the cursor is left as it is.
    """
    return _execute(Run(settings, mode="stock"), None)


def _execute(run: Run, source: Source | None) -> RunResult:
    settings = run.settings
    writer = None
    manifest: dict = {}
    try:
        t = time.perf_counter()
        if run.mode != "stock":
            source = source or make_source(settings)
            run.source = settings.scrub(source.description)
        # One resolved setting for both drivers: the job's name, its statement and lock bounds, its time zone.
        url = session_target(settings)
        writer = Writer(adbc_connect(url))
        writer.role = url.get("user") or ""
        run.timed("connect", t)

        t = time.perf_counter()
        start = _lock(writer, settings, url)
        run.now, run.cursor, run.features = start.now, start.cursor, start.features
        run.open_quarantine = open_frame(start.quarantine)
        run.timed("lock", t)
        extraction = None
        if run.mode != "stock":
            full = settings.full or (start.cursor is None and settings.since is None)
            run.mode = "full" if full else "incremental"
            run.since = None if full else (settings.since or start.cursor - settings.overlap)
            log.info("run %s: %s sync from %s", run.id, run.mode, run.source)
            extraction = _extraction(run, source)  # type: ignore[arg-type]
        else:
            log.info("run %s: stock stage for %s", run.id, ", ".join(settings.stock_nfs) or "the pending NFs")
        with_write_retries(settings, run, writer, lambda: _attempt(run, writer, url, extraction))
    except Exception as exc:  # a bug fails the run the same way: rolled back, recorded
        if writer is not None:
            writer.rollback()
        run.status, run.error = "failed", exc
        if run.stock is not None:  # what the stage reports as written was rolled back: show the plan
            run.stock.written = None
        raise
    finally:
        if writer is not None:
            run.writer_statements = writer.statements
            writer.close()  # releases the lock
        manifest = run.manifest()
        try:
            artifacts.write_manifest(run.dir, manifest)
        except OSError as exc:
            log.error("could not write the run manifest to %s: %s", run.dir, exc)
        if run.error is not None:
            run.error.manifest = manifest  # type: ignore[attr-defined]  # the CLI's metrics of failed runs
    return RunResult(run.id, run.dir, manifest, None, run.timings)


def _extraction(run: Run, source: Source):
    """A factory of the run's chunks: a full run reads them from Odoo on every attempt (they
    stream into the write transaction); a single chunk is read once and handed again."""
    settings = run.settings
    if run.mode == "full" and settings.chunk_size > 0:
        return lambda: extraction_of(source, settings.chunk_size)
    t = time.perf_counter()
    log.info("extract: reading Odoo")
    batch = quarantine.with_due_moves(source, source.extract(run.since), run.open_quarantine, run.quarantine_retry)
    run.timed("extract", t)
    return lambda: one_chunk(batch)


def _attempt(run: Run, writer: Writer, url, extraction) -> None:
    """One write attempt: the stages, then every write, the run record and the commit."""
    settings = run.settings
    run.written, run.imported, run.stock, run.events, run.refused, run._read_nfs = None, None, None, None, None, None
    catch_up = CatchUp.of(settings.rules, settings.job, run.now)
    with tempfile.TemporaryDirectory(prefix="faturamento-run-") as workdir:
        if extraction is not None:
            full = run.mode == "full"
            state = (lambda: read_full_state(url, settings.chunk_size, Path(workdir) / "state")) if full else None
            run.imported = run_import(extraction(), state, writer.cur, full=full, apply_drift=settings.apply_drift,
                                      run_dir=run.dir, workdir=Path(workdir))  # fmt: skip
            run.parts.update({p: s.file.name for p, s in run.imported.parts.items()})
            for phase, seconds in run.imported.summary.timings.items():
                run.timings[phase] = round(run.timings.get(phase, 0.0) + seconds, 4)
            run.imported.check_rejects(settings.max_reject_ratio)
        if settings.stock:
            t = time.perf_counter()
            spill = Path(workdir) / "stock"
            if run.imported is not None:
                run.stock = plan_for_sync(writer.cur, run.imported, catch_up=catch_up, features=run.features,
                                          pallet_codes=settings.rules.pallet_codes, budget=settings.chunk_size,
                                          spill=spill)  # fmt: skip
            else:
                run.stock = plan_for_nfs(writer.cur, list(settings.stock_nfs), catch_up, features=run.features,
                                         pallet_codes=settings.rules.pallet_codes, budget=settings.chunk_size,
                                         spill=spill)  # fmt: skip
            run.parts.update(artifacts.write_parts(run.dir, run.stock.parts()))
            run.timed("stock", t)
        t = time.perf_counter()
        run.events = (events_stage.for_full_run(run.id, settings.job, run.now, run.imported, run.stock)
                      if run.imported is not None else events_stage.for_stock(run.id, settings.job, run.now, run.stock))
        run.parts.update(artifacts.write_parts(run.dir, {"events": run.events}))
        run.timed("events", t)
        if settings.dry_run:
            writer.rollback()
            run.status = "dry_run"
            return
        t = time.perf_counter()
        done = quarantine.write_excluding(
            writer, run.nfs, lambda ex: write_run(writer, run, ex.to_frame() if ex.len() else None)  # type: ignore[arg-type]
        )
        run.written, run.refused = done.result, quarantine.settle(writer, run, done)
        refused = run.refused.outcome.refused
        if refused.height or run.refused.released:  # the events part as it commits: the quarantine's own in, its NFs out
            run.parts.update(artifacts.write_parts(run.dir, {"events": run.events_to_write(refused if refused.height else None)}))
        if run.written.cascade is not None:
            run.parts.update(artifacts.write_parts(run.dir, {"cascade": run.written.cascade}))
        writer.finish(run.record())
        writer.commit()
        run.status = "success"
        run.timed("write", t)


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
    from .db.admin import init_db  # SQLAlchemy only when DDL runs, never for a plain sync

    init_db(url)  # the embedded database is ours to set up
    return lock_and_read_cursor(writer, settings.job, settings.wait_seconds, check)
