"""Incoming invoice lines + what the database holds → the `ChangeSet` of a run.

Pure: frames in, frames out, no I/O (DESIGN §5). Every part is computed with
joins over the whole batch at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import polars as pl

from .schemas import (
    CONSOLIDATION,
    DOWNSTREAM,
    DRIFT_COLUMNS,
    EXISTING_CONSOLIDATION,
    EXISTING_LINE,
    KEY,
    LINE_VALUES,
    NEW_PRODUCT,
    NF_LIST,
    REJECTED,
    STATUS_CHANGE,
    empty,
)

CANCELADO = "Cancelado"
# Statuses that mean the same to Odoo: SEM_LOTE is set downstream on a posted NF.
STATUS_CLASS = {"Lançado": "posted", "SEM_LOTE": "posted", "Cancelado": "cancel", "Provisório": "draft"}


def status_class(expr: pl.Expr) -> pl.Expr:
    return expr.replace_strict(STATUS_CLASS, default=expr, return_dtype=pl.String)


@dataclass(frozen=True)
class ChangeSet:
    """What a run changes. Every part is a frame; the database is written from them."""

    inserts: pl.DataFrame  # schemas.LINE_VALUES: lines whose key is new
    status_changes: pl.DataFrame  # schemas.STATUS_CHANGE: existing lines whose status class differs
    drift: pl.DataFrame  # key, drift_fields, new values, old_ values
    cancellations: pl.DataFrame  # schemas.NF_LIST: NFs that move to Cancelado (cascade)
    reactivations: pl.DataFrame  # schemas.NF_LIST: NFs back from Cancelado
    new_products: pl.DataFrame  # schemas.NEW_PRODUCT
    consolidation: pl.DataFrame  # schemas.CONSOLIDATION: NF rows to upsert
    orphans: pl.DataFrame  # key + status_nf: in the database, no longer in Odoo (full runs)
    rejected: pl.DataFrame  # schemas.REJECTED
    # For the modules that follow (deliveries, freight): schemas.DOWNSTREAM, one row per
    # (NF, kind) — nfs_inserted, nfs_changed, nfs_to_reprocess (new + reactivated NFs) —
    # with the NF's customer (the CNPJs touched are those of inserted and changed NFs).
    downstream: pl.DataFrame = field(default_factory=lambda: empty(DOWNSTREAM))
    apply_drift: bool = False

    def parts(self) -> dict[str, pl.DataFrame]:
        return {f.name: getattr(self, f.name) for f in fields(self) if isinstance(getattr(self, f.name), pl.DataFrame)}

    def counts(self) -> dict[str, int]:
        return {name: frame.height for name, frame in self.parts().items() if name != "downstream"}

    def nfs(self) -> pl.Series:
        """Every NF some written part touches (the quarantine bisects over these)."""
        written = (self.inserts, self.status_changes, self.drift, self.cancellations, self.reactivations, self.consolidation)
        return pl.concat([f.get_column("numero_nf") for f in written]).unique().sort()

    def without(self, nfs: pl.Series | list[str]) -> "ChangeSet":
        """This ChangeSet with the NFs `nfs` left out whole (DESIGN §12): every part keyed by NF
        filtered, and the new products only those NFs' inserted lines needed dropped."""
        out = pl.Series("numero_nf", list(nfs) if not isinstance(nfs, pl.Series) else nfs, dtype=pl.String)
        if out.len() == 0:
            return self
        gone = pl.col("numero_nf").is_in(out.implode())
        parts = {n: (f.filter(~gone) if "numero_nf" in f.columns else f) for n, f in self.parts().items()}
        still = parts["inserts"].select("cod_produto").unique()
        dropped = self.inserts.filter(gone).select("cod_produto").unique().join(still, on="cod_produto", how="anti")
        parts["new_products"] = self.new_products.join(dropped, on="cod_produto", how="anti")
        return ChangeSet(**parts, apply_drift=self.apply_drift)  # `downstream` is a part: filtered too

    @property
    def writes(self) -> int:
        """Rows the load will write; zero means the database already matches Odoo."""
        drift = self.drift.height if self.apply_drift else 0
        return (
            self.inserts.height + self.status_changes.height + drift + self.new_products.height
            + self.consolidation.height + self.cancellations.height
        )  # fmt: skip


