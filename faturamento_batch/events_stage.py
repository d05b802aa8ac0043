"""The downstream events as one step of a run (DESIGN §11): build the frame, report it, write it.

`for_sync` / `for_full_run` / `for_stock` build the run's events (`events.build_events`)
from what the run computed; `report` writes the `events` Parquet part and the
manifest's counts (a dry run stops there); `write` sends them in the run's
transaction (`db.events.write_events`), after the stock stage's writes and before
the run record. The run-path refactor's `write_events(...)` hook step calls `write`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl

from . import artifacts
from .db.events import write_events
from .diff import ChangeSet
from .errors import ConfigError, DatabaseError
from .events import build_events, counts
from .schemas import CONSOLIDATION


def for_sync(run_id: str, job: str, now: datetime, cs: ChangeSet, existing: pl.DataFrame, stock=None) -> pl.DataFrame:
    """A one-piece sync: its ChangeSet, the existing lines it was computed from, the stock stage."""
    return build_events(run_id, job, now, cs, existing, stock.plan if stock is not None else None)


def for_full_run(run_id: str, job: str, now: datetime, outcome, stock=None) -> pl.DataFrame:
    """A chunked full run: the ChangeSet parts read back from the run's artifacts (the NFs it
    touched, not the tables) and the existing lines of those NFs."""
    cs, existing = outcome.stock_inputs()
    part = lambda name: pl.read_parquet(Path(outcome.run_dir) / f"{name}.parquet")  # noqa: E731
    consolidation = part("consolidation").select("numero_nf").cast({"numero_nf": pl.String})
    cs = ChangeSet(**{**{n: getattr(cs, n) for n in cs.parts()}, "inserts": part("inserts"),
                      "consolidation": consolidation.with_columns(
                          *(pl.lit(None, t).alias(c) for c, t in CONSOLIDATION.items() if c != "numero_nf")),
                      "apply_drift": cs.apply_drift})  # fmt: skip
    return build_events(run_id, job, now, cs, existing, stock.plan if stock is not None else None)


def for_stock(run_id: str, job: str, now: datetime, stock) -> pl.DataFrame:
    """The stock stage alone (`stock`): its lot and SEM_LOTE events."""
    return build_events(run_id, job, now, None, None, stock.plan)


def report(manifest: dict, run_dir: Path, events: pl.DataFrame) -> None:
    """The `events` part and the counts per kind (the manifest keeps counts, the part the NFs)."""
    manifest.setdefault("artifacts", {}).update(artifacts.write_parts(run_dir, {"events": events}))
    manifest["events"] = {"kinds": counts(events), "written": 0}


def write(writer, manifest: dict, events: pl.DataFrame, now: datetime, retention_days: float) -> None:
    """Insert the run's events (and the retention, and the NOTIFY) in the open transaction."""
    try:
        written = write_events(writer, events, now, retention_days)
    except DatabaseError as exc:
        if "sync_event" in str(exc) and "does not exist" in str(exc):
            raise ConfigError("the database has no events tables (`sync_events`, `sync_event_consumers`, "
                              "`sync_event_deliveries`): run `faturamento-batch init-db` (it adds only what is missing)") from exc
        raise
    manifest["events"] = written.manifest()
