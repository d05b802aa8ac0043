"""The run's downstream events (DESIGN §11), built from its parts: pure, frames in, one frame out.

One row per (NF, kind), in the shape of `EVENTS_PART` (the `events` Parquet part of
the run, and what `db.events.write_events` stages and inserts). Kinds:

  nf_inserted     the NF is new (no line of it existed)
  nf_changed      an existing NF: status class changed (not to/from Cancelado), drift
                  applied, lines added, or its consolidation row rewritten
  nf_cancelled    moved to Cancelado (the cascade ran)
  nf_reactivated  back from Cancelado to posted
  nf_stock_linked the stock stage gave it a lot (and wrote for it)
  nf_sem_lote     the stage set it to SEM_LOTE (it was not already)
  nf_quarantined / nf_released  from the quarantine (DESIGN §12), through `extra_events`

The payload is small JSON: lines, valor_total, status_from, status_to, and for the
stock kinds lote / embarque_id; nf_changed also lists the drifted fields.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from .diff import ChangeSet
from .stock import part_nfs

KINDS = (
    "nf_inserted", "nf_changed", "nf_cancelled", "nf_reactivated",
    "nf_stock_linked", "nf_sem_lote", "nf_quarantined", "nf_released",
)  # fmt: skip
# Within a run, ids follow this order, then the NF: an NF's import event precedes its stock event.
_RANK = {k: i for i, k in enumerate(("nf_released", "nf_inserted", "nf_reactivated", "nf_changed", "nf_cancelled",
                                     "nf_stock_linked", "nf_sem_lote", "nf_quarantined"))}  # fmt: skip

EVENTS_PART = pl.Schema(
    {
        "ord": pl.Int64,  # the order the ids are given in
        "run_id": pl.String,
        "job": pl.String,
        "created_at": pl.Datetime("us"),
        "numero_nf": pl.String,
        "kind": pl.String,
        "origem": pl.String,
        "cnpj_cliente": pl.String,
        "payload": pl.String,  # JSON text
    }
)
# What a kind's rows look like before the run's columns are added (also `extra_events`' input).
_ROWS = pl.Schema(
    {"numero_nf": pl.String, "kind": pl.String, "origem": pl.String, "cnpj_cliente": pl.String, "payload": pl.String}
)
_NF = pl.Schema({"numero_nf": pl.String})


# The line columns the events are built from (the rest of a line is not read for them).
SUMMARY_COLUMNS = ("numero_nf", "cod_produto", "cnpj_cliente", "origem", "valor_produto_faturado", "status_nf")


# `per_nf`'s rows.
PER_NF = pl.Schema({"numero_nf": pl.String, "lines": pl.Int64, "valor_total": pl.Float64, "cnpj_cliente": pl.String,
                    "origem": pl.String, "status_to": pl.String})  # fmt: skip


def per_nf(lines: pl.LazyFrame) -> pl.LazyFrame:
    """What the events carry of an NF's lines (`SUMMARY_COLUMNS`), summed per NF: a partial sum
    (the new lines of one chunk) adds up with the others in `_summary`."""
    return lines.group_by("numero_nf", maintain_order=True).agg(
        pl.len().cast(pl.Int64).alias("lines"),
        pl.col("valor_produto_faturado").cast(pl.Float64).sum().alias("valor_total"),
        pl.col("cnpj_cliente").drop_nulls().first(),
        pl.col("origem").drop_nulls().first(),
        pl.col("status_nf").first().alias("status_to"),
    )


def _summary(cs: ChangeSet, existing: pl.DataFrame, inserted: pl.DataFrame | None = None) -> pl.DataFrame:
    """Per NF of the run: lines, valor_total, cnpj_cliente, origem, status before and after.
    `inserted`: the new lines already summed (`per_nf`, chunk by chunk: a first run's every line
    is never held); default: summed here from `cs.inserts`."""
    cols = list(SUMMARY_COLUMNS)
    before = existing.select(cols)
    status = cs.status_changes.select("numero_nf", "cod_produto", pl.col("status_nf").alias("_status"))
    after = before.join(status, on=["numero_nf", "cod_produto"], how="left").with_columns(
        pl.coalesce("_status", "status_nf").alias("status_nf")
    ).drop("_status")
    if cs.apply_drift and cs.drift.height:
        moved = ["cnpj_cliente", "origem", "valor_produto_faturado"]
        drift = cs.drift.select("numero_nf", "cod_produto", *(pl.col(c).alias(f"_{c}") for c in moved))
        after = after.join(drift, on=["numero_nf", "cod_produto"], how="left").with_columns(
            pl.coalesce(f"_{c}", c).alias(c) for c in moved
        ).drop(*(f"_{c}" for c in moved))
    if inserted is None:
        inserted = per_nf(cs.inserts.lazy().select(cols).cast(dict(after.schema))).collect()  # type: ignore[arg-type]
    # Stored lines first: an NF's first values are its stored ones, as in one pass over both.
    parts = pl.concat([per_nf(after.lazy()).collect(), inserted], how="vertical_relaxed")
    was = before.group_by("numero_nf").agg(pl.col("status_nf").first().alias("status_from"))
    now = parts.group_by("numero_nf", maintain_order=True).agg(
        pl.col("lines").sum(),
        pl.col("valor_total").sum().round(2),
        pl.col("cnpj_cliente").drop_nulls().first(),
        pl.col("origem").drop_nulls().first(),
        pl.col("status_to").first(),
    )
    return now.join(was, on="numero_nf", how="left")


def _json(*fields: pl.Expr | str) -> pl.Expr:
    return pl.struct(*fields).struct.json_encode()


def _import_rows(cs: ChangeSet, existing: pl.DataFrame, summary: pl.DataFrame) -> pl.DataFrame:
    known = existing.select("numero_nf").unique()
    inserted = cs.inserts.select("numero_nf").unique()
    new = inserted.join(known, on="numero_nf", how="anti")
    cancelled = cs.cancellations.select("numero_nf").cast(_NF)  # type: ignore[arg-type]
    reactivated = cs.reactivations.select("numero_nf").cast(_NF)  # type: ignore[arg-type]
    drifted = cs.drift.select("numero_nf", "drift_fields") if cs.apply_drift else cs.drift.select("numero_nf", "drift_fields").clear()
    fields = drifted.explode("drift_fields").group_by("numero_nf").agg(pl.col("drift_fields").drop_nulls().unique().sort())
    changed = pl.concat([
        cs.status_changes.select("numero_nf"), drifted.select("numero_nf"),
        inserted.join(known, on="numero_nf", how="semi"), cs.consolidation.select("numero_nf"),
    ]).unique()  # fmt: skip
    changed = changed.join(pl.concat([new, cancelled, reactivated]), on="numero_nf", how="anti")
    kinds = pl.concat([
        new.with_columns(pl.lit("nf_inserted").alias("kind")),
        changed.with_columns(pl.lit("nf_changed").alias("kind")),
        cancelled.with_columns(pl.lit("nf_cancelled").alias("kind")),
        reactivated.with_columns(pl.lit("nf_reactivated").alias("kind")),
    ])  # fmt: skip
    rows = kinds.join(summary, on="numero_nf", how="left").join(fields, on="numero_nf", how="left")
    base = ["lines", "valor_total", "status_from", "status_to"]
    return rows.select(
        "numero_nf", "kind", "origem", "cnpj_cliente",
        pl.when(pl.col("kind") == "nf_changed")
        .then(_json(*base, pl.col("drift_fields").fill_null(pl.lit([], pl.List(pl.String)))))
        .otherwise(_json(*base)).alias("payload"),
    )  # fmt: skip


def _stock_rows(plan, summary: pl.DataFrame | None) -> pl.DataFrame:
    """nf_stock_linked for the NFs given a lot the stage writes for; nf_sem_lote for those it sets
    to SEM_LOTE. An NF pending from an earlier run keeps a lot-less rerun silent: no write, no event."""
    touched = pl.concat([
        part_nfs(plan.movement_inserts).unique().to_frame(), plan.movement_completions.select("numero_nf"),
        plan.item_links.select("numero_nf"), plan.separation_links.select("numero_nf"),
        plan.status_changes.select("numero_nf"),
    ]).unique()  # fmt: skip
    linked = (
        plan.assignments.filter(pl.col("separacao_lote_id").is_not_null())
        .join(touched, on="numero_nf", how="semi")
        .select("numero_nf", "origem", "separacao_lote_id", "embarque_id", pl.lit("nf_stock_linked").alias("kind"))
    )
    sem_lote = (
        plan.status_changes.filter(pl.col("status_nf") == "SEM_LOTE").select("numero_nf").unique()
        .join(plan.assignments.select("numero_nf", "origem"), on="numero_nf", how="left")
        .with_columns(pl.lit(None, pl.String).alias("separacao_lote_id"), pl.lit(None, pl.Int64).alias("embarque_id"),
                      pl.lit("nf_sem_lote").alias("kind"))
    )  # fmt: skip
    rows = pl.concat([linked, sem_lote], how="diagonal_relaxed")
    info = summary.select("numero_nf", "cnpj_cliente", "lines", "valor_total", pl.col("origem").alias("_origem")) if summary is not None else None
    if info is None:
        info = pl.DataFrame(schema={"numero_nf": pl.String, "cnpj_cliente": pl.String, "lines": pl.Int64,
                                    "valor_total": pl.Float64, "_origem": pl.String})  # fmt: skip
    rows = rows.join(info, on="numero_nf", how="left")
    return rows.select(
        "numero_nf", "kind", pl.coalesce("origem", "_origem").alias("origem"), "cnpj_cliente",
        _json("lines", "valor_total", pl.col("separacao_lote_id").alias("lote"), "embarque_id").alias("payload"),
    )  # fmt: skip


def extra_events(nfs: pl.DataFrame, kind: str, payload: list[str] | tuple[str, ...] = ()) -> pl.DataFrame:
    """Rows of `kind` for `nfs` (numero_nf, optional origem/cnpj_cliente and the `payload`
    columns, which become the JSON): how other parts of a run (the quarantine, §12) add theirs."""
    if kind not in KINDS:
        raise ValueError(f"unknown event kind `{kind}`")
    out = nfs.with_columns(
        *(pl.lit(None, pl.String).alias(c) for c in ("origem", "cnpj_cliente") if c not in nfs.columns),
        pl.lit(kind).alias("kind"),
    )
    body = _json(*payload) if payload else pl.lit("{}")
    return out.select("numero_nf", "kind", "origem", "cnpj_cliente", body.alias("payload")).cast(dict(_ROWS))  # type: ignore[arg-type]


def build_events(
    run_id: str, job: str, now: datetime, cs: ChangeSet | None = None, existing: pl.DataFrame | None = None,
    plan=None, extra: list[pl.DataFrame] | tuple[pl.DataFrame, ...] = (), inserted: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The run's events (`EVENTS_PART`): from its ChangeSet `cs` and the `existing` lines it was
    computed from (schemas.EXISTING_LINE), the stock stage's `plan` (`stock.StockPlan`), and
    `extra` rows (`extra_events`). An NF left out of the run (quarantined) must be left out of
    `cs`/`plan` by the caller; its `nf_quarantined` row comes in `extra`. `inserted`: the new
    lines summed per NF (`per_nf`), when `cs.inserts` holds only their NFs."""
    parts = [pl.DataFrame(schema=_ROWS)]
    summary = None
    if cs is not None:
        existing = existing if existing is not None else cs.inserts.clear()
        summary = _summary(cs, existing, inserted)
        parts.append(_import_rows(cs, existing, summary).cast(dict(_ROWS)))  # type: ignore[arg-type]
    if plan is not None:
        parts.append(_stock_rows(plan, summary).cast(dict(_ROWS)))  # type: ignore[arg-type]
    parts += [e.select(_ROWS.names()).cast(dict(_ROWS)) for e in extra]  # type: ignore[arg-type]
    rows = pl.concat(parts).unique(["numero_nf", "kind"], keep="first")
    rows = rows.with_columns(pl.col("kind").replace_strict(_RANK, return_dtype=pl.Int64).alias("_rank"))
    rows = rows.sort("_rank", "numero_nf").drop("_rank")
    return rows.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("ord"),
        pl.lit(run_id).alias("run_id"), pl.lit(job).alias("job"), pl.lit(now, pl.Datetime("us")).alias("created_at"),
        *_ROWS.names(),
    ).cast(dict(EVENTS_PART))  # type: ignore[arg-type]


def amend(events: pl.DataFrame, run_id: str, job: str, now: datetime, leave_out: pl.DataFrame | None = None,
          extra: list[pl.DataFrame] | tuple[pl.DataFrame, ...] = ()) -> pl.DataFrame:
    """The run's `events` (EVENTS_PART) without the NFs of `leave_out` (a numero_nf column: the
    quarantined ones, §12) and with the `extra` rows (`extra_events`), in the run's order again."""
    kept = events.join(leave_out.select("numero_nf"), on="numero_nf", how="anti") if leave_out is not None else events
    return build_events(run_id, job, now, extra=[kept.select(_ROWS.names()), *extra])


def counts(events: pl.DataFrame) -> dict[str, int]:
    """Events per kind (the manifest's `events.kinds`), every kind listed."""
    per_kind = events.group_by("kind").len()
    found = dict(zip(per_kind["kind"].to_list(), per_kind["len"].to_list()))
    return {k: int(found.get(k, 0)) for k in KINDS}