def _consolidate(lines: pl.DataFrame) -> pl.DataFrame:
    """One row per NF: header from its first line, value and gross weight summed."""
    header = [c for c in CONSOLIDATION.names() if c in LINE_VALUES and c != "numero_nf"]
    return (
        lines.group_by("numero_nf", maintain_order=True)
        .agg(
            *(pl.col(c).first() for c in header),
            pl.col("valor_produto_faturado").sum().cast(pl.Float64).alias("valor_total"),
            pl.col("peso_total").sum().cast(pl.Float64).alias("peso_bruto"),
            (pl.col("status_nf").first() != CANCELADO).alias("ativo"),
        )
        .select(CONSOLIDATION.names())
        .cast(dict(CONSOLIDATION))  # type: ignore[arg-type]
    )


def _differs(columns: list[str] | tuple[str, ...], old_prefix: str) -> pl.Expr:
    return pl.any_horizontal(pl.col(c).ne_missing(pl.col(f"{old_prefix}{c}")) for c in columns)


def compute_changeset(
    lines: pl.DataFrame,
    existing: pl.DataFrame,
    existing_products: pl.DataFrame,
    existing_consolidation: pl.DataFrame,
    *,
    full: bool,
    apply_drift: bool = False,
    rejected: pl.DataFrame | None = None,
) -> ChangeSet:
    """Compute the ChangeSet of a run (DESIGN §5).

    In: `lines` (schemas.LINE, from transform), and what the database holds —
    `existing` faturamento_produto rows (EXISTING_LINE; in incremental runs only
    the NFs of the batch), `existing_products` (codes already in
    cadastro_palletizacao), `existing_consolidation` (relatorio rows of the
    batch's NFs). `full` enables orphans and consolidation of every NF.
    """
    values = lines.select(LINE_VALUES.names())
    existing = existing.select(EXISTING_LINE.names()).cast(dict(EXISTING_LINE))  # type: ignore[arg-type]
    old = existing.rename({c: f"old_{c}" for c in EXISTING_LINE.names() if c not in KEY})

    inserts = values.join(existing.select(KEY), on=KEY, how="anti")

    # Status is the NF's: every existing row of an NF in the batch follows it.
    nf_status = values.group_by("numero_nf").agg(pl.col("status_nf").first())
    status_rows = existing.select(*KEY, pl.col("status_nf").alias("status_from")).join(nf_status, on="numero_nf")
    status_changes = status_rows.filter(status_class(pl.col("status_from")) != status_class(pl.col("status_nf")))
    status_changes = status_changes.select(STATUS_CHANGE.names()).sort(KEY)

    moved = status_changes.with_columns(
        status_class(pl.col("status_from")).alias("_from"), status_class(pl.col("status_nf")).alias("_to")
    )
    cancellations = moved.filter((pl.col("_to") == "cancel")).select("numero_nf").unique().sort("numero_nf")
    reactivations = (
        moved.filter((pl.col("_from") == "cancel") & (pl.col("_to") == "posted")).select("numero_nf").unique().sort("numero_nf")
    )

    both = values.join(old, on=KEY, how="inner")
    drift = (
        both.filter(_differs(DRIFT_COLUMNS, "old_"))
        .with_columns(
            pl.concat_list(
                pl.when(pl.col(c).ne_missing(pl.col(f"old_{c}"))).then(pl.lit(c)) for c in DRIFT_COLUMNS
            ).list.drop_nulls().alias("drift_fields")
        )
        .select(*KEY, "drift_fields", *DRIFT_COLUMNS, *(f"old_{c}" for c in DRIFT_COLUMNS))
        .sort(KEY)
    )

    new_products = (
        lines.join(existing_products.select("cod_produto"), on="cod_produto", how="anti")
        .group_by("cod_produto", maintain_order=True)
        .agg(pl.col("odoo_template_name").first(), pl.col("odoo_gross_weight").first())
        .select(
            "cod_produto",
            pl.col("odoo_template_name").alias("nome_produto"),
            pl.lit(1.0).alias("palletizacao"),
            pl.when(pl.col("odoo_gross_weight") > 0).then(pl.col("odoo_gross_weight")).otherwise(1.0).alias("peso_bruto"),
        )
        .cast(dict(NEW_PRODUCT))  # type: ignore[arg-type]
        .sort("cod_produto")
    )

    consolidation = _consolidate(lines)
    stored = existing_consolidation.select(EXISTING_CONSOLIDATION.names()).cast(dict(EXISTING_CONSOLIDATION))  # type: ignore[arg-type]
    if not full:
        touched = [inserts.select("numero_nf"), status_changes.select("numero_nf")]
        if apply_drift:
            touched.append(drift.select("numero_nf"))
        missing = consolidation.join(stored, on="numero_nf", how="anti").select("numero_nf")
        candidates = pl.concat([*touched, missing]).unique()
        consolidation = consolidation.join(candidates, on="numero_nf", how="semi")
    stored_old = stored.rename({c: f"old_{c}" for c in CONSOLIDATION.names() if c != "numero_nf"})
    compare = [c for c in CONSOLIDATION.names() if c != "numero_nf"]
    consolidation = (
        consolidation.join(stored_old, on="numero_nf", how="left")
        .filter(pl.col("old_ativo").is_null() | _differs(compare, "old_"))
        .select(CONSOLIDATION.names())
        .sort("numero_nf")
    )

    # Odoo still returns a rejected line: its key is not an orphan.
    returned = pl.concat([values.select(KEY), rejected.select(KEY).drop_nulls()]) if rejected is not None else values.select(KEY)
    orphans = (
        existing.join(returned, on=KEY, how="anti").select(*KEY, "status_nf").sort(KEY)
        if full
        else existing.select(*KEY, "status_nf").clear()
    )
    changed = [status_changes.select("numero_nf")] + ([drift.select("numero_nf")] if apply_drift else [])
    downstream = _downstream(values, existing, inserts, pl.concat(changed), reactivations)
    return ChangeSet(
        inserts=inserts.sort(KEY),
        status_changes=status_changes,
        drift=drift,
        cancellations=cancellations.cast(dict(NF_LIST)),  # type: ignore[arg-type]
        reactivations=reactivations.cast(dict(NF_LIST)),  # type: ignore[arg-type]
        new_products=new_products,
        consolidation=consolidation,
        orphans=orphans,
        rejected=rejected if rejected is not None else empty(REJECTED),
        apply_drift=apply_drift,
        downstream=downstream,
    )


