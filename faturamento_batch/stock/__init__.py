"""The stock stage (DESIGN §9): the run's NFs + shipments and picking of their orders → `StockPlan`.

Pure: frames in, frames out, no I/O. All NFs at once, with joins and group-bys;
the one-lot-per-NF assignment is a bounded number of vectorized rounds.

CONTRACT (shared by `db.read`, `db.write`, the pipeline and the tests; frame
schemas in `schemas.STOCK_*`). The implementation is being written.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import polars as pl

ACTOR = "faturamento_batch"


@dataclass(frozen=True)
class StockInput:
    """What the stage reads, only for the NFs and orders of the run."""

    nf_lines: pl.DataFrame  # schemas.STOCK_NF_LINE: candidate NFs' lines as they will stand
    items: pl.DataFrame  # schemas.STOCK_ITEM
    separations: pl.DataFrame  # schemas.STOCK_SEPARATION
    movements: pl.DataFrame  # schemas.STOCK_MOVEMENT
    open_inconsistencies: pl.DataFrame  # schemas.STOCK_OPEN_INCONSISTENCY
    justification_keys: pl.DataFrame  # schemas.STOCK_JUSTIFICATION_KEY


@dataclass(frozen=True)
class StockPlan:
    """What the stage writes; every part is a frame (and a run artifact)."""

    assignments: pl.DataFrame  # schemas.STOCK_ASSIGNMENT: one row per processed NF
    movement_inserts: pl.DataFrame  # schemas.STOCK_MOVEMENT_INSERT
    movement_completions: pl.DataFrame  # schemas.STOCK_MOVEMENT_COMPLETE
    item_links: pl.DataFrame  # schemas.STOCK_ITEM_LINK
    separation_links: pl.DataFrame  # schemas.STOCK_SEPARATION_LINK
    status_changes: pl.DataFrame  # schemas.STOCK_STATUS_CHANGE
    inconsistencies: pl.DataFrame  # schemas.STOCK_INCONSISTENCY
    justifications: pl.DataFrame  # schemas.STOCK_JUSTIFICATION

    def parts(self) -> dict[str, pl.DataFrame]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def counts(self) -> dict[str, int]:
        return {name: frame.height for name, frame in self.parts().items()}


def plan_stock(inp: StockInput) -> StockPlan:
    """Every rule of DESIGN §9 over all NFs of `inp` at once."""
    raise NotImplementedError("the stock stage is being written")
