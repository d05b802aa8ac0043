"""Every write of DESIGN §9 as production runs it (§10), from the chosen lots: movements,
links, divergent items, statuses, inconsistencies, justifications. Each frame holds only rows that change something, so a
plan over the state its own writes leave behind is empty.
"""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from ..schemas import (
    STOCK_INCONSISTENCY,
    STOCK_ITEM_FLAG,
    STOCK_ITEM_LINK,
    STOCK_JUSTIFICATION,
    STOCK_MOVEMENT_COMPLETE,
    STOCK_MOVEMENT_INSERT,
    STOCK_SEPARATION_LINK,
    STOCK_SEPARATION_STATUS,
    STOCK_STATUS_CHANGE,
    Q3,
)
from .lots import DIVERGENCIA_NF_EMBARQUE, LINKED_NO_LOT, NO_ORDER

MULTIPLOS = "MULTIPLOS"
# The pallet product: its own module writes its stock movement (legacy-rules §7).
PALLET_CODES = ("208000012",)
# Below this score the NF's lot gets justification rows (and so does a product's ratio).
JUSTIFY_BELOW = 0.99


def from_thousandths(expr: pl.Expr) -> pl.Expr:
    return (expr.cast(pl.Decimal(38, 0)) * pl.lit(Decimal("0.001"))).cast(Q3)


def _has_lot() -> pl.Expr:
    return pl.col("separacao_lote_id").is_not_null()


def _lot_observacao() -> pl.Expr:
    return pl.when(_has_lot()).then(
        pl.format("Baixa automática NF {} - lote separação {}", "numero_nf", "separacao_lote_id")
    ).otherwise(pl.format("Baixa automática NF {} - Sem Separação", "numero_nf"))


