"""Shape a loaded `Run` for people: small Polars frames ready to display or chart.

Every function takes a `Run` (from `loading.load_run`) and returns a small
frame; on a part the run did not write it returns an empty frame — the notebook
then says "nothing of this kind".

Money and quantities are Decimal in the artifacts; here they become Float64:
these frames are for reading and charts, not for writing back.
"""

from __future__ import annotations

import polars as pl

from ..schemas import KEY
from .loading import CASCADE_COLUMNS, CHANGESET_PARTS, DELTA_COLUMNS, Run

# -- run summary --------------------------------------------------------------------


def overview(run: Run) -> pl.DataFrame:
    """item, value (text): what kind of run it was, its cursor window, volumes and costs."""
    m, c = run.manifest, run.counts
    cursor = m.get("cursor") or {}
    items = {
        "run id": run.run_id,
        "job": m.get("job"),
        "status": m.get("status"),
        "mode": m.get("mode"),
        "dry run": m.get("dry_run"),
        "drift written": m.get("apply_drift"),
        "started (UTC)": m.get("started_at"),
        "finished (UTC)": m.get("finished_at"),
        "seconds": (m.get("timings") or {}).get("total"),
        "cursor stored": cursor.get("stored"),
        "read since": cursor.get("since") or ("the beginning" if m.get("mode") == "full" else None),
        "new cursor": cursor.get("new"),
        "source": m.get("source"),
        "Odoo lines": c.get("odoo_lines"),
        "invoice lines": c.get("lines"),
        "rejected ratio": f"{m['reject_ratio']:.2%}" if m.get("reject_ratio") is not None else None,
        "rows to write": m.get("rows_to_write"),
        "SQL statements": (m.get("sql_statements") or {}).get("total"),
        "Odoo calls": (m.get("odoo") or {}).get("total_calls"),
        "peak memory (MB)": m.get("peak_memory_mb"),
        "error": m.get("error"),
        "artifacts": str(run.path),
    }
    shown = {k: v for k, v in items.items() if v is not None or k in ("cursor stored", "read since")}
    return pl.DataFrame(
        {"item": list(shown), "value": ["-" if v is None else str(v) for v in shown.values()]},
        schema={"item": pl.String, "value": pl.String},
    )


def part_counts(run: Run) -> pl.DataFrame:
    """part, rows: one row per ChangeSet part (from the manifest; the Parquet file when the manifest has no count)."""
    rows = [run.counts[p] if p in run.counts else run.part(p).height for p in CHANGESET_PARTS]
    return pl.DataFrame({"part": list(CHANGESET_PARTS), "rows": rows}, schema={"part": pl.String, "rows": pl.Int64})


def phase_timings(run: Run) -> pl.DataFrame:
    """phase, seconds, share (of the run's total), in the order the phases ran; without the total itself."""
    t = run.manifest.get("timings") or {}
    total = t.get("total") or sum(v for k, v in t.items() if k != "total") or None
    phases = [(k, float(v)) for k, v in t.items() if k != "total"]
    return pl.DataFrame(
        {"phase": [k for k, _ in phases], "seconds": [v for _, v in phases]},
        schema={"phase": pl.String, "seconds": pl.Float64},
    ).with_columns((pl.col("seconds") / total if total else pl.lit(None, pl.Float64)).round(3).alias("share"))


# -- inserts ------------------------------------------------------------------------


def _money(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.Float64).sum().round(2)


def inserts_by_day(run: Run) -> pl.DataFrame:
    """data_fatura, nfs, lines, valor: new lines per invoice date, oldest first."""
    return (
        run.part("inserts")
        .group_by("data_fatura")
        .agg(
            pl.col("numero_nf").n_unique().alias("nfs"),
            pl.len().alias("lines"),
            _money("valor_produto_faturado").alias("valor"),
        )
        .sort("data_fatura")
    )


def inserts_by_uf(run: Run) -> pl.DataFrame:
    """estado, nfs, lines, valor: new lines per state (UF), largest value first."""
    return (
        run.part("inserts")
        .group_by("estado")
        .agg(
            pl.col("numero_nf").n_unique().alias("nfs"),
            pl.len().alias("lines"),
            _money("valor_produto_faturado").alias("valor"),
        )
        .sort(["valor", "estado"], descending=[True, False], nulls_last=True)
    )


def top_customers(run: Run, n: int = 10) -> pl.DataFrame:
    """cnpj_cliente, nome_cliente, nfs, lines, valor: the `n` customers with the most new value."""
    return (
        run.part("inserts")
        .group_by("cnpj_cliente")
        .agg(
            pl.col("nome_cliente").first(),
            pl.col("numero_nf").n_unique().alias("nfs"),
            pl.len().alias("lines"),
            _money("valor_produto_faturado").alias("valor"),
        )
        .sort(["valor", "cnpj_cliente"], descending=[True, False])
        .head(n)
    )


