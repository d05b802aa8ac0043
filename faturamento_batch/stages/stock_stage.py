"""The stock stage as one step of a run (DESIGN §9): read the stock state → `plan_stock` → write.

`plan_for_sync` (after the diff of a sync) and `plan_for_nfs` (`stock`, no Odoo)
read what the stage needs and return a `StockStage`: the plan, its run artifacts
and the manifest's `stock` section. `StockStage.write` sends the plan through the
run's `Writer`, inside the run's one transaction, after the import's writes.

Which NFs (the candidates; `plan_stock` keeps the posted ones): in a sync, the NFs
with inserted lines and the reactivated ones, the pending NFs and the bounded
catch-up (`read_stock.CatchUp`: posted NFs without a FATURAMENTO movement of the
last days, DESIGN §10); in `stock`, the pending NFs or
the listed ones. Lines of NFs the run's batch holds are taken as they will stand
after the import's writes (`lines_after_import`); the others as the database
holds them. The run's own cancellation cascade is applied to what was read
(`after_cascade`): the stage writes after it, in the same transaction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import datetime

import polars as pl

from ..db.features import Features
from ..db.read_stock import CatchUp, StockState, read_candidate_lines, read_stock_state, reversed_nfs
from ..db.write import ERRO_NF_CANCELADA  # what the cascade writes on the items it frees
from ..db.write_stock import StockWriteSummary, write_stock
from ..diff import ChangeSet
from ..errors import ConfigError
from ..schemas import STOCK_LINKS_PART, STOCK_MOVEMENTS_PART, STOCK_NF_LINE, STOCK_STATUS_CHANGE
from ..stock import StockInput, StockPlan, plan_stock
from ..stock.writes import PALLET_CODES

POSTED = ("Lançado", "SEM_LOTE")


def lines_after_import(cs: ChangeSet, existing: pl.DataFrame) -> pl.DataFrame:
    """The lines of the NFs the run read (`existing`, schemas.EXISTING_LINE) and inserts, as they
    will stand after the import's writes: the status changes applied (a `SEM_LOTE` line Odoo
    calls `Lançado` keeps `SEM_LOTE`: same class, no change), drift only with `--apply-drift`."""
    cols = STOCK_NF_LINE.names()
    status = cs.status_changes.select("numero_nf", "cod_produto", pl.col("status_nf").alias("_status"))
    stood = existing.select(cols).join(status, on=["numero_nf", "cod_produto"], how="left")
    stood = stood.with_columns(pl.coalesce("_status", "status_nf").alias("status_nf")).drop("_status")
    if cs.apply_drift and cs.drift.height:
        values = [c for c in cols if c not in ("numero_nf", "cod_produto", "status_nf")]
        drift = cs.drift.select("numero_nf", "cod_produto", *(pl.col(c).alias(f"_{c}") for c in values))
        stood = _apply_drift(stood, drift, values)
    inserted = cs.inserts.select(cols)
    return pl.concat([stood.select(cols), inserted]).cast(dict(STOCK_NF_LINE))  # type: ignore[arg-type]


def _apply_drift(stood: pl.DataFrame, drift: pl.DataFrame, values: list[str]) -> pl.DataFrame:
    joined = stood.join(drift.with_columns(pl.lit(True).alias("_drifted")), on=["numero_nf", "cod_produto"], how="left")
    return joined.with_columns(
        pl.when(pl.col("_drifted")).then(pl.col(f"_{c}")).otherwise(pl.col(c)).alias(c) for c in values
    ).drop("_drifted", *(f"_{c}" for c in values))


def after_cascade(state: StockState, cancelled: pl.DataFrame) -> StockState:
    """`state` as the run's cancellation cascade leaves it (DESIGN §5): items and separations of
    the `cancelled` NFs (schemas.NF_LIST) lose their NF, their movements and open
    inconsistencies are closed — so an order re-invoiced in the same run finds its lot free."""
    if cancelled.height == 0:
        return state
    gone = pl.col("nota_fiscal").is_in(cancelled.get_column("numero_nf").implode())
    items = state.items.with_columns(
        pl.when(gone).then(pl.lit(ERRO_NF_CANCELADA)).otherwise(pl.col("erro_validacao")).alias("erro_validacao"),
        pl.when(gone).then(None).otherwise(pl.col("nota_fiscal")).alias("nota_fiscal"),
    )
    sep_gone = pl.col("numero_nf").is_in(cancelled.get_column("numero_nf").implode())
    separations = state.separations.with_columns(
        pl.when(sep_gone).then(False).otherwise(pl.col("sincronizado_nf")).alias("sincronizado_nf"),
        pl.when(sep_gone).then(None).otherwise(pl.col("numero_nf")).alias("numero_nf"),
    )
    keep = lambda frame: frame.join(cancelled, on="numero_nf", how="anti")  # noqa: E731
    return StockState(
        items=items, separations=separations, movements=keep(state.movements),
        open_inconsistencies=keep(state.open_inconsistencies), justification_keys=state.justification_keys,
        statements=state.statements, seconds=state.seconds,
    )  # fmt: skip


# The manifest's headline counts → the `table.action` they are written as (`db.write_stock`).
WRITTEN_KEYS = {
    "movements_created": "movimentacao_estoque.insert",
    "movements_completed": "movimentacao_estoque.complete",
    "items_linked": "embarque_itens.link",
    "items_divergent": "embarque_itens.divergent",
    "separations_synced": "separacao.sync",
    "separations_faturado": "separacao.faturado",
    "status_changes": "faturamento_produto.status_nfs",
    "inconsistencies_opened": "inconsistencia_faturamento.open",
    "inconsistencies_resolved": "inconsistencia_faturamento.resolve",
    "justifications": "faturamento_parcial_justificativa.insert",
}


@dataclass
class StockStage:
    """The stage's outcome: the plan, and once written, what was written and left alone."""

    plan: StockPlan
    candidates: int  # NFs looked at (before `plan_stock` keeps the posted ones)
    statements: int  # SQL statements the reads sent
    timings: dict[str, float] = field(default_factory=dict)
    written: StockWriteSummary | None = None
    new_nfs: list[str] = field(default_factory=list)  # NFs the run inserted: their shipments are re-validated
    features: Features = field(default_factory=Features)
    # The plan's status changes of NFs wholly new in this run (schemas.STOCK_STATUS_CHANGE):
    # their lines are COPYed with the planned status (`stages.write_run`), not inserted and updated.
    status_at_insert: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=STOCK_STATUS_CHANGE))
    # Of the plan's status changes, those whose NF has lines in the database to UPDATE (None: all).
    status_by_update: pl.DataFrame | None = None

    def split_status(self, lines: pl.DataFrame, inserts: pl.DataFrame) -> None:
        """Which planned status changes the COPY of new lines writes, which need the UPDATE.

        `lines`: the candidate lines as they will stand (schemas.STOCK_NF_LINE), `inserts`
        the run's new lines. A new line of an NF whose status changes is COPYed with the new
        status; the UPDATE keeps the NFs that also have stored lines in the `status_from`."""
        changes = self.plan.status_changes
        key = ["numero_nf", "cod_produto"]
        stored = lines.join(inserts.select(key), on=key, how="anti").select("numero_nf", pl.col("status_nf").alias("status_from"))
        self.status_at_insert = changes.join(inserts.select("numero_nf").unique(), on="numero_nf", how="semi")
        self.status_by_update = changes.join(stored.unique(), on=["numero_nf", "status_from"], how="semi")

    @property
    def rows_to_write(self) -> int:
        return sum(n for name, n in self.plan.counts().items() if name != "assignments")

    def write(self, writer, now: datetime, exclude: pl.DataFrame | None = None, *, lines_at_insert: int = 0) -> StockWriteSummary:
        """Send the plan through `writer` (the run's `db.write.Writer`, transaction open),
        without the writes of `exclude`'s NFs (a frame with `numero_nf`) when given.
        `lines_at_insert`: the lines the COPY already wrote with their planned status."""
        started = time.perf_counter()
        plan, at_insert, new_nfs, left_out = self.plan, self.status_at_insert, self.new_nfs, []
        by_update = plan.status_changes if self.status_by_update is None else self.status_by_update
        if exclude is not None and exclude.height:
            gone = exclude.select("numero_nf").unique()
            plan = StockPlan(**{name: frame.join(gone, on="numero_nf", how="anti") for name, frame in plan.parts().items()})
            at_insert = at_insert.join(gone, on="numero_nf", how="anti")
            kept = pl.Series("numero_nf", new_nfs, dtype=pl.String)
            new_nfs = kept.filter(~kept.is_in(gone.get_column("numero_nf").implode())).to_list()
            left_out = gone.get_column("numero_nf").to_list()  # a few NFs: at most the quarantine's limit
            by_update = by_update.join(gone, on="numero_nf", how="anti")
        self.written = write_stock(writer, replace(plan, status_changes=by_update), now, features=self.features,
                                   new_nfs=new_nfs, left_out=left_out)  # fmt: skip
        only_copied = at_insert.join(by_update, on="numero_nf", how="anti").height
        if only_copied or lines_at_insert:  # written by the COPY: counted as the stage's status writes
            w = self.written.written
            w["faturamento_produto.status_nfs"] = w.get("faturamento_produto.status_nfs", 0) + only_copied
            w["faturamento_produto.status_lines"] = w.get("faturamento_produto.status_lines", 0) + lines_at_insert
        self.timings["write"] = round(time.perf_counter() - started, 4)
        return self.written

    def parts(self) -> dict[str, pl.DataFrame]:
        """The run artifacts: stock_movements, stock_links, inconsistencies, justifications,
        stock_status_changes, stock_assignments."""
        p = self.plan
        movements = pl.concat(
            [
                p.movement_inserts.with_columns(pl.lit("insert").alias("action"), pl.lit(None, pl.Int64).alias("id")),
                p.movement_completions.with_columns(pl.lit("complete").alias("action")),
            ],
            how="diagonal_relaxed",
        )
        links = pl.concat(
            [
                p.item_links.with_columns(pl.lit("item").alias("kind")),
                p.item_flags.select("id", "numero_nf", pl.lit("item_divergent").alias("kind")),
                p.separation_links.with_columns(pl.lit("separation").alias("kind")),
                p.separation_statuses.select("id", "separacao_lote_id", pl.lit("separation_faturado").alias("kind")),
            ],
            how="diagonal_relaxed",
        )
        return {
            "stock_movements": _shaped(movements, STOCK_MOVEMENTS_PART),
            "stock_links": _shaped(links, STOCK_LINKS_PART),
            "inconsistencies": p.inconsistencies,
            "justifications": p.justifications,
            "stock_status_changes": p.status_changes,
            "stock_assignments": p.assignments,
        }

    def manifest(self) -> dict:
        """The manifest's `stock` section: NFs, what was planned, written and left alone."""
        p = self.plan
        action = p.inconsistencies.get_column("action")
        planned = {
            "movements_created": p.movement_inserts.height,
            "movements_completed": p.movement_completions.height,
            "items_linked": p.item_links.height,
            "items_divergent": p.item_flags.height,
            "separations_synced": p.separation_links.height,
            "separations_faturado": p.separation_statuses.height,
            "status_changes": p.status_changes.height,
            "inconsistencies_opened": int((action == "open").sum()),
            "inconsistencies_resolved": int((action == "resolve").sum()),
            "justifications": p.justifications.height,
        }
        out: dict = {
            "nfs_candidates": self.candidates,
            **self.plan.nf_counts(),
            "planned": dict(planned),
            "rows_to_write": self.rows_to_write,
            "reads": self.statements,
            "seconds": dict(self.timings),
        }
        out["counts"] = planned
        if self.written is not None:
            w = self.written.written
            out["counts"] = {name: w.get(key, 0) for name, key in WRITTEN_KEYS.items()}
            out["counts"]["inconsistencies_opened"] += w.get("inconsistencia_faturamento.update", 0)
            out["written"] = dict(w)
            out["left_alone"] = dict(self.written.left_alone)
        return out


