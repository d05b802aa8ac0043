"""Frame schemas agree with the SQLAlchemy tables they are written to."""

from __future__ import annotations

import polars as pl
from sqlalchemy import Boolean, Date, Float, Numeric, String

from faturamento_batch.db.schema import (
    cadastro_palletizacao,
    ddl_statements,
    faturamento_produto,
    relatorio_faturamento_importado,
)
from faturamento_batch.schemas import CONSOLIDATION, LINE_VALUES, NEW_PRODUCT


def _compatible(dtype: pl.DataType, column) -> bool:
    t = column.type
    if isinstance(t, Numeric) and not isinstance(t, Float):
        return isinstance(dtype, pl.Decimal) and (dtype.precision, dtype.scale) == (t.precision, t.scale)
    if isinstance(t, Float):
        return dtype == pl.Float64
    if isinstance(t, String):
        return dtype == pl.String
    if isinstance(t, Date):
        return dtype == pl.Date
    if isinstance(t, Boolean):
        return dtype == pl.Boolean
    return False


def test_line_frame_matches_faturamento_produto():
    for name, dtype in LINE_VALUES.items():
        assert _compatible(dtype, faturamento_produto.c[name]), name
    required = {c.name for c in faturamento_produto.c if not c.nullable and not c.primary_key}
    assert required - set(LINE_VALUES) == {"created_at", "updated_at"}  # the writer adds these


def test_consolidation_and_products_match_their_tables():
    for name, dtype in CONSOLIDATION.items():
        assert _compatible(dtype, relatorio_faturamento_importado.c[name]), name
    for name, dtype in NEW_PRODUCT.items():
        assert _compatible(dtype, cadastro_palletizacao.c[name]), name


def test_ddl_is_guarded_and_has_the_key_indexes():
    ddl = ddl_statements()
    assert all("IF NOT EXISTS" in s for s in ddl)
    joined = "\n".join(ddl)
    assert "CREATE UNIQUE INDEX IF NOT EXISTS uq_faturamento_produto_nf_produto ON faturamento_produto (numero_nf, cod_produto)" in joined
    for index in ("(cnpj_cliente, data_fatura)", "(origem)", "(created_at, status_nf)", "movimentacao_estoque (numero_nf)",
                  "embarque_itens (nota_fiscal)", "separacao (numero_nf, sincronizado_nf)"):  # fmt: skip
        assert index in joined, index