def top_products(run: Run, n: int = 10) -> pl.DataFrame:
    """cod_produto, nome_produto, nfs, qtd, valor: the `n` products with the most new value."""
    return (
        run.part("inserts")
        .group_by("cod_produto")
        .agg(
            pl.col("nome_produto").first(),
            pl.col("numero_nf").n_unique().alias("nfs"),
            pl.col("qtd_produto_faturado").cast(pl.Float64).sum().round(3).alias("qtd"),
            _money("valor_produto_faturado").alias("valor"),
        )
        .sort(["valor", "cod_produto"], descending=[True, False])
        .head(n)
    )


# -- status changes and cancellations -----------------------------------------------


def status_transitions(run: Run) -> pl.DataFrame:
    """transition ("from → to"), status_from, status_to, lines, nfs; most lines first."""
    return (
        run.part("status_changes")
        .group_by("status_from", "status_nf")
        .agg(pl.len().alias("lines"), pl.col("numero_nf").n_unique().alias("nfs"))
        .rename({"status_nf": "status_to"})
        .select(
            pl.concat_str("status_from", pl.lit(" → "), "status_to").alias("transition"),
            "status_from",
            "status_to",
            "lines",
            "nfs",
        )
        .sort(["lines", "transition"], descending=[True, False])
    )


def cancellation_cascade(run: Run) -> pl.DataFrame:
    """numero_nf, stock_movements, shipment_items, separations, consolidations: rows each cancelled NF touched.

    The first three come from `cascade.parquet` (absent in a dry run: nothing
    was written, so they read 0); consolidations counts the NF's
    consolidation rows this run deactivated (`ativo` false).
    """
    cascade = run.part("cascade")
    per_table = cascade.group_by("numero_nf").agg(
        pl.col("linhas").filter(pl.col("tabela") == table).sum().alias(name) for table, name in CASCADE_COLUMNS.items()
    )
    deactivated = run.part("consolidation").filter(~pl.col("ativo")).group_by("numero_nf").agg(pl.len().alias("consolidations"))
    counts = [*CASCADE_COLUMNS.values(), "consolidations"]
    return (
        run.part("cancellations")
        .select("numero_nf")
        .join(per_table, on="numero_nf", how="left")
        .join(deactivated, on="numero_nf", how="left")
        .with_columns(pl.col(c).fill_null(0).cast(pl.Int64) for c in counts)
        .select("numero_nf", *counts)
        .sort("numero_nf")
    )


def cascade_totals(run: Run) -> pl.DataFrame:
    """touched (what the cancellations changed), rows: totals of `cancellation_cascade`; empty without cancellations."""
    per_nf = cancellation_cascade(run)
    if per_nf.is_empty():
        return pl.DataFrame(schema={"touched": pl.String, "rows": pl.Int64})
    return per_nf.drop("numero_nf").sum().unpivot(variable_name="touched", value_name="rows").cast({"rows": pl.Int64})


# -- reactivations, reprocessing, new products --------------------------------------


def reactivated_nfs(run: Run) -> pl.DataFrame:
    """numero_nf, nome_cliente, valor_total, ativo: NFs back from Cancelado, with their consolidation row."""
    consolidation = run.part("consolidation").select("numero_nf", "nome_cliente", "valor_total", "ativo")
    return run.part("reactivations").select("numero_nf").join(consolidation, on="numero_nf", how="left").sort("numero_nf")


def downstream_nfs(run: Run, kind: str) -> list[str]:
    """The NFs of one downstream kind: the `downstream` part, or the manifest's list in runs written before it."""
    if (run.path / "downstream.parquet").exists():
        part = run.part("downstream").filter(pl.col("kind") == kind)
        return part.get_column("numero_nf").unique().sort().to_list()
    listed = (run.manifest.get("downstream") or {}).get(kind)
    return sorted(listed) if isinstance(listed, list) else []


def nfs_to_reprocess(run: Run) -> pl.DataFrame:
    """numero_nf, why ("new NF" or "reactivated"): the run's `downstream` part, for the modules downstream."""
    listed = downstream_nfs(run, "nfs_to_reprocess")
    reactivated = run.part("reactivations").get_column("numero_nf")
    return (
        pl.DataFrame({"numero_nf": listed}, schema={"numero_nf": pl.String})
        .with_columns(
            pl.when(pl.col("numero_nf").is_in(reactivated.implode()))
            .then(pl.lit("reactivated"))
            .otherwise(pl.lit("new NF"))
            .alias("why")
        )
        .sort("numero_nf")
    )


def new_products(run: Run) -> pl.DataFrame:
    """cod_produto, nome_produto, palletizacao, peso_bruto: products this run registers."""
    return run.part("new_products").sort("cod_produto")


# -- drift --------------------------------------------------------------------------


def drift_fields(run: Run) -> pl.DataFrame:
    """field, lines, nfs: how often each Odoo-owned column differs from the database; most lines first."""
    return (
        run.part("drift")
        .select("numero_nf", pl.col("drift_fields").alias("field"))
        .explode("field")
        .drop_nulls("field")
        .group_by("field")
        .agg(pl.len().alias("lines"), pl.col("numero_nf").n_unique().alias("nfs"))
        .sort(["lines", "field"], descending=[True, False])
    )


