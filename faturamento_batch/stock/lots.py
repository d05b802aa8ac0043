"""Choosing the lot of every NF of the run (DESIGN §9 rules 1–3), all NFs at once.

Quantities travel as integer thousandths (`*_m` columns): the invoiced quantity is a
Decimal(15,3) and the separated one a float column, and comparing "at 3 decimals" is
then exact integer arithmetic whatever the order rows are summed in.
"""

from __future__ import annotations

import logging

import polars as pl

log = logging.getLogger(__name__)

POSTED = ("Lançado", "SEM_LOTE")
NF_SEM_SEPARACAO = "NF_SEM_SEPARACAO"
DIVERGENCIA_NF_EMBARQUE = "DIVERGENCIA_NF_EMBARQUE"
# A product's ratio min/max is truncated to this many parts of one before summing, so
# the score is an exact integer sum divided once: equal scores are equal floats (true
# ties) and the result does not depend on the order Polars sums a group in.
SCORE_SCALE = 1_000_000_000
# Why an NF has no lot (the inconsistency's observacao_resolucao is written from it).
NO_ORDER, LINKED_NO_LOT, NO_FREE_LOT = "no_order", "linked_no_lot", "no_free_lot"


def _active() -> pl.Expr:
    return ((pl.col("status") == "ativo") & (pl.col("embarque_status") == "ativo")).fill_null(False)


def _empty_nf() -> pl.Expr:
    return pl.col("nota_fiscal").is_null() | (pl.col("nota_fiscal") == "")


def nf_sort_key(col: str = "numero_nf") -> list[pl.Expr]:
    """'Lowest NF number': digit-only numbers by numeric value (no integer overflow on 20
    digits: fewer significant digits first, then text), before any other number in text order."""
    digits = pl.col(col).str.contains(r"^[0-9]+$").fill_null(False)
    significant = pl.col(col).str.strip_chars_start("0")
    return [
        (~digits).alias("_k0"),
        pl.when(digits).then(significant.str.len_chars()).otherwise(0).alias("_k1"),
        pl.when(digits).then(significant).otherwise(pl.col(col)).alias("_k2"),
        pl.col(col).alias("_k3"),
    ]


def thousandths(expr: pl.Expr) -> pl.Expr:
    """A Decimal(·,3) quantity as integer thousandths."""
    return (expr * 1000).cast(pl.Int64)


def posted_lines(nf_lines: pl.DataFrame) -> pl.DataFrame:
    """The posted lines of the candidate NFs; a cancelled or draft line is no part of the stage."""
    return nf_lines.filter(pl.col("status_nf").is_in(POSTED)).with_columns(
        thousandths(pl.col("qtd_produto_faturado")).fill_null(0).alias("q_m")
    )


def nf_headers(lines: pl.DataFrame) -> pl.DataFrame:
    """One row per processed NF: its order (null when `origem` is empty), date, totals, sort key."""
    has_origem = pl.col("origem").str.strip_chars() != ""
    return (
        lines.group_by("numero_nf")
        .agg(
            pl.col("origem").filter(has_origem).min().alias("order"),
            pl.col("data_fatura").min(),
            pl.col("cod_produto").n_unique().alias("n_products"),
            pl.col("cod_produto").min().alias("first_product"),
            pl.col("q_m").sum().alias("q_total_m"),
            (pl.col("status_nf") == "SEM_LOTE").any().alias("has_sem_lote"),
            (pl.col("status_nf") == "Lançado").any().alias("has_lancado"),
        )
        .with_columns(nf_sort_key())
    )


def separated(separations: pl.DataFrame) -> pl.DataFrame:
    """Pending separated quantity per (lot, order, product), in thousandths (DESIGN §10: only
    rows with `sincronizado_nf = false` count; NULL is not pending). Each row's float
    `qtd_saldo` is rounded to thousandths first (null/NaN count as 0), then summed exactly. A
    null `cod_produto` is one product of the lot (it matches no NF line, so it is an extra)."""
    rounded = (pl.col("qtd_saldo").fill_nan(None) * 1000).round().cast(pl.Int64, strict=False).fill_null(0)
    return (
        separations.filter(pl.col("separacao_lote_id").is_not_null() & pl.col("sincronizado_nf").eq_missing(False))
        .group_by("separacao_lote_id", "num_pedido", "cod_produto")
        .agg(rounded.sum().alias("q_sep_m"))
    )


