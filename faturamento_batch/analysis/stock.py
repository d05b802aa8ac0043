"""Shape a run's stock-stage artifacts (DESIGN §9) for the notebook's stock section.

    stock_totals            what the stage planned and wrote (the manifest's `stock` section)
    stock_left_alone        rows the logistics application changed meanwhile, left alone
    lot_outcomes            NFs per outcome: a lot (linked / by candidates) or none, and why
    nfs_without_lot         the NFs left without a lot, with the inconsistency they opened
    divergences_by_product  justifications per product (partial invoicing, §10): separated vs invoiced
    justification_rows      the justifications themselves
    inconsistency_actions   inconsistencies opened and resolved, per tipo

Every function takes a `Run` and returns a small frame (empty when the run did not
run the stage, e.g. `--no-stock`, or wrote none of that kind). Quantities become
Float64 here: these frames are for reading and charts.
"""

from __future__ import annotations

import polars as pl

from .loading import Run

# Outcome labels, in the order the notebook shows them.
OUTCOMES = (
    "lot: already linked",
    "lot: chosen among candidates",
    "no lot: NF_SEM_SEPARACAO",
    "no lot: DIVERGENCIA_NF_EMBARQUE",
)
# manifest["stock"] counts, in the order the stage writes them.
STOCK_TOTALS = (
    "nfs_processed",
    "nfs_with_lot",
    "nfs_without_lot",
    "nfs_linked",
    "nfs_divergent",
    "movements_created",
    "movements_completed",
    "items_linked",
    "separations_synced",
    "status_changes",
    "inconsistencies_opened",
    "inconsistencies_resolved",
    "justifications",
)


def _q(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.Float64)


def stock_totals(run: Run) -> pl.DataFrame:
    """measure, planned, written: one row per count of the stage; empty without the stage.

    NF counts are not writes: they fill `planned` only. `written` is null in a dry run,
    and smaller than `planned` when the logistics application changed rows between the
    read and the write (the re-checked WHERE left them alone: see `stock_left_alone`)."""
    stock = run.manifest.get("stock") or {}
    schema = {"measure": pl.String, "planned": pl.Int64, "written": pl.Int64}
    if not stock:
        return pl.DataFrame(schema=schema)
    planned = stock.get("planned") or {}
    written = stock.get("counts") if "written" in stock else None
    rows = [
        (m, stock.get(m), None) if m.startswith("nfs_") else (m, planned.get(m), None if written is None else written.get(m, 0))
        for m in STOCK_TOTALS
    ]
    return pl.DataFrame(rows, schema=schema, orient="row")


def stock_left_alone(run: Run) -> pl.DataFrame:
    """write, rows: per kind of write, the rows the re-checked WHERE skipped; only kinds with some."""
    left = (run.manifest.get("stock") or {}).get("left_alone") or {}
    return pl.DataFrame(
        {"write": list(left), "rows": list(left.values())}, schema={"write": pl.String, "rows": pl.Int64}
    ).filter(pl.col("rows") > 0).sort("write")


def lot_outcomes(run: Run) -> pl.DataFrame:
    """outcome, nfs: processed NFs per outcome (every outcome listed, 0 when none); empty without the stage."""
    a = run.part("stock_assignments")
    if a.is_empty():
        return pl.DataFrame(schema={"outcome": pl.String, "nfs": pl.Int64})
    outcome = (
        pl.when(pl.col("separacao_lote_id").is_not_null() & (pl.col("how") == "linked"))
        .then(pl.lit(OUTCOMES[0]))
        .when(pl.col("separacao_lote_id").is_not_null())
        .then(pl.lit(OUTCOMES[1]))
        .when(pl.col("tipo") == "DIVERGENCIA_NF_EMBARQUE")
        .then(pl.lit(OUTCOMES[3]))
        .otherwise(pl.lit(OUTCOMES[2]))
    )
    counted = a.group_by(outcome.alias("outcome")).agg(pl.len().cast(pl.Int64).alias("nfs"))
    every = pl.DataFrame({"outcome": list(OUTCOMES), "_order": list(range(len(OUTCOMES)))})
    return (
        every.join(counted, on="outcome", how="left")
        .with_columns(pl.col("nfs").fill_null(0))
        .sort("_order")
        .drop("_order")
    )


def nfs_without_lot(run: Run) -> pl.DataFrame:
    """numero_nf, origem, tipo, divergent_pedido, divergent_embarque_id: the NFs left without a lot, by NF."""
    return (
        run.part("stock_assignments")
        .filter(pl.col("separacao_lote_id").is_null())
        .select("numero_nf", "origem", "tipo", "divergent_pedido", "divergent_embarque_id")
        .sort("numero_nf")
    )


def divergences_by_product(run: Run) -> pl.DataFrame:
    """cod_produto, justifications, nfs, separated, invoiced, saldo, invoiced_above, separated_above.

    Per product, the justifications the run wrote — as production writes them (DESIGN §10):
    only for an NF whose lot scored below 0.99, a product both separated and invoiced with a
    ratio below 0.99, left for the users to classify. Σ quantities, how many were invoiced
    above what was separated (saldo 0) and how many below (a real partial invoicing, saldo >
    0); the largest saldo first."""
    return (
        run.part("justifications")
        .group_by("cod_produto")
        .agg(
            pl.len().cast(pl.Int64).alias("justifications"),
            pl.col("numero_nf").n_unique().cast(pl.Int64).alias("nfs"),
            _q("qtd_separada").sum().round(3).alias("separated"),
            _q("qtd_faturada").sum().round(3).alias("invoiced"),
            _q("qtd_saldo").sum().round(3).alias("saldo"),
            (pl.col("qtd_faturada") > pl.col("qtd_separada")).sum().cast(pl.Int64).alias("invoiced_above"),
            (pl.col("qtd_separada") > pl.col("qtd_faturada")).sum().cast(pl.Int64).alias("separated_above"),
        )
        .sort(["saldo", "cod_produto"], descending=[True, False])
    )


def justification_rows(run: Run) -> pl.DataFrame:
    """numero_nf, separacao_lote_id, num_pedido, cod_produto, qtd_separada, qtd_faturada, qtd_saldo,
    descricao_detalhada ('Divergência detectada: Score 80.00%': the product's ratio)."""
    return (
        run.part("justifications")
        .select(
            "numero_nf", "separacao_lote_id", "num_pedido", "cod_produto",
            _q("qtd_separada"), _q("qtd_faturada"), _q("qtd_saldo"), "descricao_detalhada",
        )  # fmt: skip
        .sort("numero_nf", "separacao_lote_id", "cod_produto")
    )


def inconsistency_actions(run: Run) -> pl.DataFrame:
    """action (open / resolve), tipo, rows, nfs: the inconsistencies the run opened (or updated) and resolved."""
    return (
        run.part("inconsistencies")
        .group_by("action", "tipo")
        .agg(pl.len().cast(pl.Int64).alias("rows"), pl.col("numero_nf").n_unique().cast(pl.Int64).alias("nfs"))
        .sort("action", "tipo", nulls_last=True)
    )