def drift_deltas(run: Run) -> pl.DataFrame:
    """numero_nf, cod_produto, fields, delta_qtd, delta_preco, delta_valor, delta_peso: per drifting line, Odoo − database."""
    return run.part("drift").select(
        *KEY,
        pl.col("drift_fields").list.join(", ").alias("fields"),
        *(
            (pl.col(c).cast(pl.Float64) - pl.col(f"old_{c}").cast(pl.Float64)).round(4).alias(name)
            for c, name in DELTA_COLUMNS.items()
        ),
    )


def drift_totals(run: Run) -> pl.DataFrame:
    """measure, lines (that changed), net (Σ delta), gross (Σ |delta|), largest (max |delta|), for qtd, preco, valor, peso."""
    deltas = drift_deltas(run)
    frames = [
        deltas.filter(pl.col(name).is_not_null() & (pl.col(name) != 0)).select(
            pl.lit(name.removeprefix("delta_")).alias("measure"),
            pl.len().cast(pl.Int64).alias("lines"),
            pl.col(name).sum().round(4).alias("net"),
            pl.col(name).abs().sum().round(4).alias("gross"),
            pl.col(name).abs().max().round(4).alias("largest"),
        )
        for name in DELTA_COLUMNS.values()
    ]
    return pl.concat(frames).filter(pl.col("lines") > 0)


def top_drift_nfs(run: Run, n: int = 10) -> pl.DataFrame:
    """numero_nf, lines, fields, delta_valor, delta_qtd: the `n` NFs whose value moved most (then most lines)."""
    fields = (
        run.part("drift")
        .select("numero_nf", pl.col("drift_fields").alias("field"))
        .explode("field")
        .group_by("numero_nf")
        .agg(pl.col("field").drop_nulls().unique().sort().str.join(", ").alias("fields"))
    )
    return (
        drift_deltas(run)
        .group_by("numero_nf")
        .agg(pl.len().alias("lines"), pl.col("delta_valor").sum().round(2), pl.col("delta_qtd").sum().round(3))
        .join(fields, on="numero_nf", how="left")
        .select("numero_nf", "lines", "fields", "delta_valor", "delta_qtd")
        .sort(
            [pl.col("delta_valor").abs(), pl.col("lines"), pl.col("numero_nf")],
            descending=[True, True, False],
        )
        .head(n)
    )


# -- rejected lines -----------------------------------------------------------------


def rejected_by_reason(run: Run) -> pl.DataFrame:
    """reason, lines, nfs, share (of the Odoo lines read): why lines were left out, most first."""
    read = run.counts.get("odoo_lines") or None
    return (
        run.part("rejected")
        .group_by("reason")
        .agg(pl.len().alias("lines"), pl.col("numero_nf").drop_nulls().n_unique().alias("nfs"))
        .with_columns((pl.col("lines") / read if read else pl.lit(None, pl.Float64)).round(4).alias("share"))
        .sort(["lines", "reason"], descending=[True, False])
    )


def rejected_examples(run: Run, per_reason: int = 3) -> pl.DataFrame:
    """The first `per_reason` rejected lines of each reason (by Odoo line id), to look up in Odoo."""
    return (
        run.part("rejected")
        .sort("reason", "odoo_line_id")
        .group_by("reason", maintain_order=True)
        .head(per_reason)
        .select("reason", "odoo_line_id", "odoo_move_id", "numero_nf", "cod_produto")
    )


# -- two runs side by side ----------------------------------------------------------


def _labels(run: Run, other: Run) -> tuple[str, str]:
    a, b = run.run_id, other.run_id
    return (a, b) if a != b else (a, f"{b} (other)")


def _side_by_side(key: str, mine: pl.DataFrame, theirs: pl.DataFrame, value: str, labels: tuple[str, str]) -> pl.DataFrame:
    a, b = labels
    return (
        mine.select(key, pl.col(value).alias(a))
        .join(theirs.select(key, pl.col(value).alias(b)), on=key, how="full", coalesce=True, maintain_order="left_right")
        .with_columns(pl.col(a).fill_null(0), pl.col(b).fill_null(0))
        .with_columns((pl.col(a) - pl.col(b)).alias("change"))
    )


def compare_counts(run: Run, other: Run) -> pl.DataFrame:
    """part, <run id>, <other run id>, change (run − other): rows per ChangeSet part in both runs."""
    return _side_by_side("part", part_counts(run), part_counts(other), "rows", _labels(run, other))


def compare_timings(run: Run, other: Run) -> pl.DataFrame:
    """phase, <run id>, <other run id>, change (run − other): seconds per phase and in total."""

    def with_total(r: Run) -> pl.DataFrame:
        total = float((r.manifest.get("timings") or {}).get("total") or 0.0)
        return pl.concat([phase_timings(r).select("phase", "seconds"), pl.DataFrame({"phase": ["total"], "seconds": [total]})])

    both = _side_by_side("phase", with_total(run), with_total(other), "seconds", _labels(run, other))
    # A chunked full run has phases an incremental one lacks: the total stays last anyway.
    return both.with_columns(pl.col("change").round(4)).sort(pl.col("phase") == "total", maintain_order=True)