def _linked(nfs: pl.DataFrame, items: pl.DataFrame) -> pl.DataFrame:
    """Rule 1, per NF that active items already name: lot, or why not (divergence / no lot)."""
    linked = items.filter(_active() & ~_empty_nf()).join(
        nfs.select("numero_nf", "order"), left_on="nota_fiscal", right_on="numero_nf"
    )
    same = (pl.col("pedido") == pl.col("order")).fill_null(False)  # an NF without order matches no item
    first_other = pl.struct("pedido", "embarque_id", "id").filter(~same).sort().first()
    first_same = pl.struct("embarque_id", "id").filter(same).sort().first()
    return (
        linked.group_by(pl.col("nota_fiscal").alias("numero_nf"))
        .agg(
            pl.col("separacao_lote_id").filter(same).min().alias("linked_lot"),
            first_other.struct.field("pedido").alias("divergent_pedido"),
            first_other.struct.field("embarque_id").alias("divergent_embarque_id"),
            first_same.struct.field("embarque_id").alias("linked_embarque_id"),
        )
        .with_columns(
            pl.when(pl.col("linked_lot").is_not_null())
            .then(None)
            .when(pl.col("divergent_pedido").is_not_null())
            .then(pl.lit(DIVERGENCIA_NF_EMBARQUE))
            .otherwise(pl.lit(NF_SEM_SEPARACAO))
            .alias("tipo")
        )
        .with_columns(
            pl.when(pl.col("tipo") == DIVERGENCIA_NF_EMBARQUE)
            .then(pl.col("divergent_pedido"))
            .alias("divergent_pedido"),
            pl.when(pl.col("tipo") == DIVERGENCIA_NF_EMBARQUE)
            .then(pl.col("divergent_embarque_id"))
            .alias("divergent_embarque_id"),
        )
    )


def _scored_pairs(
    nfs: pl.DataFrame, lines: pl.DataFrame, items: pl.DataFrame, taken_lots: pl.DataFrame, sep: pl.DataFrame
) -> pl.DataFrame:
    """Rule 2 as production runs it (DESIGN §10): eligible (NF, lot) pairs of the NFs not decided
    by rule 1, with their score. A lot is a candidate when a free item of the order carries it and
    it has a pending separation of the order, or when it is the order's only such lot."""
    pending = sep.select("separacao_lote_id", "num_pedido").unique().with_columns(pl.lit(True).alias("pending"))
    candidate_lots = (
        items.filter(_active() & _empty_nf() & pl.col("separacao_lote_id").is_not_null())
        .select("pedido", "separacao_lote_id")
        .unique()
        .join(taken_lots, on="separacao_lote_id", how="anti")
        .with_columns(pl.len().over("pedido").alias("order_lots"))
        .join(pending, left_on=["separacao_lote_id", "pedido"], right_on=["separacao_lote_id", "num_pedido"], how="left")
        .filter(pl.col("pending").fill_null(False) | (pl.col("order_lots") == 1))
    )
    pairs = nfs.select("numero_nf", "order", "n_products", "_k0", "_k1", "_k2", "_k3").join(
        candidate_lots, left_on="order", right_on="pedido"
    )
    # The lot's pending products (n_sep), however many the NF also has.
    lot_products = sep.group_by("separacao_lote_id", "num_pedido").agg(pl.len().alias("n_sep"))
    q_nf, q_sep = pl.col("q_m"), pl.col("q_sep_m").fill_null(0)
    lo, hi = pl.min_horizontal(q_nf, q_sep), pl.max_horizontal(q_nf, q_sep)
    ratio = pl.when(lo > 0).then(lo / hi).otherwise(0.0)
    scored = (
        pairs.join(lines.select("numero_nf", "cod_produto", "q_m"), on="numero_nf")
        .join(
            sep,
            left_on=["separacao_lote_id", "order", "cod_produto"],
            right_on=["separacao_lote_id", "num_pedido", "cod_produto"],
            how="left",
        )
        .group_by("numero_nf", "separacao_lote_id")
        .agg(
            (ratio * SCORE_SCALE).floor().cast(pl.Int64).sum().alias("score_units"),
            pl.col("q_sep_m").is_not_null().sum().cast(pl.Int64).alias("shared"),
            *(pl.col(k).first() for k in ("order", "n_products", "order_lots", "_k0", "_k1", "_k2", "_k3")),
        )
        .join(lot_products, left_on=["separacao_lote_id", "order"], right_on=["separacao_lote_id", "num_pedido"], how="left")
        .with_columns(pl.col("n_sep").fill_null(0).cast(pl.Int64))
        .with_columns(_penalized().alias("score_units"))
        .with_columns(
            (pl.col("score_units").cast(pl.Float64) / (pl.col("n_products").cast(pl.Float64) * SCORE_SCALE)).alias(
                "score"
            )
        )
    )
    return scored.filter((pl.col("score_units") > 0) | (pl.col("order_lots") == 1))


def _penalized() -> pl.Expr:
    """Σ ratio units × (1 − 0.2 × extras / n_sep), as integers: × (5·n_sep − extras) ÷ (5·n_sep),
    floored, so equal scores stay equal whatever path computed them. Extras are the lot's pending
    products the NF does not have."""
    extras = pl.col("n_sep") - pl.col("shared")
    five = pl.col("n_sep") * 5
    return pl.when(pl.col("n_sep") > 0).then(pl.col("score_units") * (five - extras) // five).otherwise(
        pl.col("score_units")
    )