def _downstream(
    values: pl.DataFrame, existing: pl.DataFrame, inserts: pl.DataFrame, changed: pl.DataFrame, reactivated: pl.DataFrame
) -> pl.DataFrame:
    """schemas.DOWNSTREAM: one row per (NF, kind, customer CNPJ of its lines in Odoo)."""
    inserted = inserts.select("numero_nf").unique()
    new_nfs = inserted.join(existing.select("numero_nf"), on="numero_nf", how="anti")
    cnpj = values.select("numero_nf", "cnpj_cliente").unique()  # an NF's lines may name several customers
    kinds = [
        inserted.with_columns(pl.lit("nfs_inserted").alias("kind")),
        changed.select("numero_nf").unique().with_columns(pl.lit("nfs_changed").alias("kind")),
        pl.concat([new_nfs, reactivated.select("numero_nf")]).unique().with_columns(pl.lit("nfs_to_reprocess").alias("kind")),
    ]
    out = pl.concat(kinds).drop_nulls("numero_nf").join(cnpj, on="numero_nf", how="left")
    return out.select(DOWNSTREAM.names()).cast(dict(DOWNSTREAM)).sort("kind", "numero_nf", "cnpj_cliente")  # type: ignore[arg-type]


def downstream_lists(downstream: pl.DataFrame) -> dict[str, list[str]]:
    """The downstream part as sorted lists per kind, and the customers touched (inserted or
    changed NFs): for people and tests looking at one small run, never for a run's data path."""
    out = {kind: downstream.filter(pl.col("kind") == kind).get_column("numero_nf").unique().sort().to_list()
           for kind in ("nfs_inserted", "nfs_changed", "nfs_to_reprocess")}  # fmt: skip
    touched = downstream.filter(pl.col("kind").is_in(["nfs_inserted", "nfs_changed"]) & (pl.col("cnpj_cliente") != ""))
    out["cnpjs_touched"] = touched.get_column("cnpj_cliente").drop_nulls().unique().sort().to_list()
    return out
