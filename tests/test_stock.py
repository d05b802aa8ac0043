"""The stock stage, rule by rule (DESIGN §9, docs/rules.md "Stock stage"), on small frames."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import polars as pl
import pytest

from faturamento_batch import schemas
from faturamento_batch.errors import DataError
from faturamento_batch.stock import ACTOR, StockInput, StockPlan, plan_stock

from .reference_stock import apply_plan

D = Decimal
DAY = date(2026, 1, 5)


def line(n, p, q, origem="O1", status="Lançado"):
    return {"numero_nf": n, "cod_produto": p, "nome_produto": f"Produto {p}", "qtd_produto_faturado": D(q),
            "data_fatura": DAY, "origem": origem, "status_nf": status}  # fmt: skip


def item(i, lot, pedido="O1", nota=None, *, embarque=1, status="ativo", embarque_status="ativo", erro=None):
    return {"id": i, "embarque_id": embarque, "separacao_lote_id": lot, "pedido": pedido, "nota_fiscal": nota,
            "status": status, "erro_validacao": erro, "embarque_status": embarque_status}  # fmt: skip


def sep(i, lot, p, q, pedido="O1", synced=False, status="ABERTO"):
    return {"id": i, "separacao_lote_id": lot, "num_pedido": pedido, "cod_produto": p, "qtd_saldo": q,
            "sincronizado_nf": synced, "numero_nf": None, "status": status}  # fmt: skip


def state(lines, items=(), seps=(), movements=(), opens=(), keys=()):
    return {"nf_lines": list(lines), "items": list(items), "separations": list(seps), "movements": list(movements),
            "open_inconsistencies": list(opens), "justification_keys": list(keys)}  # fmt: skip


SCHEMAS = {
    "nf_lines": schemas.STOCK_NF_LINE, "items": schemas.STOCK_ITEM, "separations": schemas.STOCK_SEPARATION,
    "movements": schemas.STOCK_MOVEMENT, "open_inconsistencies": schemas.STOCK_OPEN_INCONSISTENCY,
    "justification_keys": schemas.STOCK_JUSTIFICATION_KEY,
}  # fmt: skip


def plan(st: dict) -> StockPlan:
    return plan_stock(StockInput(**{k: pl.DataFrame(st[k], schema=s) for k, s in SCHEMAS.items()}))


def lots(p: StockPlan) -> dict[str, str | None]:
    return dict(p.assignments.select("numero_nf", "separacao_lote_id").iter_rows())


def row(frame: pl.DataFrame, **where) -> dict:
    rows = frame.filter(**where).to_dicts()
    assert len(rows) == 1, rows
    return rows[0]


# ---------------------------------------------------------------- rule 1: linked items


def test_linked_item_of_the_same_order_gives_its_lot_and_takes_it_from_the_candidates():
    p = plan(state(
        [line("100", "P1", "5"), line("101", "P1", "5")],
        [item(1, "L2", nota="100", embarque=7), item(2, "L1", nota="100", embarque=8), item(3, "L1", nota="", embarque=9)],
        [sep(1, "L1", "P1", 5.0)],
    ))  # fmt: skip
    a = row(p.assignments, numero_nf="100")
    assert (a["how"], a["separacao_lote_id"], a["embarque_id"], a["tipo"]) == ("linked", "L1", 8, None)
    # L1 still has a free item, but a lot taken by rule 1 is no candidate for 101.
    b = row(p.assignments, numero_nf="101")
    assert (b["how"], b["separacao_lote_id"], b["tipo"]) == ("none", None, "NF_SEM_SEPARACAO")
    assert row(p.item_links, id=3)["numero_nf"] == "100"


def test_linked_item_of_another_order_is_a_divergence_naming_both_orders_and_the_shipment():
    p = plan(state([line("100", "P1", "5"), line("100", "P2", "1")],
                   [item(1, "L9", pedido="O7", nota="100", embarque=42), item(2, "L1")], [sep(1, "L1", "P1", 5.0)]))
    a = row(p.assignments, numero_nf="100")
    assert (a["how"], a["separacao_lote_id"], a["tipo"]) == ("linked", None, "DIVERGENCIA_NF_EMBARQUE")
    assert (a["divergent_pedido"], a["divergent_embarque_id"]) == ("O7", 42)
    inc = row(p.inconsistencies, numero_nf="100")
    assert inc == {
        "action": "open", "id": None, "tipo": "DIVERGENCIA_NF_EMBARQUE", "numero_nf": "100", "num_pedido": "O1",
        "cod_produto": "MULTIPLOS", "qtd_faturada": D("6.000"),
        "observacao_resolucao": "NF 100 do pedido O1 vinculada ao embarque 42 do pedido O7",
    }  # fmt: skip
    assert p.item_links.is_empty() and p.justifications.is_empty()
    assert row(p.movement_inserts, cod_produto="P1")["observacao"] == "Baixa automática NF 100 - Sem Separação"


def test_linked_item_of_the_same_order_without_a_lot_is_nf_sem_separacao():
    p = plan(state([line("100", "P1", "5")], [item(1, None, nota="100", embarque=3), item(2, "L1")]))
    a = row(p.assignments, numero_nf="100")
    assert (a["how"], a["separacao_lote_id"], a["tipo"]) == ("linked", None, "NF_SEM_SEPARACAO")
    inc = row(p.inconsistencies, numero_nf="100")
    assert inc["cod_produto"] == "P1" and inc["qtd_faturada"] == D("5.000")
    assert inc["observacao_resolucao"] == "NF 100 vinculada ao embarque 3 do pedido O1 sem lote de separação"


# ---------------------------------------------------------------- rules 2-3: candidates, score, assignment


def test_a_single_candidate_lot_scored_zero_is_still_taken():
    p = plan(state([line("100", "P1", "5")], [item(1, "L1")], [sep(1, "L1", "P9", 5.0)]))
    a = row(p.assignments, numero_nf="100")
    assert (a["how"], a["separacao_lote_id"], a["score"]) == ("candidate", "L1", 0.0)


def test_two_lots_scored_zero_give_no_lot():
    p = plan(state([line("100", "P1", "5")], [item(1, "L1"), item(2, "L2")], [sep(1, "L1", "P9", 5.0)]))
    assert lots(p) == {"100": None}
    assert row(p.inconsistencies, numero_nf="100")["observacao_resolucao"] == (
        "Nenhum lote de separação disponível para o pedido O1"
    )


def test_the_lot_with_the_best_score_wins():
    # Scores: L1 = (5/10 + 0)/2 = 0.25, L2 = (1 + 1/2)/2 = 0.75, L3 = (1 + 1)/2 = 1 but inactive.
    p = plan(state(
        [line("100", "P1", "5"), line("100", "P2", "2")],
        [item(1, "L1"), item(2, "L2", embarque=5), item(3, "L2", embarque=4), item(4, "L3", status="cancelado")],
        [sep(1, "L1", "P1", 10.0), sep(2, "L2", "P1", 3.0), sep(3, "L2", "P1", 2.0), sep(4, "L2", "P2", 1.0),
         sep(5, "L3", "P1", 5.0), sep(6, "L3", "P2", 2.0)],
    ))  # fmt: skip
    a = row(p.assignments, numero_nf="100")
    assert (a["separacao_lote_id"], a["score"], a["embarque_id"]) == ("L2", 0.75, 4)


def test_a_tie_goes_to_the_lowest_nf_number_then_the_lowest_lot_id_in_text_order():
    # Both NFs score 1.0 on both lots: "9" is a lower NF number than "10" (numeric), and
    # "L10" sorts before "L2" as text.
    p = plan(state(
        [line("10", "P1", "2"), line("9", "P1", "2")],
        [item(1, "L2"), item(2, "L10")],
        [sep(1, "L2", "P1", 2.0), sep(2, "L10", "P1", 2.0)],
    ))  # fmt: skip
    assert lots(p) == {"9": "L10", "10": "L2"}


def test_nf_numbers_compare_as_numbers_leading_zeros_then_text_and_non_digits_last():
    nfs = ["A1", "10", "010", "9"]
    p = plan(state(
        [line(n, "P1", "1") for n in nfs],
        [item(i, lot) for i, lot in enumerate(["L4", "L3", "L2", "L1"], 1)],
        [sep(i, lot, "P1", 1.0) for i, lot in enumerate(["L4", "L3", "L2", "L1"], 1)],
    ))  # fmt: skip
    assert lots(p) == {"9": "L1", "010": "L2", "10": "L3", "A1": "L4"}
    assert p.assignments["numero_nf"].to_list() == ["9", "010", "10", "A1"]


def test_an_order_invoiced_in_two_nfs_takes_two_lots_and_the_loser_takes_its_next_best():
    # 100 matches L1 exactly (1.0) and L2 at 0.5; 101 prefers L1 too (0.8) but loses it.
    p = plan(state(
        [line("100", "P1", "10"), line("101", "P1", "8")],
        [item(1, "L1", embarque=1), item(2, "L2", embarque=2)],
        [sep(1, "L1", "P1", 10.0), sep(2, "L2", "P1", 5.0)],
    ))  # fmt: skip
    assert lots(p) == {"100": "L1", "101": "L2"}
    assert row(p.assignments, numero_nf="101")["score"] == 5 / 8
    assert p.item_links.sort("id").rows() == [(1, "100", "L1", False), (2, "101", "L2", False)]


def test_a_chain_of_competing_nfs_needs_several_rounds_and_ends_as_the_greedy():
    # Pairs by score: (1,L1)=1.0 > (2,L1)=0.9 > (2,L2)=0.8 > (1,L2)=0.72 > (3,L2)=0.69 > (3,L3)=0.6 > …
    # Greedy: 1-L1; 2 lost L1 → 2-L2; 3 lost L2 → 3-L3 (three rounds: each waits for the one before).
    p = plan(state(
        [line("1", "P1", "10"), line("2", "P1", "9"), line("3", "P1", "5")],
        [item(1, "L1"), item(2, "L2"), item(3, "L3")],
        [sep(1, "L1", "P1", 10.0), sep(2, "L2", "P1", 7.2), sep(4, "L3", "P1", 3.0)],
    ))  # fmt: skip
    assert lots(p) == {"1": "L1", "2": "L2", "3": "L3"}
    assert dict(p.assignments.select("numero_nf", "score").iter_rows()) == {"1": 1.0, "2": 0.8, "3": 0.6}


def test_inactive_items_and_inactive_shipments_are_not_candidates():
    p = plan(state(
        [line("100", "P1", "5"), line("101", "P1", "5", origem="O2")],
        [item(1, "L1", status="cancelado"), item(2, "L2", pedido="O2", embarque_status="cancelado")],
        [sep(1, "L1", "P1", 5.0), sep(2, "L2", "P1", 5.0, pedido="O2")],
    ))  # fmt: skip
    assert lots(p) == {"100": None, "101": None}


def test_nota_fiscal_empty_text_and_null_are_both_free_and_both_get_linked():
    p = plan(state([line("100", "P1", "5")], [item(1, "L1", nota=""), item(2, "L1", nota=None),
                                              item(3, "L1", nota="555", embarque=0)], [sep(1, "L1", "P1", 5.0)]))
    assert lots(p) == {"100": "L1"}
    assert p.item_links["id"].to_list() == [1, 2]  # 3 already names another NF
    assert row(p.assignments, numero_nf="100")["embarque_id"] == 1


def test_a_linked_item_s_erro_validacao_is_cleared_whatever_it_held():
    erros = ["NF_PENDENTE_FATURAMENTO", "NF_DIVERGENTE: NF 1 pertence ao CNPJ 2, não a 3", "Peso divergente", "", None]
    p = plan(state([line("100", "P1", "5")], [item(i, "L1", erro=e) for i, e in enumerate(erros, 1)]))
    # Every one is linked (the writer sets erro_validacao NULL); clear_erro says it held something.
    assert dict(p.item_links.select("id", "clear_erro").iter_rows()) == {1: True, 2: True, 3: True, 4: True, 5: False}


def test_an_nf_with_empty_origem_has_no_lot_unless_an_item_names_it():
    p = plan(state(
        [line("100", "P1", "5", origem=""), line("101", "P1", "3", origem=None), line("102", "P1", "1", origem=" ")],
        [item(1, "L1", pedido="O1"), item(2, "L1", pedido="O1", nota="102", embarque=9)],
    ))  # fmt: skip
    assert lots(p) == {"100": None, "101": None, "102": None}
    texts = dict(p.inconsistencies.select("numero_nf", "observacao_resolucao").iter_rows())
    assert texts == {
        "100": "NF 100 sem pedido de origem",
        "101": "NF 101 sem pedido de origem",
        "102": "NF 102 sem pedido vinculada ao embarque 9 do pedido O1",
    }
    assert p.inconsistencies.filter(numero_nf="102")["tipo"].item() == "DIVERGENCIA_NF_EMBARQUE"
    assert p.movement_inserts["num_pedido"].to_list() == [None, None, None]
    assert p.status_changes.rows() == [(n, "Lançado", "SEM_LOTE") for n in ("100", "101", "102")]


def test_cancelled_and_draft_nfs_are_skipped():
    p = plan(state([line("100", "P1", "5", status="Cancelado"), line("101", "P1", "5", status="Provisório")],
                   [item(1, "L1")]))
    assert all(frame.is_empty() for frame in p.parts().values())


# ---------------------------------------------------------------- the writes


def test_with_a_lot_every_write_of_section_9():
    p = plan(state(
        [line("100", "P1", "5"), line("100", "P2", "2")],
        [item(1, "L1", embarque=3), item(2, "L1", embarque=2, status="cancelado"), item(3, "L1", pedido="O2")],
        [sep(1, "L1", "P1", 5.0), sep(2, "L1", "P2", 2.0), sep(3, "L1", "P2", 0.0, synced=True),
         sep(4, "L1", "P1", 1.0, pedido="O2"), sep(5, "L1", "P1", 0.0, synced=None)],
    ))  # fmt: skip
    a = row(p.assignments, numero_nf="100")
    assert (a["separacao_lote_id"], a["embarque_id"]) == ("L1", 3)  # the inactive item's shipment does not count
    assert p.movement_inserts.to_dicts() == [
        {"cod_produto": c, "nome_produto": f"Produto {c}", "data_movimentacao": DAY, "tipo_movimentacao": "FATURAMENTO",
         "local_movimentacao": "VENDA", "qtd_movimentacao": q, "separacao_lote_id": "L1", "numero_nf": "100",
         "num_pedido": "O1", "tipo_origem": "ODOO", "status_nf": "FATURADO", "codigo_embarque": 3,
         "observacao": "Baixa automática NF 100 - lote separação L1"}
        for c, q in (("P1", D("-5.000")), ("P2", D("-2.000")))
    ]  # fmt: skip
    # Items of (L1, O1) whatever their status; not the other order's.
    assert p.item_links["id"].to_list() == [1, 2]
    assert p.separation_links.rows() == [(1, "100", "L1"), (2, "100", "L1")]  # not 5: null is not false
    # §10: every other separation of (L1, O1) not yet FATURADO becomes FATURADO, synced or not.
    assert p.separation_statuses.drop("numero_nf").rows() == [(3, "L1", "O1"), (5, "L1", "O1")]
    assert p.status_changes.is_empty() and p.inconsistencies.is_empty() and p.justifications.is_empty()
    assert ACTOR == "faturamento_batch"


def test_an_existing_movement_is_completed_never_duplicated_and_an_already_complete_one_is_left():
    p = plan(state(
        [line("100", "P1", "5"), line("100", "P2", "1"), line("100", "P3", "1")],
        [item(1, "L1", embarque=4), item(2, "L1", nota="100", embarque=4)],
        movements=[{"id": 70, "numero_nf": "100", "cod_produto": "P1", "separacao_lote_id": None, "codigo_embarque": None},
                   {"id": 71, "numero_nf": "100", "cod_produto": "P2", "separacao_lote_id": "L1", "codigo_embarque": 4},
                   {"id": 72, "numero_nf": "100", "cod_produto": "P9", "separacao_lote_id": None, "codigo_embarque": None}],
    ))  # fmt: skip
    assert p.movement_completions.to_dicts() == [{
        "id": 70, "numero_nf": "100", "cod_produto": "P1", "separacao_lote_id": "L1", "codigo_embarque": 4,
        "observacao": "Baixa automática NF 100 - lote separação L1",
    }]  # fmt: skip
    assert p.movement_inserts["cod_produto"].to_list() == ["P3"]


def test_sem_lote_nf_whose_lot_appears_later_is_completed_back_to_lancado_and_resolved():
    before = state(
        [line("100", "P1", "5", status="SEM_LOTE")],
        [item(1, "L1", embarque=6, erro="NF_PENDENTE_FATURAMENTO")],
        [sep(1, "L1", "P1", 5.0)],
        movements=[{"id": 70, "numero_nf": "100", "cod_produto": "P1", "separacao_lote_id": None, "codigo_embarque": None}],
        opens=[{"id": 5, "numero_nf": "100", "tipo": "NF_SEM_SEPARACAO", "num_pedido": "O1", "cod_produto": "P1",
                "qtd_faturada": D("5.000"), "observacao_resolucao": "Nenhum lote de separação disponível para o pedido O1"}],
    )  # fmt: skip
    p = plan(before)
    assert p.movement_inserts.is_empty()
    assert p.movement_completions.select("id", "separacao_lote_id", "codigo_embarque").rows() == [(70, "L1", 6)]
    assert p.status_changes.rows() == [("100", "SEM_LOTE", "Lançado")]
    assert p.inconsistencies.select("action", "id", "tipo").rows() == [("resolve", 5, "NF_SEM_SEPARACAO")]
    assert p.item_links.rows() == [(1, "100", "L1", True)]


def test_without_a_lot_the_open_inconsistency_is_updated_never_duplicated_and_left_when_it_says_the_same():
    lines = [line("100", "P1", "5"), line("101", "P1", "5")]
    same = {"num_pedido": "O1", "cod_produto": "P1", "qtd_faturada": D("5.000"),
            "observacao_resolucao": "Nenhum lote de separação disponível para o pedido O1"}  # fmt: skip
    opens = [
        {"id": 8, "numero_nf": "100", "tipo": "NF_SEM_SEPARACAO", **same, "qtd_faturada": D("4.000")},
        {"id": 9, "numero_nf": "100", "tipo": "NF_SEM_SEPARACAO", **same},
        {"id": 3, "numero_nf": "101", "tipo": "NF_SEM_SEPARACAO", **same},
        {"id": 4, "numero_nf": "101", "tipo": "DIVERGENCIA_NF_EMBARQUE", **same},
    ]
    p = plan(state(lines, opens=opens))
    # 100: its lowest open row (8) says 4.000 → updated; 101's says the same → nothing; its
    # divergence stays open (only a lot resolves).
    assert p.inconsistencies.select("action", "id", "numero_nf", "qtd_faturada").rows() == [
        ("open", 8, "100", D("5.000"))
    ]


def test_justifications_only_for_products_in_both_with_a_ratio_below_0_99_as_production_writes_them():
    # NF: P1 8, P2 3, P3 1, P5 1. Pending separation of L1: P1 10, P2 2.5, P3 1.0004 (= 1 at 3 decimals),
    # P4 4 (only separated), P5 2. Score = (0.8 + 2.5/3 + 1 + 0.5)/4 × (1 − 0.2 × 1/5) < 0.99.
    p = plan(state(
        [line("100", "P1", "8"), line("100", "P2", "3"), line("100", "P3", "1"), line("100", "P5", "1")],
        [item(1, "L1")],
        [sep(1, "L1", "P1", 10.0), sep(2, "L1", "P2", 2.5), sep(3, "L1", "P3", 1.0004), sep(4, "L1", "P4", 4.0),
         sep(5, "L1", "P5", 2.0)],
        keys=[{"separacao_lote_id": "L1", "num_pedido": "O1", "cod_produto": "P5", "numero_nf": "100"},
              {"separacao_lote_id": "L1", "num_pedido": "O2", "cod_produto": "P2", "numero_nf": "100"}],
    ))  # fmt: skip
    got = p.justifications.select("cod_produto", "qtd_separada", "qtd_faturada", "qtd_saldo", "descricao_detalhada")
    assert got.rows() == [
        ("P1", D("10.000"), D("8.000"), D("2.000"), "Divergência detectada: Score 80.00%"),
        ("P2", D("2.500"), D("3.000"), D("0.000"), "Divergência detectada: Score 83.33%"),
    ]  # P3 equal; P4 only separated; P5 already justified for (L1, O1) — the O2 key does not count
    first = p.justifications.row(0, named=True)
    assert (first["separacao_lote_id"], first["num_pedido"], first["numero_nf"]) == ("L1", "O1", "100")
    assert (first["motivo_nao_faturamento"], first["classificacao_saldo"]) == ("", "")


def test_no_justification_when_the_lot_scores_0_99_or_more_or_was_linked():
    # 100: P1 100 vs 99 separated, P2 equal → (0.99 + 1)/2 = 0.995 ≥ 0.99: no row although P1 differs.
    p = plan(state([line("100", "P1", "100"), line("100", "P2", "5")], [item(1, "L1")],
                   [sep(1, "L1", "P1", 99.0), sep(2, "L1", "P2", 5.0)]))  # fmt: skip
    assert row(p.assignments, numero_nf="100")["score"] == pytest.approx(0.995)
    assert p.justifications.is_empty()
    # 200: its lot comes from an item that already names it (rule 1): not scored, no row.
    p = plan(state([line("200", "P1", "1")], [item(1, "L1", nota="200")], [sep(1, "L1", "P1", 5.0)]))
    assert p.justifications.is_empty()


def test_the_extras_penalty_changes_the_winner():
    # NF 100: P1 10, P2 10. LA: P1 10, P2 8 + P3, P4 the NF lacks → 0.9 × (1 − 0.2 × 2/4) = 0.81.
    # LB: P1 10, P2 7 → 0.85, no extras. Without the penalty LA (0.9) would win.
    p = plan(state(
        [line("100", "P1", "10"), line("100", "P2", "10")],
        [item(1, "LA"), item(2, "LB")],
        [sep(1, "LA", "P1", 10.0), sep(2, "LA", "P2", 8.0), sep(3, "LA", "P3", 5.0), sep(4, "LA", "P4", 5.0),
         sep(5, "LB", "P1", 10.0), sep(6, "LB", "P2", 7.0)],
    ))  # fmt: skip
    a = row(p.assignments, numero_nf="100")
    assert (a["separacao_lote_id"], a["score"]) == ("LB", pytest.approx(0.85))


def test_only_pending_separations_count_in_the_score_and_for_candidacy():
    # LA would score 1.0 with its synced P2 row; only its pending P1 counts → 0.5. LB: (1 + 0.9)/2 = 0.95.
    # LC has only a null-sincronizado separation: not pending, so not a candidate (the order has 3 lots).
    p = plan(state(
        [line("100", "P1", "10"), line("100", "P2", "10")],
        [item(1, "LA"), item(2, "LB"), item(3, "LC")],
        [sep(1, "LA", "P1", 10.0), sep(2, "LA", "P2", 10.0, synced=True),
         sep(3, "LB", "P1", 10.0), sep(4, "LB", "P2", 9.0), sep(5, "LC", "P1", 10.0, synced=None),
         sep(6, "LC", "P2", 10.0, synced=None)],
    ))  # fmt: skip
    assert row(p.assignments, numero_nf="100")["separacao_lote_id"] == "LB"
    p = plan(state([line("100", "P1", "10")], [item(1, "LA"), item(2, "LC")],
                   [sep(1, "LA", "P9", 1.0), sep(2, "LC", "P1", 10.0, synced=None)]))  # fmt: skip
    assert lots(p) == {"100": None}  # LA scores 0, LC is no candidate: no fallback
    # The order's only lot is taken without a pending separation (and unscored in effect).
    p = plan(state([line("100", "P1", "10")], [item(1, "LC")], [sep(1, "LC", "P1", 10.0, synced=True)]))
    assert lots(p) == {"100": "LC"}


def test_a_divergent_item_gets_the_text_when_its_error_is_empty():
    p = plan(state(
        [line("100", "P1", "5")],
        [item(1, "L9", pedido="O7", nota="100"), item(2, "L8", pedido="O8", nota="100", erro="outro"),
         item(3, "L7", pedido="O6", nota="100", erro=""), item(4, "L6", pedido="O5", nota="100", status="cancelado")],
    ))  # fmt: skip
    assert p.item_flags.rows() == [
        (1, "100", "NF_DIVERGENTE: Pedido NF (O1) != Pedido Item (O7)"),
        (3, "100", "NF_DIVERGENTE: Pedido NF (O1) != Pedido Item (O6)"),
    ]  # 2 keeps its own error; 4 is inactive
    assert p.item_links.is_empty()


def test_carvia_items_are_never_linked_flagged_or_candidates():
    carvia = [dict(item(1, "L1"), carvia_cotacao_id=7), item(2, "CARVIA-12"),
              dict(item(3, "L9", pedido="O7", nota="100"), carvia_cotacao_id=3)]  # fmt: skip
    p = plan(state([line("100", "P1", "5")], carvia, [sep(1, "L1", "P1", 5.0)]))
    assert lots(p) == {"100": None}
    assert p.item_links.is_empty() and p.item_flags.is_empty()
    p = plan(state([line("100", "P1", "5")], [dict(item(1, "L1"), carvia_cotacao_id=0)], [sep(1, "L1", "P1", 5.0)]))
    assert lots(p) == {"100": "L1"}  # 0 is no CarVia quote


def test_pallet_lines_get_no_movement_but_count_in_the_score():
    lines = [line("100", "P1", "5"), line("100", "208000012", "2")]
    p = plan(state(lines, [item(1, "L1")], [sep(1, "L1", "P1", 5.0)]))
    assert p.movement_inserts["cod_produto"].to_list() == ["P1"]
    assert row(p.assignments, numero_nf="100")["score"] == 0.5  # the pallet line is one of the NF's products
    p = plan_stock(
        StockInput(**{k: pl.DataFrame(state(lines)[k], schema=s) for k, s in SCHEMAS.items()}), pallet_codes=("P1",)
    )
    assert p.movement_inserts["cod_produto"].to_list() == ["208000012"]


def test_two_nfs_linked_to_one_lot_both_keep_it_and_the_lowest_links_its_free_rows():
    p = plan(state(
        [line("20", "P1", "1"), line("3", "P1", "1")],
        [item(1, "L1", nota="20", embarque=5), item(2, "L1", nota="3", embarque=6), item(3, "L1", embarque=1)],
        [sep(1, "L1", "P1", 1.0)],
    ))  # fmt: skip
    assert lots(p) == {"3": "L1", "20": "L1"}
    assert dict(p.assignments.select("numero_nf", "embarque_id").iter_rows()) == {"3": 1, "20": 5}
    assert p.item_links.rows() == [(3, "3", "L1", False)] and p.separation_links.rows() == [(1, "3", "L1")]


# ---------------------------------------------------------------- a second run


def _as_dicts(p: StockPlan) -> dict[str, list[dict]]:
    return {k: v.to_dicts() for k, v in p.parts().items()}


@pytest.mark.parametrize(
    "before",
    [
        pytest.param(state(
            [line("100", "P1", "10"), line("100", "P2", "2", status="SEM_LOTE"), line("101", "P1", "8"),
             line("102", "P1", "1", origem=""), line("103", "P1", "1", origem="O2")],
            [item(1, "L1", erro="NF_DIVERGENTE"), item(2, "L2", nota=""), item(3, "L9", pedido="O7", nota="103", embarque=5),
             item(4, "L1", status="cancelado")],
            [sep(1, "L1", "P1", 10.0), sep(2, "L2", "P1", 5.0), sep(3, "L2", "P3", 1.0)],
            movements=[{"id": 1, "numero_nf": "101", "cod_produto": "P1", "separacao_lote_id": None, "codigo_embarque": None}],
            opens=[{"id": 1, "numero_nf": "100", "tipo": "NF_SEM_SEPARACAO", "num_pedido": "O1", "cod_produto": "P1",
                    "qtd_faturada": D("1.000"), "observacao_resolucao": "x"}],
        ), id="mixed"),  # fmt: skip
        pytest.param(state([line("9", "P1", "2"), line("10", "P1", "2")], [item(1, "L2"), item(2, "L10")],
                           [sep(1, "L2", "P1", 2.0), sep(2, "L10", "P1", 2.0)]), id="tie"),
    ],
)
def test_a_second_plan_over_the_state_the_writes_leave_changes_nothing(before):
    first = plan(before)
    assert first.movement_inserts.height and first.item_links.height  # the first plan did write
    second = plan(apply_plan(before, _as_dicts(first)))
    assert {k: v for k, v in second.counts().items() if k != "assignments"} == dict.fromkeys(
        (k for k in second.counts() if k != "assignments"), 0
    )
    # Every NF keeps its lot (now through rule 1) and its shipment.
    keep = ["numero_nf", "separacao_lote_id", "embarque_id", "tipo"]
    assert second.assignments.select(keep).rows() == first.assignments.select(keep).rows()


def test_empty_input_gives_an_empty_plan_with_the_declared_schemas():
    p = plan(state([]))
    assert all(frame.is_empty() for frame in p.parts().values())
    assert p.assignments.schema == schemas.STOCK_ASSIGNMENT
    assert p.justifications.schema == schemas.STOCK_JUSTIFICATION


def test_a_faturamento_produto_key_seen_twice_is_refused_and_repeated_rows_count_once():
    with pytest.raises(DataError, match=r"NF `100` product `P1` twice"):
        plan(state([line("100", "P1", "5"), line("100", "P1", "2")]))
    p = plan(state([line("100", "P1", "5")], [item(1, "L1"), item(1, "L1")], [sep(1, "L1", "P1", 5.0)] * 2))
    assert p.item_links.height == 1 and p.separation_links.height == 1
    assert p.justifications.is_empty()  # the separation counted once: 5 separated, 5 invoiced


def test_nf_counts_for_the_manifest():
    p = plan(state(
        [line("1", "P1", "1"), line("2", "P1", "1"), line("3", "P1", "1"), line("4", "P1", "1", origem="")],
        [item(1, "L1", nota="1"), item(2, "L2", pedido="O9", nota="2"), item(3, "L3")],
    ))  # fmt: skip
    assert p.nf_counts() == {"nfs_processed": 4, "nfs_with_lot": 2, "nfs_without_lot": 2, "nfs_linked": 2,
                             "nfs_divergent": 1}  # fmt: skip