def movements(
    lines: pl.DataFrame, decided: pl.DataFrame, existing: pl.DataFrame, pallet_codes: tuple[str, ...] = PALLET_CODES
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(inserts, completions): a line with no FATURAMENTO movement gets one, unless its product
    is a pallet code (the pallet module writes that one); with a lot, the existing movements of
    the line are completed unless they already carry it."""
    nf = decided.select("numero_nf", "order", "separacao_lote_id", "embarque_id", "data_fatura")
    rows = lines.select("numero_nf", "cod_produto", "nome_produto", "q_m").join(nf, on="numero_nf")
    present = existing.select("numero_nf", "cod_produto").unique()
    inserts = (
        rows.join(present, on=["numero_nf", "cod_produto"], how="anti")
        .filter(~pl.col("cod_produto").is_in(list(pallet_codes)))
        .select(
            "cod_produto",
            "nome_produto",
            pl.col("data_fatura").alias("data_movimentacao"),
            pl.lit("FATURAMENTO").alias("tipo_movimentacao"),
            pl.lit("VENDA").alias("local_movimentacao"),
            from_thousandths(-pl.col("q_m").abs()).alias("qtd_movimentacao"),
            "separacao_lote_id",
            "numero_nf",
            pl.col("order").alias("num_pedido"),
            pl.lit("ODOO").alias("tipo_origem"),
            pl.lit("FATURADO").alias("status_nf"),
            pl.col("embarque_id").alias("codigo_embarque"),
            _lot_observacao().alias("observacao"),
        )
        .sort("numero_nf", "cod_produto")
    )
    target = rows.filter(_has_lot()).select(
        "numero_nf", "cod_produto", pl.col("separacao_lote_id").alias("lot"), pl.col("embarque_id").alias("embarque")
    )
    done = pl.col("separacao_lote_id").eq_missing(pl.col("lot")) & pl.col("codigo_embarque").eq_missing(
        pl.col("embarque")
    )
    completions = (
        existing.join(target, on=["numero_nf", "cod_produto"])
        .filter(~done)
        .select(
            "id",
            "numero_nf",
            "cod_produto",
            pl.col("lot").alias("separacao_lote_id"),
            pl.col("embarque").alias("codigo_embarque"),
            pl.format("Baixa automática NF {} - lote separação {}", "numero_nf", "lot").alias("observacao"),
        )
        .sort("id")
    )
    return inserts.cast(dict(STOCK_MOVEMENT_INSERT)), completions.cast(dict(STOCK_MOVEMENT_COMPLETE))


def item_links(decided: pl.DataFrame, items: pl.DataFrame) -> pl.DataFrame:
    """Items of (lot, order) whose nota_fiscal is empty get the lot's claimant NF, whatever
    the item's or its shipment's status (§9 names none for this write); their erro_validacao is
    cleared whatever it held (§10: it was about the missing NF). `clear_erro` says it held one."""
    empty = pl.col("nota_fiscal").is_null() | (pl.col("nota_fiscal") == "")
    claims = items.filter(empty).join(
        decided.filter(pl.col("claimant")).select("numero_nf", "order", "separacao_lote_id"),
        left_on=["separacao_lote_id", "pedido"],
        right_on=["separacao_lote_id", "order"],
    )
    return (
        claims.select("id", "numero_nf", "separacao_lote_id", pl.col("erro_validacao").is_not_null().alias("clear_erro"))
        .sort("id")
        .cast(dict(STOCK_ITEM_LINK))
    )


def item_flags(decided: pl.DataFrame, items: pl.DataFrame) -> pl.DataFrame:
    """§10: an NF left without a lot by a divergence (§9 rule 1) flags every active item of an
    active shipment naming it with another `pedido`, when the item's erro_validacao is empty:
    `NF_DIVERGENTE: Pedido NF ({o}) != Pedido Item ({pedido})` (its nota_fiscal is kept)."""
    active = ((pl.col("status") == "ativo") & (pl.col("embarque_status") == "ativo")).fill_null(False)
    blank = pl.col("erro_validacao").is_null() | (pl.col("erro_validacao") == "")
    divergent = decided.filter(pl.col("tipo") == DIVERGENCIA_NF_EMBARQUE).select("numero_nf", "order")
    return (
        items.filter(active & blank)
        .join(divergent, left_on="nota_fiscal", right_on="numero_nf")
        .filter(~pl.col("pedido").eq_missing(pl.col("order")))
        .select(
            "id",
            pl.col("nota_fiscal").alias("numero_nf"),
            pl.format("NF_DIVERGENTE: Pedido NF ({}) != Pedido Item ({})", pl.col("order").fill_null(""),
                      pl.col("pedido").fill_null("")).alias("erro_validacao"),
        )  # fmt: skip
        .sort("id")
        .cast(dict(STOCK_ITEM_FLAG))
    )


def separation_links(decided: pl.DataFrame, separations: pl.DataFrame) -> pl.DataFrame:
    """separacao rows of (lot, order) with sincronizado_nf false are synced to the claimant NF."""
    claims = separations.filter(pl.col("sincronizado_nf").eq_missing(False)).drop("numero_nf").join(
        decided.filter(pl.col("claimant")).select("numero_nf", "order", "separacao_lote_id"),
        left_on=["separacao_lote_id", "num_pedido"],
        right_on=["separacao_lote_id", "order"],
    )
    return (
        claims.select("id", "numero_nf", "separacao_lote_id").sort("id").cast(dict(STOCK_SEPARATION_LINK))
    )


def separation_statuses(decided: pl.DataFrame, separations: pl.DataFrame, links: pl.DataFrame) -> pl.DataFrame:
    """§10: every separacao row of (lot, order) of an NF with a lot, not yet `FATURADO`, becomes
    `FATURADO` whatever its sincronizado_nf; the rows the sync writes (status included) are not
    listed twice."""
    # The NF that decided the pair rides along, so the quarantine can leave its writes out (§12).
    pairs = (
        decided.filter(_has_lot() & pl.col("order").is_not_null())
        .select("separacao_lote_id", "order", pl.col("numero_nf").alias("decided_by"))
        .sort("decided_by")
        .unique(["separacao_lote_id", "order"], keep="first")
    )
    return (
        separations.filter(~pl.col("status").eq_missing("FATURADO"))
        .join(pairs, left_on=["separacao_lote_id", "num_pedido"], right_on=["separacao_lote_id", "order"])
        .join(links.select("id"), on="id", how="anti")
        .select("id", "separacao_lote_id", "num_pedido", pl.col("decided_by").alias("numero_nf"))
        .sort("id")
        .cast(dict(STOCK_SEPARATION_STATUS))
    )


def status_changes(decided: pl.DataFrame) -> pl.DataFrame:
    """SEM_LOTE → Lançado for an NF that got a lot, Lançado → SEM_LOTE for one that did not."""
    to_lancado = decided.filter(_has_lot() & pl.col("has_sem_lote")).select(
        "numero_nf", pl.lit("SEM_LOTE").alias("status_from"), pl.lit("Lançado").alias("status_nf")
    )
    to_sem_lote = decided.filter(~_has_lot() & pl.col("has_lancado")).select(
        "numero_nf", pl.lit("Lançado").alias("status_from"), pl.lit("SEM_LOTE").alias("status_nf")
    )
    return pl.concat([to_lancado, to_sem_lote]).sort("numero_nf").cast(dict(STOCK_STATUS_CHANGE))


def _why() -> pl.Expr:
    """observacao_resolucao of an open inconsistency: why the NF has no lot."""
    embarque = pl.col("divergent_embarque_id").cast(pl.String)
    return (
        pl.when(pl.col("reason") == DIVERGENCIA_NF_EMBARQUE)
        .then(
            pl.when(pl.col("order").is_null())
            .then(pl.format("NF {} sem pedido vinculada ao embarque {} do pedido {}", "numero_nf", embarque, "divergent_pedido"))
            .otherwise(
                pl.format(
                    "NF {} do pedido {} vinculada ao embarque {} do pedido {}",
                    "numero_nf", "order", embarque, "divergent_pedido",
                )
            )
        )
        .when(pl.col("reason") == LINKED_NO_LOT)
        .then(
            pl.format(
                "NF {} vinculada ao embarque {} do pedido {} sem lote de separação",
                "numero_nf", pl.col("linked_embarque_id").cast(pl.String), "order",
            )
        )
        .when(pl.col("reason") == NO_ORDER)
        .then(pl.format("NF {} sem pedido de origem", "numero_nf"))
        .otherwise(pl.format("Nenhum lote de separação disponível para o pedido {}", "order"))
    )  # fmt: skip


def inconsistencies(decided: pl.DataFrame, open_rows: pl.DataFrame) -> pl.DataFrame:
    """`resolve` every open inconsistency of an NF that got a lot; `open` one per NF without a
    lot and its tipo — the lowest open row of (NF, tipo) is updated (`id`), else inserted;
    an open row that already says the same is left alone."""
    resolve = open_rows.join(decided.filter(_has_lot()).select("numero_nf"), on="numero_nf").select(
        pl.lit("resolve").alias("action"), "id", "tipo", "numero_nf"
    )
    wanted = decided.filter(~_has_lot()).select(
        pl.lit("open").alias("action"),
        "tipo",
        "numero_nf",
        pl.col("order").alias("num_pedido"),
        pl.when(pl.col("n_products") == 1).then(pl.col("first_product")).otherwise(pl.lit(MULTIPLOS)).alias("cod_produto"),
        from_thousandths(pl.col("q_total_m")).alias("qtd_faturada"),
        _why().alias("observacao_resolucao"),
    )
    current = open_rows.sort("id").unique(["numero_nf", "tipo"], keep="first")
    opened = wanted.join(current, on=["numero_nf", "tipo"], how="left", suffix="_now")
    same = pl.col("id").is_not_null()
    for c in ("num_pedido", "cod_produto", "qtd_faturada", "observacao_resolucao"):
        same = same & pl.col(c).eq_missing(pl.col(f"{c}_now"))
    opened = opened.filter(~same).select(STOCK_INCONSISTENCY.names())
    return (
        pl.concat([resolve, opened], how="diagonal_relaxed")
        .select(STOCK_INCONSISTENCY.names())
        .cast(dict(STOCK_INCONSISTENCY))
        .sort("numero_nf", "action", "tipo", "id", nulls_last=True)
    )


def justifications(lines: pl.DataFrame, decided: pl.DataFrame, sep: pl.DataFrame, keys: pl.DataFrame) -> pl.DataFrame:
    """§10, as production writes them: only for an NF whose lot was scored below 0.99, one row
    per product both invoiced and in the lot's pending separation of the order (both quantities
    > 0) whose ratio min/max is below 0.99, unless a row of (lot, order, product, NF) exists.
    `qtd_saldo` = separated − invoiced when positive, else 0; motivo and classificação left ''
    for the users; the text gives the product's ratio as a percentage with two decimals."""
    scored = decided.filter((pl.col("how") == "candidate") & (pl.col("score") < JUSTIFY_BELOW))
    both = (
        lines.select("numero_nf", "cod_produto", "q_m")
        .join(scored.select("numero_nf", "order", "separacao_lote_id"), on="numero_nf")
        .join(sep, left_on=["separacao_lote_id", "order", "cod_produto"],
              right_on=["separacao_lote_id", "num_pedido", "cod_produto"])
        .filter((pl.col("q_m") > 0) & (pl.col("q_sep_m") > 0))
    )  # fmt: skip
    lo, hi = pl.min_horizontal("q_m", "q_sep_m"), pl.max_horizontal("q_m", "q_sep_m")
    both = both.with_columns((lo / hi).alias("ratio")).filter(pl.col("ratio") < JUSTIFY_BELOW)
    cents = (pl.col("ratio") * 10000).round(0).cast(pl.Int64)
    percent = pl.format("{}.{}", (cents // 100).cast(pl.String), (cents % 100).cast(pl.String).str.zfill(2))
    sep_q, fat_q = from_thousandths(pl.col("q_sep_m")), from_thousandths(pl.col("q_m"))
    saldo = pl.when(pl.col("q_sep_m") > pl.col("q_m")).then(pl.col("q_sep_m") - pl.col("q_m")).otherwise(0)
    return (
        both.rename({"order": "num_pedido"})
        .join(keys, on=["separacao_lote_id", "num_pedido", "cod_produto", "numero_nf"], how="anti")
        .select(
            "separacao_lote_id",
            "num_pedido",
            "cod_produto",
            "numero_nf",
            sep_q.alias("qtd_separada"),
            fat_q.alias("qtd_faturada"),
            from_thousandths(saldo).alias("qtd_saldo"),
            pl.lit("").alias("motivo_nao_faturamento"),
            pl.lit("").alias("classificacao_saldo"),
            pl.format("Divergência detectada: Score {}%", percent).alias("descricao_detalhada"),
        )
        .sort("numero_nf", "separacao_lote_id", "cod_produto")
        .cast(dict(STOCK_JUSTIFICATION))
    )
