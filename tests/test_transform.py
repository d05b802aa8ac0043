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
