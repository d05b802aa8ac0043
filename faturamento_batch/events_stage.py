"""The downstream events as one step of a run (DESIGN §11): build the run's frame.

`for_full_run` (any run with an import stage: an incremental run is a full run's single
chunk) and `for_stock` (the `stock` command) build the run's events (`events.build_events`)
from what the run computed. The pipeline writes them as the `events` part; `write_run`'s
events step sends them in the run's transaction (`db.events.write_events`), amended by the
quarantine (§12), after the stock stage's writes and before the run record.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import polars as pl

from .events import build_events


def for_full_run(run_id: str, job: str, now: datetime, outcome, stock=None) -> pl.DataFrame:
    """Any run with an import stage: the ChangeSet parts read back from the run's artifacts (the
    NFs it touched, not the tables), the existing lines of those NFs, and its new lines summed
    per NF chunk by chunk by the import stage (`Imported.insert_summary`)."""
    cs, existing = outcome.stock_inputs()  # `cs.inserts`: the NFs with new lines
    # The events read only which NFs got a consolidation row.
    cs = replace(cs, consolidation=outcome.part("consolidation", ["numero_nf"]).cast({"numero_nf": pl.String}))
    return build_events(run_id, job, now, cs, existing, stock.plan if stock is not None else None,
                        inserted=outcome.insert_summary())  # fmt: skip


def for_stock(run_id: str, job: str, now: datetime, stock) -> pl.DataFrame:
    """The stock stage alone (`stock`): its lot and SEM_LOTE events."""
    return build_events(run_id, job, now, None, None, stock.plan)
