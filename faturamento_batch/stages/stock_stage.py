"""The stock stage as one step of a run (DESIGN §9): read the stock state → `plan_stock` → write.

`plan_for_sync` (after the diff of a sync) and `plan_for_nfs` (`stock`, no Odoo)
read what the stage needs on the run's cursor, plan it by groups of orders
(`stock_groups`: bounded at any size) and return a `StockStage`: the plan, its run
artifacts and the manifest's `stock` section. `StockStage.write` sends the plan
through the run's `Writer`, inside the run's one transaction, after the import's writes.

Which NFs (the candidates; `plan_stock` keeps the posted ones): in a sync, the NFs
with inserted lines and the reactivated ones, the pending NFs and the bounded
catch-up (`read_stock.CatchUp`: posted NFs without a FATURAMENTO movement of the
last days, DESIGN §10); in `stock`, the pending NFs or
the listed ones. Lines of NFs the run's batch holds are taken as they will stand
after the import's writes (`stored_after_import`, the new lines streamed from the
`inserts` part); the others as the database
holds them. The run's own cancellation cascade is applied to what was read
(`after_cascade`): the stage writes after it, in the same transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import polars as pl

from ..db.features import Features
from ..db.read_stock import STATE_STATEMENTS, CatchUp, StockState, read_candidate_lines, reversed_nfs, stream_stock_state
from ..db.write import ERRO_NF_CANCELADA  # what the cascade writes on the items it frees
from ..db.write_stock import StockWriteSummary, write_stock
from ..db.write_stream import Spill
from ..diff import ChangeSet
from ..errors import ConfigError
from ..schemas import STOCK_LINKS_PART, STOCK_MOVEMENTS_PART, STOCK_NF_LINE, STOCK_STATUS_CHANGE
from ..stock import StockInput, StockPlan, plan_stock
from ..stock.writes import PALLET_CODES
from .stock_groups import INSERTED, Grouped, Groups, put_together, spread, state_of

def stored_after_import(cs: ChangeSet, existing: pl.DataFrame) -> pl.DataFrame:
    """The stored lines of the NFs the run read (`existing`, schemas.EXISTING_LINE) as they will
    stand after the import's writes: the status changes applied (a `SEM_LOTE` line Odoo calls
    `Lançado` keeps `SEM_LOTE`: same class, no change), drift only with `--apply-drift`. The
    run's new lines join them as they stream from the `inserts` part (`_plan`)."""
    cols = STOCK_NF_LINE.names()
    status = cs.status_changes.select("numero_nf", "cod_produto", pl.col("status_nf").alias("_status"))
    stood = existing.select(cols).join(status, on=["numero_nf", "cod_produto"], how="left")
    stood = stood.with_columns(pl.coalesce("_status", "status_nf").alias("status_nf")).drop("_status")
    if cs.apply_drift and cs.drift.height:
        values = [c for c in cols if c not in ("numero_nf", "cod_produto", "status_nf")]
        drift = cs.drift.select("numero_nf", "cod_produto", *(pl.col(c).alias(f"_{c}") for c in values))
        stood = _apply_drift(stood, drift, values)
    return stood.select(cols).cast(dict(STOCK_NF_LINE))  # type: ignore[arg-type]


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
    # NFs the run inserted: their shipments are re-validated (a first run's every NF: a Series, bound as one array)
    new_nfs: pl.Series = field(default_factory=lambda: pl.Series("numero_nf", [], dtype=pl.String))
    features: Features = field(default_factory=Features)
    # The plan's status changes of NFs wholly new in this run (schemas.STOCK_STATUS_CHANGE):
    # their lines are COPYed with the planned status (`stages.write_run`), not inserted and updated.
    status_at_insert: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=STOCK_STATUS_CHANGE))
    # Of the plan's status changes, those whose NF has lines in the database to UPDATE (None: all).
    status_by_update: pl.DataFrame | None = None
    groups: int = 1  # groups of orders the stage was planned in (`stock_groups`)
    _counts: dict[str, int] | None = None  # the plan's rows per part, counted once (a spilled part's file goes with the run)

    @property
    def counts(self) -> dict[str, int]:
        if self._counts is None:
            self._counts = self.plan.counts()
        return self._counts

    @property
    def rows_to_write(self) -> int:
        return sum(n for name, n in self.counts.items() if name != "assignments")

    def write(self, writer, now: datetime, exclude: pl.DataFrame | None = None, *, lines_at_insert: int = 0) -> StockWriteSummary:
        """Send the plan through `writer` (the run's `db.write.Writer`, transaction open),
        without the writes of `exclude`'s NFs (a frame with `numero_nf`) when given.
        `lines_at_insert`: the lines the COPY already wrote with their planned status."""
        started = time.perf_counter()
        plan, at_insert, new_nfs, left_out = self.plan, self.status_at_insert, self.new_nfs, []
        by_update = plan.status_changes if self.status_by_update is None else self.status_by_update
        if exclude is not None and exclude.height:
            gone = exclude.select("numero_nf").unique()
            plan = plan.without(gone.get_column("numero_nf"))
            at_insert = at_insert.join(gone, on="numero_nf", how="anti")
            new_nfs = new_nfs.filter(~new_nfs.is_in(gone.get_column("numero_nf").implode()))
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

    def parts(self) -> dict[str, pl.DataFrame | pl.LazyFrame]:
        """The run artifacts: stock_movements, stock_links (lazy: streamed to their files, never
        built whole), inconsistencies, justifications, stock_status_changes, stock_assignments."""
        p = self.plan
        movements = pl.concat(
            [
                p.movement_inserts.lazy().with_columns(pl.lit("insert").alias("action"), pl.lit(None, pl.Int64).alias("id")),
                p.movement_completions.lazy().with_columns(pl.lit("complete").alias("action")),
            ],
            how="diagonal_relaxed",
        )
        links = pl.concat(
            [
                p.item_links.lazy().with_columns(pl.lit("item").alias("kind")),
                p.item_flags.lazy().select("id", "numero_nf", pl.lit("item_divergent").alias("kind")),
                p.separation_links.lazy().with_columns(pl.lit("separation").alias("kind")),
                p.separation_statuses.lazy().select("id", "separacao_lote_id", pl.lit("separation_faturado").alias("kind")),
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
        p, n = self.plan, self.counts
        action = p.inconsistencies.get_column("action")
        planned = {
            "movements_created": n["movement_inserts"],
            "movements_completed": n["movement_completions"],
            "items_linked": n["item_links"],
            "items_divergent": n["item_flags"],
            "separations_synced": n["separation_links"],
            "separations_faturado": n["separation_statuses"],
            "status_changes": n["status_changes"],
            "inconsistencies_opened": int((action == "open").sum()),
            "inconsistencies_resolved": int((action == "resolve").sum()),
            "justifications": n["justifications"],
        }
        out: dict = {
            "nfs_candidates": self.candidates,
            **self.plan.nf_counts(),
            "planned": dict(planned),
            "rows_to_write": self.rows_to_write,
            "reads": self.statements,
            "groups": self.groups,
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


def split_status(changes: pl.DataFrame, lines: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Which planned status `changes` the COPY of new lines writes, which need the UPDATE.

    `lines`: the candidate lines as they will stand (`stock_groups.LINES`: flagged when the
    run inserts them). A new line of an NF whose status changes is COPYed with the new status;
    the UPDATE keeps the NFs that also have stored lines in the `status_from`."""
    inserted = pl.col(INSERTED)
    stored = lines.filter(~inserted).select("numero_nf", pl.col("status_nf").alias("status_from")).unique()
    at_insert = changes.join(lines.filter(inserted).select("numero_nf").unique(), on="numero_nf", how="semi")
    return at_insert, changes.join(stored, on=["numero_nf", "status_from"], how="semi")


def _shaped(frame: pl.LazyFrame, schema: pl.Schema) -> pl.LazyFrame:
    return frame.select(schema.names()).cast(dict(schema))  # type: ignore[arg-type]


def _plan(cur, lines: Callable[[], Iterable[pl.DataFrame]], cancelled: pl.DataFrame, reads: int, timings: dict, *,
          features: Features, pallet_codes: tuple[str, ...], budget: int, spill: Path) -> StockStage:
    """Group the candidate `lines()` (`stock_groups.LINES`, read twice) by order, read the stock
    state of their NFs and orders once, and plan group by group (`stock_groups`)."""
    started = time.perf_counter()
    groups = Groups.of(lines, budget)
    state = stream_stock_state(cur, groups.nfs.get_column("numero_nf"), groups.orders.get_column("order"), features=features)
    by_group, parts = spread(groups, lines, state, spill)
    statements = reads + (STATE_STATEMENTS if groups.nfs.height else 0)
    timings["read"] = round(timings.get("read", 0.0) + time.perf_counter() - started, 4)
    started = time.perf_counter()
    plan, at_insert, by_update = plan_grouped(groups, by_group, parts, cancelled, pallet_codes, spill)
    if not features.inconsistencia_faturamento:  # dropped in production: the reason stays in `stock_assignments`
        plan = replace(plan, inconsistencies=plan.inconsistencies.clear())
    timings["plan"] = round(time.perf_counter() - started, 4)
    stage = StockStage(plan, candidates=groups.candidates, statements=statements, timings=timings, features=features,
                       groups=groups.count)  # fmt: skip
    stage.status_at_insert, stage.status_by_update = at_insert, by_update
    stage.counts  # counted now: a spilled part's file goes with the run's work directory  # noqa: B018
    return stage


def plan_grouped(groups: Groups, lines: Grouped, state: dict[str, Grouped], cancelled: pl.DataFrame,
                 pallet_codes: tuple[str, ...], spill: Path | None = None) -> tuple[StockPlan, pl.DataFrame, pl.DataFrame]:
    """`plan_stock` group by group, one group's lines and state held at a time: the plan, and its
    status changes the COPY of new lines writes and those the UPDATE does (`split_status`).
    With several groups and a `spill` directory, the new movements (one per line: the largest
    part by far) go to a Parquet file as each group is planned, and the plan holds them lazily."""
    movements = Spill(spill / "plan-movement_inserts.parquet") if spill is not None and groups.count > 1 else None
    plans, at_insert, by_update = [], [], []
    for g in range(groups.count):
        group_lines = lines.group(g)
        group_state = after_cascade(state_of(state, g), cancelled)
        if group_lines.height == 0 and plans:
            continue
        plan = plan_stock(StockInput(
            nf_lines=group_lines.drop(INSERTED), items=group_state.items, separations=group_state.separations,
            movements=group_state.movements, open_inconsistencies=group_state.open_inconsistencies,
            justification_keys=group_state.justification_keys,
        ), pallet_codes=tuple(pallet_codes))  # fmt: skip
        insert_status, update_status = split_status(plan.status_changes, group_lines)
        if movements is not None:
            movements.append(plan.movement_inserts)
            plan = replace(plan, movement_inserts=plan.movement_inserts.clear())
        plans.append(plan.parts())
        at_insert.append(insert_status)
        by_update.append(update_status)
    together = StockPlan(**put_together(plans))
    if movements is not None and movements.rows:
        movements.close()
        together = replace(together, movement_inserts=pl.scan_parquet(movements.file))
    return together, pl.concat(at_insert), pl.concat(by_update)


def _flagged(frame: pl.DataFrame, inserted: bool) -> pl.DataFrame:
    return frame.select(STOCK_NF_LINE.names()).cast(dict(STOCK_NF_LINE)).with_columns(pl.lit(inserted).alias(INSERTED))  # type: ignore[arg-type]


def plan_for_sync(cur, imported, *, catch_up: CatchUp | None = None, features: Features = Features(),
                  pallet_codes: tuple[str, ...] = PALLET_CODES, budget: int = 0, spill: Path) -> StockStage:
    """The stage after a sync's import (`imported`: `stages.import_stage.Imported`), on the run's
    cursor `cur`. `catch_up`: the bounded catch-up of every run (§10; None: none); `features`:
    the database's optional parts (§10); `pallet_codes`: products with no movement; `budget`:
    candidate lines per group of orders (0: one group); `spill`: where groups wait their turn."""
    started = time.perf_counter()
    cs, existing = imported.stock_inputs()
    stood = stored_after_import(cs, existing)
    del existing
    inserted = cs.inserts.select("numero_nf")  # the NFs with new lines
    seeds = pl.concat([inserted, cs.reactivations.select("numero_nf")]).unique()
    freed = cs.cancellations.select("numero_nf").unique()
    extra_reads = 0
    if features.revertida and freed.height:  # the cascade spares reversed NFs: their items stay taken
        freed = freed.join(reversed_nfs(cur, freed.get_column("numero_nf")), on="numero_nf", how="anti")
        extra_reads = 1
    found = read_candidate_lines(cur, pending=True, catch_up=catch_up, cancelled=freed.get_column("numero_nf"),
                                 features=features)  # fmt: skip
    wanted = pl.concat([seeds, found.lines.select("numero_nf")]).unique()
    ours = pl.concat([stood.select("numero_nf"), inserted]).unique()
    stored = _flagged(stood.join(wanted, on="numero_nf", how="semi"), False)
    others = _flagged(found.lines.join(ours, on="numero_nf", how="anti"), False)
    del stood, found.lines, wanted, ours

    def lines() -> Iterator[pl.DataFrame]:
        yield stored
        yield others
        for batch in imported.part_batches("inserts", STOCK_NF_LINE.names()):
            yield _flagged(batch, True)

    frames: Callable[[], Iterable[pl.DataFrame]] = lines
    if budget <= 0 or stored.height + others.height + imported.parts["inserts"].rows <= budget:
        held = list(lines())  # one group whatever is posted: the inserts part is read once, not twice
        frames = lambda: held  # noqa: E731

    timings = {"read": round(time.perf_counter() - started, 4)}
    stage = _plan(cur, frames, freed, found.statements + extra_reads, timings, features=features,
                  pallet_codes=pallet_codes, budget=budget, spill=spill)  # fmt: skip
    stage.new_nfs = inserted.get_column("numero_nf").sort()
    return stage


def plan_for_nfs(cur, nfs: list[str] | None, catch_up: CatchUp | None = None, *, features: Features = Features(),
                 pallet_codes: tuple[str, ...] = PALLET_CODES, budget: int = 0, spill: Path) -> StockStage:
    """The stage alone (`stock`): the listed NFs as the database holds them, or the pending NFs
    and the bounded `catch_up`."""
    started = time.perf_counter()
    found = read_candidate_lines(cur, pending=not nfs, catch_up=None if nfs else catch_up, listed=nfs or [],
                                 features=features)  # fmt: skip
    if nfs:
        listed = pl.Series("numero_nf", nfs, dtype=pl.String)
        missing = listed.filter(~listed.is_in(found.lines.get_column("numero_nf").implode())).to_list()
        if missing:
            shown = ", ".join(f"`{nf}`" for nf in missing[:10]) + (" …" if len(missing) > 10 else "")
            raise ConfigError(f"`--nfs`: no invoice line in faturamento_produto for NF {shown}; nothing was done")
    timings = {"read": round(time.perf_counter() - started, 4)}
    lines = _flagged(found.lines, False)
    return _plan(cur, lambda: [lines], pl.DataFrame(schema={"numero_nf": pl.String}), found.statements, timings,
                 features=features, pallet_codes=pallet_codes, budget=budget, spill=spill)  # fmt: skip
