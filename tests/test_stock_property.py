"""The vectorized stock stage agrees with the row-by-row reference (tests/reference_stock.py).

Hypothesis builds small states from small pools, so the cases §9 is about keep meeting:
two NFs of one order, a lot shared by two orders, several lots of an order, equal
scores (ties), '' vs NULL `nota_fiscal`, inactive items and shipments, items already
naming an NF (the right one, another order's, one without a lot), SEM_LOTE lines,
cancelled/draft NFs, blank `origem`, NF numbers that sort differently as text and as
numbers, float `qtd_saldo` with more than 3 decimals, NaN and nulls, existing
movements (also two for one NF and product), open inconsistencies, justification keys.
Two properties: the plan equals the reference part by part; and, over the state the
reference's own writes leave behind, they still agree. STOCK_EXAMPLES=20000 runs a
longer hunt.
"""

from __future__ import annotations

import os
from datetime import date
from decimal import Decimal

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from faturamento_batch import schemas
from faturamento_batch.stock import StockInput, StockPlan, plan_stock

from .reference_stock import apply_plan, reference_stock

INPUT_SCHEMAS = {
    "nf_lines": schemas.STOCK_NF_LINE,
    "items": schemas.STOCK_ITEM,
    "separations": schemas.STOCK_SEPARATION,
    "movements": schemas.STOCK_MOVEMENT,
    "open_inconsistencies": schemas.STOCK_OPEN_INCONSISTENCY,
    "justification_keys": schemas.STOCK_JUSTIFICATION_KEY,
}
PLAN_SCHEMAS = {
    "assignments": schemas.STOCK_ASSIGNMENT,
    "movement_inserts": schemas.STOCK_MOVEMENT_INSERT,
    "movement_completions": schemas.STOCK_MOVEMENT_COMPLETE,
    "item_links": schemas.STOCK_ITEM_LINK,
    "item_flags": schemas.STOCK_ITEM_FLAG,
    "separation_links": schemas.STOCK_SEPARATION_LINK,
    "separation_statuses": schemas.STOCK_SEPARATION_STATUS,
    "status_changes": schemas.STOCK_STATUS_CHANGE,
    "inconsistencies": schemas.STOCK_INCONSISTENCY,
    "justifications": schemas.STOCK_JUSTIFICATION,
}

NF_NUMBERS = ["9", "10", "010", "100", "A7", "11"]
ORDERS = ["O1", "O1", "O2", "O2", "O3"]
ORIGENS = ["O1", "O1", "O2", "O2", "O3", "", None, "  "]
LOTS = ["L1", "L2", "L10", "L1", "L2", "L3", None, "CARVIA-1"]
PRODUCTS = ["P1", "P2", "P3"]
NF_STATUS = ["Lançado", "Lançado", "Lançado", "SEM_LOTE", "SEM_LOTE", "Cancelado", "Provisório"]
QTY_NF = [Decimal(x) for x in ("1.000", "2.000", "2.500", "3.000", "10.000", "0.001", "4.000")]
QTY_SEP = [1.0, 2.0, 2.5, 3.0, 10.0, 4.0, 0.0, 1.25, 0.0004, 2.0005, -1.0, None, float("nan"), 0.3333]
ERRORS = [None, None, "NF_DIVERGENTE", "NF_PENDENTE_FATURAMENTO", "NF cancelada no Odoo", "outro erro"]
TIPOS = ["NF_SEM_SEPARACAO", "DIVERGENCIA_NF_EMBARQUE"]


