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

from .. import schemas
from ..errors import DataError
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


def rows(part: pl.DataFrame | pl.LazyFrame) -> int:
    """A part's rows. A spilled part is lazy, over its Parquet file (a large run's new movements,
    one per line: `stages.stock_groups`): counted from the file, not read."""
    return part.height if isinstance(part, pl.DataFrame) else int(part.select(pl.len()).collect().item())


def part_nfs(part: pl.DataFrame | pl.LazyFrame) -> pl.Series:
    """The NFs a part writes for (a lazy part: read back one column)."""
    if isinstance(part, pl.DataFrame):
        return part.get_column("numero_nf")
    return part.select("numero_nf").unique().collect().get_column("numero_nf")


@dataclass(frozen=True)
class StockPlan:
    """What the stage writes; every part is a frame (and a run artifact). `movement_inserts` may
    be lazy (spilled, a large run's): `rows` and `part_nfs` read either."""

    assignments: pl.DataFrame  # schemas.STOCK_ASSIGNMENT: one row per processed NF
    movement_inserts: pl.DataFrame | pl.LazyFrame  # schemas.STOCK_MOVEMENT_INSERT
    movement_completions: pl.DataFrame  # schemas.STOCK_MOVEMENT_COMPLETE
    item_links: pl.DataFrame  # schemas.STOCK_ITEM_LINK
    item_flags: pl.DataFrame  # schemas.STOCK_ITEM_FLAG
    separation_links: pl.DataFrame  # schemas.STOCK_SEPARATION_LINK
    separation_statuses: pl.DataFrame  # schemas.STOCK_SEPARATION_STATUS
    status_changes: pl.DataFrame  # schemas.STOCK_STATUS_CHANGE
    inconsistencies: pl.DataFrame  # schemas.STOCK_INCONSISTENCY
    justifications: pl.DataFrame  # schemas.STOCK_JUSTIFICATION

    def parts(self) -> dict[str, pl.DataFrame]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def counts(self) -> dict[str, int]:
        return {name: rows(frame) for name, frame in self.parts().items()}

    def nfs(self) -> pl.Series:
        """Every NF some part of the plan writes for."""
        return pl.concat([part_nfs(f) for f in self.parts().values()]).drop_nulls().unique().sort()

    def without(self, nfs: pl.Series | list[str]) -> "StockPlan":
        """The plan with the NFs `nfs` left out whole (the quarantine, DESIGN §12)."""
        out = pl.Series("numero_nf", nfs, dtype=pl.String).implode()
        return StockPlan(**{n: f.filter(~pl.col("numero_nf").is_in(out)) for n, f in self.parts().items()})

    def nf_counts(self) -> dict[str, int]:
        """The manifest's NF counts (§9): with a lot / without / decided by a linked item / divergent."""
        a = self.assignments
        return {
            "nfs_processed": a.height,
            "nfs_with_lot": a.filter(pl.col("separacao_lote_id").is_not_null()).height,
            "nfs_without_lot": a.filter(pl.col("separacao_lote_id").is_null()).height,
            "nfs_linked": a.filter(pl.col("how") == "linked").height,
            "nfs_divergent": a.filter(pl.col("tipo") == lots.DIVERGENCIA_NF_EMBARQUE).height,
        }


# Input parts and their schemas; rows of the tables that carry an id may come twice from a
# reader that selects them by order and by NF, and count once.
_INPUTS = {
    "nf_lines": (schemas.STOCK_NF_LINE, None),
    "items": (schemas.STOCK_ITEM, "id"),
    "separations": (schemas.STOCK_SEPARATION, "id"),
    "movements": (schemas.STOCK_MOVEMENT, "id"),
    "open_inconsistencies": (schemas.STOCK_OPEN_INCONSISTENCY, "id"),
    "justification_keys": (schemas.STOCK_JUSTIFICATION_KEY, None),
}


def _conformed(inp: StockInput) -> StockInput:
    """The input's frames with exactly their declared columns and types, ids once; a
    faturamento_produto key seen twice is refused (two rows would mean two movements)."""
    out = {}
    for name, (schema, key) in _INPUTS.items():
        frame = getattr(inp, name).select(schema.names()).cast(dict(schema))
        out[name] = frame.unique(key, keep="first", maintain_order=True) if key else frame
    twice = out["nf_lines"].filter(pl.struct("numero_nf", "cod_produto").is_duplicated())
    if twice.height:
        n, p = twice.row(0)[:2]
        raise DataError(
            f"the stock stage got NF `{n}` product `{p}` twice ({twice.height} duplicated lines): "
            "`faturamento_produto` must hold one row per (numero_nf, cod_produto). Nothing was written; "
            "check that key's unique index on the database."
        )
    return StockInput(**out)


def carvia() -> pl.Expr:
    """A CarVia item (DESIGN §10): `carvia_cotacao_id` set and ≠ 0, or a lot starting `CARVIA-`."""
    quote = pl.col("carvia_cotacao_id").fill_null(0) != 0
    return quote | pl.col("separacao_lote_id").str.starts_with("CARVIA-").fill_null(False)


def plan_stock(inp: StockInput, *, pallet_codes: tuple[str, ...] = writes.PALLET_CODES) -> StockPlan:
    """Every rule of DESIGN §9, as production runs them (§10), over all NFs of `inp` at once.

    CarVia items are no part of the stage (never linked, flagged or a candidate); lines of
    `pallet_codes` get no movement but count everywhere else (status, score).

    In: a `StockInput` whose frames follow the `schemas.STOCK_*` input schemas. Only the
    posted lines (`Lançado`/`SEM_LOTE`) of `inp.nf_lines` are processed; an NF with none
    is skipped. Raises `DataError` when a (numero_nf, cod_produto) comes twice. Out: a `StockPlan` whose parts hold only rows that change something
    (plus one `assignments` row per processed NF), each sorted by its key.
    """
    inp = _conformed(inp)
    items = inp.items.filter(~carvia())
    lines = lots.posted_lines(inp.nf_lines)
    nfs = lots.nf_headers(lines)
    sep = lots.separated(inp.separations)
    decided = lots.choose_lots(nfs, lines, items, sep)
    inserts, completions = writes.movements(lines, decided, inp.movements, tuple(pallet_codes))
    separation_links = writes.separation_links(decided, inp.separations)
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
        item_links=writes.item_links(decided, items),
        item_flags=writes.item_flags(decided, items),
        separation_links=separation_links,
        separation_statuses=writes.separation_statuses(decided, inp.separations, separation_links),
        status_changes=writes.status_changes(decided),
        inconsistencies=writes.inconsistencies(decided, inp.open_inconsistencies),
        justifications=writes.justifications(lines, decided, sep, inp.justification_keys),
    )
