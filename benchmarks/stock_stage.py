"""Time of the pure stock stage (`plan_stock`) for N NFs processed at once.

``python -m benchmarks.stock_stage [N …]`` (default 100 and 10000) generates a
realistic input — 3 products per NF, orders invoiced in one or two NFs, two lots
per order with free items in active shipments, separations that match or miss,
NFs already linked (to their order or another), NFs without an order, existing
movements of SEM_LOTE NFs, open inconsistencies — and prints the median of 5 runs
of `plan_stock` and the plan's row counts. The old job's figure for the whole stage
was 30 s per 100 NFs (DESIGN §9); this measures the pure part (no database).
"""

from __future__ import annotations

import logging
import statistics
import sys
import time
from datetime import date

import polars as pl

from faturamento_batch import schemas
from faturamento_batch.stock import StockInput, plan_stock

PRODUCTS_PER_NF = 3
RUNS = 5


def generate(nfs: int) -> StockInput:
    """Input for `nfs` NFs; every choice is a function of the NF index (deterministic)."""
    nf = pl.DataFrame({"i": pl.int_range(nfs, eager=True)}).with_columns(
        (pl.col("i") + 500_000).cast(pl.String).alias("numero_nf"),
        # NFs 4 and 5 of every 6 share an order (invoiced in two NFs); 1 in 25 has no order.
        pl.when(pl.col("i") % 25 == 24).then(pl.lit(""))
        .when(pl.col("i") % 6 >= 4).then(pl.format("PED{}-2", pl.col("i") // 6))
        .otherwise(pl.format("PED{}", "i")).alias("origem"),
        pl.when(pl.col("i") % 10 == 3).then(pl.lit("SEM_LOTE")).otherwise(pl.lit("Lançado")).alias("status_nf"),
    )  # fmt: skip
    lines = (
        nf.join(pl.DataFrame({"k": pl.int_range(PRODUCTS_PER_NF, eager=True)}), how="cross")
        .sort("i", "k")
        .with_columns(
            pl.format("P{}", (pl.col("i") * 7 + pl.col("k")) % 500).alias("cod_produto"),
            ((pl.col("k") + 1) * 2 + pl.col("i") % 3).cast(schemas.Q3).alias("qtd_produto_faturado"),
            pl.lit(date(2026, 1, 5)).alias("data_fatura"),
        )
        .with_columns(pl.format("Produto {}", "cod_produto").alias("nome_produto"))
    )
    orders = nf.filter(pl.col("origem") != "").select("origem").unique(maintain_order=True).with_row_index("o")
    lots = orders.join(pl.DataFrame({"l": [0, 1]}), how="cross").sort("o", "l").with_columns(
        pl.format("LOTE-{}-{}", "o", "l").alias("separacao_lote_id")
    )
    items = lots.with_columns(
        pl.int_range(pl.len()).alias("id"),
        (pl.col("o") // 4).alias("embarque_id"),
        pl.col("origem").alias("pedido"),
        pl.lit(None, pl.String).alias("nota_fiscal"),
        pl.lit("ativo").alias("status"),
        pl.when(pl.col("o") % 9 == 0).then(pl.lit("NF_PENDENTE_FATURAMENTO")).alias("erro_validacao"),
        pl.when(pl.col("o") % 50 == 7).then(pl.lit("cancelado")).otherwise(pl.lit("ativo")).alias("embarque_status"),
    )
    # 1 in 20 NFs already linked by an item: mostly its own order's lot, sometimes another order.
    linked = nf.filter((pl.col("i") % 20 == 5) & (pl.col("origem") != "")).with_columns(
        (pl.col("i") + 10_000_000).alias("id"),
        pl.lit(1).cast(pl.Int64).alias("embarque_id"),
        pl.format("LINK-{}", "i").alias("separacao_lote_id"),
        pl.when(pl.col("i") % 40 == 5).then(pl.lit("OUTRO")).otherwise(pl.col("origem")).alias("pedido"),
        pl.col("numero_nf").alias("nota_fiscal"),
        pl.lit("ativo").alias("status"),
        pl.lit(None, pl.String).alias("erro_validacao"),
        pl.lit("ativo").alias("embarque_status"),
    )
    items = pl.concat(
        [frame.select(schemas.STOCK_ITEM.names()).cast(dict(schemas.STOCK_ITEM)) for frame in (items, linked)]
    )
    seps = (
        lines.filter(pl.col("origem") != "")
        .join(lots.select("origem", "l", "separacao_lote_id"), on="origem")
        .filter((pl.col("k") + pl.col("l") + pl.col("i")) % 4 != 0)  # some products not separated in a lot
        .sort("i", "k", "l")
        .with_columns(
            pl.int_range(pl.len()).alias("id"),
            pl.col("origem").alias("num_pedido"),
            (pl.col("qtd_produto_faturado").cast(pl.Float64) - pl.col("l")).alias("qtd_saldo"),
            pl.lit(False).alias("sincronizado_nf"),
            pl.lit(None, pl.String).alias("numero_nf"),
        )
        .select(schemas.STOCK_SEPARATION.names())
        .cast(dict(schemas.STOCK_SEPARATION))
    )
    sem_lote = lines.filter(pl.col("status_nf") == "SEM_LOTE")
    movements = sem_lote.select(
        pl.int_range(pl.len()).alias("id"), "numero_nf", "cod_produto",
        pl.lit(None, pl.String).alias("separacao_lote_id"), pl.lit(None, pl.Int64).alias("codigo_embarque"),
    ).cast(dict(schemas.STOCK_MOVEMENT))  # fmt: skip
    opens = sem_lote.unique("numero_nf").select(
        pl.int_range(pl.len()).alias("id"), "numero_nf", pl.lit("NF_SEM_SEPARACAO").alias("tipo"),
        pl.col("origem").alias("num_pedido"), pl.lit("MULTIPLOS").alias("cod_produto"),
        pl.lit(1).cast(schemas.Q3).alias("qtd_faturada"), pl.lit("anterior").alias("observacao_resolucao"),
    ).cast(dict(schemas.STOCK_OPEN_INCONSISTENCY))  # fmt: skip
    return StockInput(
        nf_lines=lines.select(schemas.STOCK_NF_LINE.names()).cast(dict(schemas.STOCK_NF_LINE)),
        items=items,
        separations=seps,
        movements=movements,
        open_inconsistencies=opens,
        justification_keys=pl.DataFrame(schema=schemas.STOCK_JUSTIFICATION_KEY),
    )


def measure(nfs: int) -> tuple[float, dict[str, int], dict[str, int]]:
    inp = generate(nfs)
    plan_stock(inp)  # warm-up: Polars' first call pays for its thread pool and caches
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        plan = plan_stock(inp)
        times.append(time.perf_counter() - start)
    hows = dict(plan.assignments.group_by("how").len().iter_rows())
    return statistics.median(times), plan.counts(), hows


class _RoundsSeen(logging.Handler):
    """Keeps the (pairs, rounds) of the last assignment the stage logged."""

    last: tuple = (0, 0)

    def emit(self, record: logging.LogRecord) -> None:
        self.last = record.args


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or [100, 10_000]
    rounds = _RoundsSeen()
    logger = logging.getLogger("faturamento_batch.stock.lots")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(rounds)
    logger.propagate = False
    for n in sizes:
        median, counts, hows = measure(n)
        print(f"plan_stock, {n:>7,} NFs: median of {RUNS} = {median * 1000:8.1f} ms   (old job: 30 s per 100 NFs)")
        print(f"    NFs by how: {hows}; assignment: {rounds.last[0]:,} eligible pairs in {rounds.last[1]} rounds")
        print(f"    plan rows: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
