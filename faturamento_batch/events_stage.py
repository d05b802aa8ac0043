"""The downstream events as one step of a run (DESIGN §11): build the run's frame.

`for_full_run` (any run with an import stage: an incremental run is a full run's single
chunk) and `for_stock` (the `stock` command) build the run's events (`events.build_events`)
from what the run computed. The pipeline writes them as the `events` part; `write_run`'s
events step sends them in the run's transaction (`db.events.write_events`), amended by the
quarantine (§12), after the stock stage's writes and before the run record.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl

from .diff import ChangeSet
from .events import SUMMARY_COLUMNS, build_events
from .schemas import CONSOLIDATION


def for_full_run(run_id: str, job: str, now: datetime, outcome, stock=None) -> pl.DataFrame:
    """A chunked full run: the ChangeSet parts read back from the run's artifacts (the NFs it
    touched, not the tables) and the existing lines of those NFs."""
    cs, existing = outcome.stock_inputs()
    part = lambda name, columns: pl.read_parquet(Path(outcome.run_dir) / f"{name}.parquet", columns=columns)  # noqa: E731
    consolidation = part("consolidation", ["numero_nf"]).cast({"numero_nf": pl.String})
    inserts = part("inserts", list(SUMMARY_COLUMNS))  # only what the events carry: a first run's every line
    cs = ChangeSet(**{**{n: getattr(cs, n) for n in cs.parts()}, "inserts": inserts,
                      "consolidation": consolidation.with_columns(
                          *(pl.lit(None, t).alias(c) for c, t in CONSOLIDATION.items() if c != "numero_nf")),
                      "apply_drift": cs.apply_drift})  # fmt: skip
    return build_events(run_id, job, now, cs, existing, stock.plan if stock is not None else None)


def for_stock(run_id: str, job: str, now: datetime, stock) -> pl.DataFrame:
    """The stock stage alone (`stock`): its lot and SEM_LOTE events."""
    return build_events(run_id, job, now, None, None, stock.plan)