def assign(pairs: pl.DataFrame) -> pl.DataFrame:
    """Rule 3: the greedy one-lot-per-NF, one-NF-per-lot assignment, in vectorized rounds.

    Greedy walks the pairs in one global order (score desc, NF number, lot id) and takes
    a pair when its NF and its lot are both free. A round takes every pair that comes
    first both among its NF's remaining pairs and among its lot's: no pair before it
    shares its NF or its lot, so greedy would find both free and take it too. Dropping
    the taken NFs' and lots' pairs leaves exactly what greedy still has to walk, and the
    globally first remaining pair always qualifies, so every round takes at least one pair
    and the loop ends after at most min(NFs, lots) rounds (in practice a handful: only
    NFs of orders that share lots compete). The loop is over rounds, never over rows.
    """
    ranked = pairs.sort(
        ["score", "_k0", "_k1", "_k2", "_k3", "separacao_lote_id"],
        descending=[True, False, False, False, False, False],
    ).with_row_index("rank")
    taken: list[pl.DataFrame] = []
    pairs_in, rounds = ranked.height, 0
    while ranked.height:
        rounds += 1
        first = (pl.col("rank") == pl.col("rank").min().over("numero_nf")) & (
            pl.col("rank") == pl.col("rank").min().over("separacao_lote_id")
        )
        won = ranked.filter(first)
        taken.append(won.select("numero_nf", "separacao_lote_id", "score"))
        ranked = ranked.join(won.select("numero_nf"), on="numero_nf", how="anti").join(
            won.select("separacao_lote_id"), on="separacao_lote_id", how="anti"
        )
    log.debug("lot assignment: %d eligible pairs, %d rounds", pairs_in, rounds)
    schema = {"numero_nf": pl.String, "separacao_lote_id": pl.String, "score": pl.Float64}
    return pl.concat(taken) if taken else pl.DataFrame(schema=schema)


def choose_lots(nfs: pl.DataFrame, lines: pl.DataFrame, items: pl.DataFrame, sep: pl.DataFrame) -> pl.DataFrame:
    """Every NF of `nfs` with its lot (or `tipo` and `reason` when it has none), `how`,
    `claimant` (the NF that links the lot's free items and separations of its order),
    `embarque_id` (lowest of the lot's active items of the order that name the NF, or are
    free and the NF is the claimant), and the divergent order/shipment of rule 1."""
    linked = _linked(nfs, items)
    taken_lots = linked.select("linked_lot").drop_nulls().unique().rename({"linked_lot": "separacao_lote_id"})
    open_nfs = nfs.join(linked.select("numero_nf"), on="numero_nf", how="anti").filter(pl.col("order").is_not_null())
    won = assign(_scored_pairs(open_nfs, lines, items, taken_lots, sep))
    decided = nfs.join(linked, on="numero_nf", how="left").join(won, on="numero_nf", how="left")
    is_linked = pl.col("tipo").is_not_null() | pl.col("linked_lot").is_not_null()
    decided = decided.with_columns(
        pl.when(is_linked).then(pl.lit("linked")).when(pl.col("separacao_lote_id").is_not_null())
        .then(pl.lit("candidate")).otherwise(pl.lit("none")).alias("how"),
        pl.coalesce("linked_lot", "separacao_lote_id").alias("separacao_lote_id"),
    ).with_columns(
        pl.when(pl.col("separacao_lote_id").is_not_null()).then(None)
        .otherwise(pl.coalesce("tipo", pl.lit(NF_SEM_SEPARACAO))).alias("tipo"),
        pl.when(pl.col("separacao_lote_id").is_not_null()).then(None)
        .when(pl.col("tipo") == DIVERGENCIA_NF_EMBARQUE).then(pl.lit(DIVERGENCIA_NF_EMBARQUE))
        .when(pl.col("tipo") == NF_SEM_SEPARACAO).then(pl.lit(LINKED_NO_LOT))
        .when(pl.col("order").is_null()).then(pl.lit(NO_ORDER))
        .otherwise(pl.lit(NO_FREE_LOT)).alias("reason"),
    )  # fmt: skip
    # Two NFs may hold one lot of one order only through rule 1; the lot's free items and
    # separations then go to the lowest NF number, its claimant.
    decided = decided.sort("_k0", "_k1", "_k2", "_k3").with_columns(
        (pl.col("separacao_lote_id").is_not_null()
         & (pl.col("numero_nf") == pl.col("numero_nf").first().over("separacao_lote_id", "order"))).alias("claimant")
    )  # fmt: skip
    shipment = (
        items.filter(_active())
        .select("separacao_lote_id", "pedido", "nota_fiscal", "embarque_id")
        .join(decided.select("numero_nf", "order", "separacao_lote_id", "claimant"),
              left_on=["separacao_lote_id", "pedido"], right_on=["separacao_lote_id", "order"])
        .filter((_empty_nf() & pl.col("claimant")) | (pl.col("nota_fiscal") == pl.col("numero_nf")))
        .group_by("numero_nf")
        .agg(pl.col("embarque_id").min())
    )  # fmt: skip
    return decided.join(shipment, on="numero_nf", how="left")