@st.composite
def states(draw) -> dict[str, list[dict]]:
    # Half the states are "contested": few orders, posted NFs, free active items and few
    # distinct quantities, so NFs compete for lots and scores tie.
    contested = draw(st.booleans())
    origens = ["O1", "O1", "O2"] if contested else ORIGENS
    nf_status = ["Lançado", "SEM_LOTE"] if contested else NF_STATUS
    qty_nf = QTY_NF[:2] if contested else QTY_NF
    qty_sep = [1.0, 2.0, 2.0] if contested else QTY_SEP
    nfs = draw(st.lists(st.sampled_from(NF_NUMBERS), min_size=1, max_size=5, unique=True))
    nf_lines = []
    for n in nfs:
        origem, status = draw(st.sampled_from(origens)), draw(st.sampled_from(nf_status))
        pool = PRODUCTS if contested else [*PRODUCTS, "208000012"]  # the pallet code now and then
        for p in draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True)):
            if draw(st.integers(0, 9)) == 0:  # now and then a line that disagrees with its NF
                origem, status = draw(st.sampled_from(origens)), draw(st.sampled_from(nf_status))
            nf_lines.append({
                "numero_nf": n, "cod_produto": p, "nome_produto": f"Produto {p}",
                "qtd_produto_faturado": draw(st.sampled_from(qty_nf)), "data_fatura": date(2026, 1, draw(st.integers(5, 6))),
                "origem": origem, "status_nf": status,
            })  # fmt: skip
    orders = [ln["origem"] for ln in nf_lines if ln["origem"] and ln["origem"].strip()]
    pedidos = (orders or ["O1"]) if contested else orders + orders + ORDERS + [""]
    nota = st.sampled_from([None, ""] if contested else [None, None, None, "", "", *nfs, "999"])
    items = [
        {
            "id": i, "embarque_id": draw(st.integers(1, 3)), "separacao_lote_id": draw(st.sampled_from(LOTS)),
            "pedido": draw(st.sampled_from(pedidos)), "nota_fiscal": draw(nota),
            "status": draw(st.sampled_from(["ativo"] * 5 + ["cancelado"])),
            "erro_validacao": draw(st.sampled_from(ERRORS)),
            "embarque_status": draw(st.sampled_from(["ativo"] * 6 + ["cancelado", None])),
            "carvia_cotacao_id": draw(st.sampled_from([None] * 6 + [0, 5])),
        }
        for i in range(1, draw(st.integers(2 if contested else 0, 10)) + 1)
    ]  # fmt: skip
    separations = [
        {
            "id": i, "separacao_lote_id": draw(st.sampled_from(LOTS)), "num_pedido": draw(st.sampled_from(pedidos)),
            "cod_produto": draw(st.sampled_from(PRODUCTS if contested else PRODUCTS + PRODUCTS + ["P4", None])), "qtd_saldo": draw(st.sampled_from(qty_sep)),
            "sincronizado_nf": draw(st.sampled_from([False, False, False, True, None])), "numero_nf": None,
            "status": draw(st.sampled_from(["ABERTO", "ABERTO", "FATURADO", "COTADO"])),
        }
        for i in range(1, draw(st.integers(3 if contested else 0, 14)) + 1)
    ]  # fmt: skip
    keys = [(ln["numero_nf"], ln["cod_produto"]) for ln in nf_lines]
    movements = [
        {
            "id": i, "numero_nf": k[0], "cod_produto": k[1], "separacao_lote_id": draw(st.sampled_from(LOTS)),
            "codigo_embarque": draw(st.sampled_from([None, 1, 2, 3])),
        }
        for i, k in enumerate(draw(st.lists(st.sampled_from(keys), max_size=4)), start=1)
    ]  # fmt: skip
    open_rows = [
        {
            "id": i, "numero_nf": draw(st.sampled_from(nfs)), "tipo": draw(st.sampled_from(TIPOS)),
            "num_pedido": draw(st.sampled_from(ORIGENS[:4] + [None])), "cod_produto": draw(st.sampled_from(["P1", "MULTIPLOS"])),
            "qtd_faturada": draw(st.sampled_from(QTY_NF)), "observacao_resolucao": "anterior",
        }
        for i in range(1, draw(st.integers(0, 3)) + 1)
    ]  # fmt: skip
    justification_keys = [
        {"separacao_lote_id": draw(st.sampled_from(LOTS[:4])), "num_pedido": draw(st.sampled_from(["O1", "O2"])),
         "cod_produto": draw(st.sampled_from(PRODUCTS)), "numero_nf": draw(st.sampled_from(nfs))}
        for _ in range(draw(st.integers(0, 3)))
    ]  # fmt: skip
    return {
        "nf_lines": nf_lines, "items": items, "separations": separations, "movements": movements,
        "open_inconsistencies": open_rows, "justification_keys": justification_keys,
    }  # fmt: skip


def to_input(state: dict[str, list[dict]]) -> StockInput:
    return StockInput(**{k: pl.DataFrame(state[k], schema=s) for k, s in INPUT_SCHEMAS.items()})


def canonical(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns, nulls_last=True)


def assert_plan_equals_reference(plan: StockPlan, expected: dict[str, list[dict]]) -> None:
    for part, schema in PLAN_SCHEMAS.items():
        got = getattr(plan, part)
        assert got.schema == schema, part
        want = pl.DataFrame(expected[part], schema=schema)
        try:
            assert_frame_equal(canonical(got), canonical(want))
        except AssertionError as e:
            raise AssertionError(f"`{part}` differs:\nplan {canonical(got).to_dicts()}\nreference {canonical(want).to_dicts()}") from e


SETTINGS = settings(
    max_examples=int(os.environ.get("STOCK_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SETTINGS
@given(states())
def test_plan_equals_the_row_by_row_reference(state):
    assert_plan_equals_reference(plan_stock(to_input(state)), reference_stock(state))


@SETTINGS
@given(states())
def test_they_still_agree_on_the_state_the_writes_leave(state):
    after = apply_plan(state, reference_stock(state))
    assert_plan_equals_reference(plan_stock(to_input(after)), reference_stock(after))


@SETTINGS
@given(states())
def test_a_second_plan_over_the_written_state_only_converges(state):
    """What a second run may still do: give a lot to an NF that had none because its order
    had two free lots, both scored 0, and now has one (§9's single-lot rule, reached as the
    first run's links took the other lot). Every other NF keeps its lot and shipment and
    gets no write at all."""
    first = plan_stock(to_input(state))
    second = plan_stock(to_input(apply_plan(state, {k: v.to_dicts() for k, v in first.parts().items()})))
    keep = ["numero_nf", "separacao_lote_id", "embarque_id", "tipo"]
    joined = first.assignments.select(keep).join(second.assignments, on="numero_nf", suffix="_2", how="full", coalesce=True)
    changed = joined.filter(
        ~pl.col("separacao_lote_id").eq_missing(pl.col("separacao_lote_id_2"))
        | ~pl.col("embarque_id").eq_missing(pl.col("embarque_id_2"))
        | ~pl.col("tipo").eq_missing(pl.col("tipo_2"))
    )
    assert changed.filter(
        pl.col("separacao_lote_id").is_not_null() | (pl.col("how") != "candidate") | (pl.col("score") != 0.0)
    ).is_empty(), changed.to_dicts()
    for part, frame in second.parts().items():
        if part == "separation_statuses":  # keyed by separation: only an NF that changed may write one
            assert frame.is_empty() or changed.height, part
        elif part != "assignments":
            assert frame.filter(~pl.col("numero_nf").is_in(changed["numero_nf"].implode())).is_empty(), part
