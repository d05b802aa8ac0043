"""The stock stage by groups of orders (DESIGN §8, §9) plans what one group plans.

Over the random states of tests/test_stock_property.py (two NFs of one order, a lot shared by
two orders, items naming another order's NF, blank `origem`, SEM_LOTE lines, …), cut down to
what the stage's reader returns for the candidate NFs and their orders, the plan made group by
group — every NF's order in a group of its own where the hash allows — equals the plan of all
of it at once, part by part; and so do the status changes the COPY writes and the UPDATE does.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl
from hypothesis import given

from faturamento_batch.stages.stock_groups import INSERTED, LINES, Groups, spread
from faturamento_batch.stages.stock_stage import plan_grouped
from faturamento_batch.stock import plan_stock

from .test_stock_property import PLAN_SCHEMAS, SETTINGS, canonical, states, to_input


def _as_read(state: dict[str, list[dict]], groups: Groups) -> dict[str, pl.DataFrame]:
    """What `db.read_stock.stream_stock_state` returns for the groups' NFs and orders."""
    inp = to_input(state)
    nfs, orders = groups.nfs.select("numero_nf"), groups.orders.select(pl.col("order").alias("pedido"))
    items = inp.items.filter(pl.col("pedido").is_in(orders["pedido"].implode()) | pl.col("nota_fiscal").is_in(nfs["numero_nf"].implode()))
    lots = inp.items.join(orders, on="pedido").filter(pl.col("separacao_lote_id").is_not_null()).select("separacao_lote_id", "pedido").unique()
    return {
        "items": items,
        "separations": inp.separations.join(lots.rename({"pedido": "num_pedido"}), on=["separacao_lote_id", "num_pedido"], how="semi"),
        "movements": inp.movements.join(nfs, on="numero_nf", how="semi"),
        "open_inconsistencies": inp.open_inconsistencies.join(nfs, on="numero_nf", how="semi"),
        "justification_keys": inp.justification_keys.join(nfs, on="numero_nf", how="semi")
        .join(lots.select("separacao_lote_id").unique(), on="separacao_lote_id", how="semi"),
    }  # fmt: skip


def _plan(lines: pl.DataFrame, state: dict[str, list[dict]], budget: int, spill: Path):
    groups = Groups.of(lambda: [lines], budget)
    read = _as_read(state, groups)
    by_group, parts = spread(groups, lambda: [lines], iter(read.items()), spill)
    plan, at_insert, by_update = plan_grouped(groups, by_group, parts, pl.DataFrame(schema={"numero_nf": pl.String}), ())
    return groups, read, plan, at_insert, by_update


@SETTINGS
@given(states())
def test_the_plan_by_groups_of_orders_is_the_plan_of_all_at_once(state):
    lines = to_input(state).nf_lines.with_columns((pl.col("cod_produto") == "P2").alias(INSERTED)).select(LINES.names())
    with tempfile.TemporaryDirectory() as tmp:
        one, read, whole, whole_insert, whole_update = _plan(lines, state, 0, Path(tmp) / "one")
        many, _, grouped, grouped_insert, grouped_update = _plan(lines, state, 1, Path(tmp) / "many")
    assert one.count == 1 and many.count == max(1, lines.filter(pl.col("status_nf").is_in(["Lançado", "SEM_LOTE"])).height)
    # The reader's cut changes nothing either: the whole plan is plan_stock over that cut.
    direct = plan_stock(to_input({**state, **{k: v.to_dicts() for k, v in read.items()}}), pallet_codes=())
    for part in PLAN_SCHEMAS:
        assert canonical(getattr(whole, part)).equals(canonical(getattr(direct, part))), part
        got, want = canonical(getattr(grouped, part)), canonical(getattr(whole, part))
        assert got.equals(want), f"`{part}` differs by groups:\n{got.to_dicts()}\nall at once:\n{want.to_dicts()}"
    assert canonical(grouped_insert).equals(canonical(whole_insert))
    assert canonical(grouped_update).equals(canonical(whole_update))


def test_components_follow_order_lot_chains_and_give_up_past_the_bound():
    from faturamento_batch.stages.stock_groups import MAX_ROUNDS, components

    def chain(n: int) -> pl.DataFrame:  # O0 - L0 - O1 - L1 - … : one component
        return pl.DataFrame({"a": [f"o{i // 2}" if i % 2 == 0 else f"o{i // 2 + 1}" for i in range(2 * n)],
                             "b": [f"l{i // 2}" for i in range(2 * n)]})  # fmt: skip

    short = components(pl.concat([chain(5), pl.DataFrame({"a": ["x1"], "b": ["x2"]})]))
    labels = dict(short.iter_rows())  # test code: a handful of rows
    assert {labels[f"o{i}"] for i in range(6)} | {labels[f"l{i}"] for i in range(5)} == {"l0"}
    assert labels["x1"] == labels["x2"] == "x1"
    assert components(chain(MAX_ROUNDS)) is None  # 2·64 hops: not followed, the run is one group