def _shaped(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    if frame.width == 0:
        return pl.DataFrame(schema=schema)
    return frame.select(schema.names()).cast(dict(schema))  # type: ignore[arg-type]


def _plan(url: str, lines: pl.DataFrame, cancelled: pl.DataFrame, reads: int, timings: dict, *,
          features: Features, pallet_codes: tuple[str, ...]) -> StockStage:
    """Read the rest of the stock state for `lines`' NFs and orders, and plan."""
    started = time.perf_counter()
    posted = lines.filter(pl.col("status_nf").is_in(POSTED))
    nfs = posted.get_column("numero_nf").unique().sort().to_list()
    orders = posted.filter(pl.col("origem").str.strip_chars() != "").get_column("origem").unique().sort().to_list()
    state = after_cascade(read_stock_state(url, nfs, orders, features=features), cancelled)
    timings["read"] = round(timings.get("read", 0.0) + time.perf_counter() - started, 4)
    started = time.perf_counter()
    plan = plan_stock(StockInput(
        nf_lines=lines, items=state.items, separations=state.separations, movements=state.movements,
        open_inconsistencies=state.open_inconsistencies, justification_keys=state.justification_keys,
    ), pallet_codes=tuple(pallet_codes))  # fmt: skip
    if not features.inconsistencia_faturamento:  # dropped in production: the reason stays in `stock_assignments`
        plan = replace(plan, inconsistencies=plan.inconsistencies.clear())
    timings["plan"] = round(time.perf_counter() - started, 4)
    candidates = lines.get_column("numero_nf").n_unique()
    return StockStage(plan, candidates=candidates, statements=reads + state.statements, timings=timings,
                      features=features)  # fmt: skip


def plan_for_sync(url: str, cs: ChangeSet, existing: pl.DataFrame, *, full: bool, catch_up: CatchUp | None = None,
                  features: Features = Features(), pallet_codes: tuple[str, ...] = PALLET_CODES) -> StockStage:
    """The stage after a sync's diff: `cs` and the `existing` lines it was computed from.
    `catch_up`: the bounded catch-up of every run (§10; None: none); `features`: the database's
    optional parts (§10); `pallet_codes`: products with no movement."""
    started = time.perf_counter()
    after = lines_after_import(cs, existing)
    seeds = pl.concat([cs.inserts.select("numero_nf"), cs.reactivations.select("numero_nf")]).unique()
    freed = cs.cancellations.select("numero_nf")
    extra_reads = 0
    if features.revertida and freed.height:  # the cascade spares reversed NFs: their items stay taken
        freed = freed.join(reversed_nfs(url, freed.get_column("numero_nf").to_list()), on="numero_nf", how="anti")
        extra_reads = 1
    cancelled = freed.get_column("numero_nf").to_list()
    found = read_candidate_lines(url, pending=True, catch_up=catch_up, cancelled=cancelled, features=features)
    wanted = pl.concat([seeds, found.lines.select("numero_nf")]).unique()
    lines = pl.concat([
        after.join(wanted, on="numero_nf", how="semi"),
        found.lines.join(after.select("numero_nf").unique(), on="numero_nf", how="anti"),
    ])  # fmt: skip
    timings = {"read": round(time.perf_counter() - started, 4)}
    stage = _plan(url, lines, freed, found.statements + extra_reads, timings, features=features, pallet_codes=pallet_codes)
    stage.new_nfs = cs.inserts.get_column("numero_nf").unique().sort().to_list()
    stage.split_status(lines, cs.inserts)
    return stage


def plan_for_nfs(url: str, nfs: list[str] | None, catch_up: CatchUp | None = None, *, features: Features = Features(),
                 pallet_codes: tuple[str, ...] = PALLET_CODES) -> StockStage:
    """The stage alone (`stock`): the listed NFs as the database holds them, or the pending NFs
    and the bounded `catch_up`."""
    started = time.perf_counter()
    found = read_candidate_lines(url, pending=not nfs, catch_up=None if nfs else catch_up, listed=nfs or [],
                                 features=features)
    if nfs:
        listed = pl.Series("numero_nf", nfs, dtype=pl.String)
        missing = listed.filter(~listed.is_in(found.lines.get_column("numero_nf").implode())).to_list()
        if missing:
            shown = ", ".join(f"`{nf}`" for nf in missing[:10]) + (" …" if len(missing) > 10 else "")
            raise ConfigError(f"`--nfs`: no invoice line in faturamento_produto for NF {shown}; nothing was done")
    timings = {"read": round(time.perf_counter() - started, 4)}
    return _plan(url, found.lines, pl.DataFrame(schema={"numero_nf": pl.String}), found.statements, timings,
                 features=features, pallet_codes=pallet_codes)  # fmt: skip
