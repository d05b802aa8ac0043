"""The stock stage (DESIGN §9): the run's NFs + shipments and picking of their orders → `StockPlan`.

Pure: frames in, frames out, no I/O. All NFs at once, with joins and group-bys;
the one-lot-per-NF assignment is a bounded number of vectorized rounds.

CONTRACT (shared by `db.read`, `db.write`, the pipeline and the tests; frame
schemas in `schemas.STOCK_*`). `lots` chooses the lot of every NF (rules 1–3),
`writes` derives every write from that choice. Where §9 leaves room, the readings
are in docs/rules.md ("Stock stage").
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import polars as pl

from ..schemas import STOCK_ASSIGNMENT
from . import lots, writes

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
    """Every rule of DESIGN §9 over all NFs of `inp` at once.

    In: a `StockInput` whose frames follow the `schemas.STOCK_*` input schemas. Only the
    posted lines (`Lançado`/`SEM_LOTE`) of `inp.nf_lines` are processed; an NF with none
    is skipped. Out: a `StockPlan` whose parts hold only rows that change something
    (plus one `assignments` row per processed NF), each sorted by its key.
    """
    lines = lots.posted_lines(inp.nf_lines)
    nfs = lots.nf_headers(lines)
    sep = lots.separated(inp.separations)
    decided = lots.choose_lots(nfs, lines, inp.items, sep)
    inserts, completions = writes.movements(lines, decided, inp.movements)
    assignments = (
        decided.sort("_k0", "_k1", "_k2", "_k3")
        .with_columns(pl.col("order").alias("origem"))  # null when the NF has no order
        .select(STOCK_ASSIGNMENT.names())
        .cast(dict(STOCK_ASSIGNMENT))
    )
    return StockPlan(
        assignments=assignments,
        movement_inserts=inserts,
        movement_completions=completions,
        item_links=writes.item_links(decided, inp.items),
        separation_links=writes.separation_links(decided, inp.separations),
        status_changes=writes.status_changes(decided),
        inconsistencies=writes.inconsistencies(decided, inp.open_inconsistencies),
        justifications=writes.justifications(lines, decided, sep, inp.justification_keys),
    )
