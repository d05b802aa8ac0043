"""Pure transform helpers, checked without any server."""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from faturamento_batch.schemas import P4, Q3, V2
from faturamento_batch.transform import UF_BY_STATE_NAME, clean, to_decimal, uf_from_state_name


def test_every_state_name_maps_with_or_without_accents_and_suffix():
    names = {
        "São Paulo": "SP", "SAO PAULO": "SP", "São Paulo (BR)": "SP", "  paraná ": "PR", "Goiás (BR)": "GO",
        "Espírito Santo": "ES", "Distrito Federal": "DF", "sp": "SP", "Atlantis": None, None: None, "": None,
    }  # fmt: skip
    got = pl.select(uf_from_state_name(pl.Series(list(names), dtype=pl.String))).to_series().to_list()
    assert got == list(names.values())
    assert len(set(UF_BY_STATE_NAME.values())) == 27


def test_decimals_round_half_away_from_zero_from_the_text_odoo_sent():
    s = pl.Series([2.675, -2.675, 0.125, 1.005, 1e13, float("nan"), float("inf")])
    assert pl.select(to_decimal(s, V2)).to_series().to_list() == [
        Decimal("2.68"), Decimal("-2.68"), Decimal("0.13"), Decimal("1.01"), None, None, None
    ]  # fmt: skip
    assert pl.select(to_decimal(pl.Series([0.0005, 1.2344999]), Q3)).to_series().to_list() == [Decimal("0.001"), Decimal("1.234")]
    assert pl.select(to_decimal(pl.Series([10.12345]), P4)).to_series().to_list() == [Decimal("10.1235")]


def test_clean_trims_drops_nul_and_empties():
    s = pl.Series(["  a\x00b  ", "   ", None, "x"])
    assert pl.select(clean(s)).to_series().to_list() == ["ab", None, None, "x"]


def _frames(quantity: float, gross_weight: float, lines: list[tuple[float, float]] | None = None):
    from faturamento_batch.odoo.fields import MODELS
    from faturamento_batch.odoo.frames import records_to_frame

    recs = {m: [] for m in MODELS}
    recs["account.move"] = [{"id": 1, "state": "posted", "l10n_br_numero_nota_fiscal": "1", "l10n_br_tipo_pedido": "venda",
                             "date": "2026-01-05", "invoice_origin": "VCD1"}]  # fmt: skip
    recs["product.product"] = [{"id": 1, "name": "P", "product_tmpl_id": [1, "P"]}]
    recs["product.template"] = [{"id": 1, "name": "P", "default_code": "P1", "gross_weight": gross_weight}]
    pairs = lines or [(quantity, 1.0)]
    recs["account.move.line"] = [
        {"id": i + 1, "move_id": [1, "M"], "product_id": [1, "P"], "quantity": q, "price_unit": p, "price_total": q * p}
        for i, (q, p) in enumerate(pairs)
    ]
    return {m: records_to_frame(m, r) for m, r in recs.items()}


def test_weights_and_merged_prices_round_half_away_from_zero_not_truncate():
    from faturamento_batch.transform import transform

    # 66.5 × 5.345 = 355.4425 → 355.443 (a truncating product gives 355.442)
    row = transform(_frames(66.5, 5.345)).lines.row(0, named=True)
    assert row["peso_total"] == Decimal("355.443")
    # merged price: (1 × 12.4996 + 2 × 9 + 5 × 10) / 8 = 10.06245 → 10.0625
    merged = transform(_frames(0, 1.0, [(1, 12.4996), (2, 9.0), (5, 10.0)])).lines.row(0, named=True)
    assert merged["preco_produto_faturado"] == Decimal("10.0625")
    assert merged["qtd_produto_faturado"] == Decimal("8.000") and merged["odoo_line_count"] == 3
