"""Frame schemas agree with the SQLAlchemy tables they are written to."""

from __future__ import annotations

import polars as pl
import pytest
from sqlalchemy import Boolean, Date, Float, Integer, Numeric, String

from faturamento_batch import schemas as S
from faturamento_batch.db.schema import (
    cadastro_palletizacao,
    ddl_statements,
    embarque_itens,
    faturamento_parcial_justificativa,
    faturamento_produto,
    inconsistencia_faturamento,
    movimentacao_estoque,
    relatorio_faturamento_importado,
    separacao,
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
    if isinstance(t, Integer):
        return dtype == pl.Int64
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


# The stock stage's frames (DESIGN §9) → the table each column is read from or written to;
# columns that are not the table's (a shipment's status, a plan's `action`) are listed apart.
STOCK_FRAMES = [
    ("STOCK_NF_LINE", faturamento_produto, set()),
    ("STOCK_ITEM", embarque_itens, {"embarque_status", "carvia_cotacao_id"}),  # the CarVia column is optional (§10)
    ("STOCK_SEPARATION", separacao, set()),
    ("STOCK_MOVEMENT", movimentacao_estoque, set()),
    ("STOCK_OPEN_INCONSISTENCY", inconsistencia_faturamento, set()),
    ("STOCK_JUSTIFICATION_KEY", faturamento_parcial_justificativa, set()),
    ("STOCK_MOVEMENT_INSERT", movimentacao_estoque, set()),
    ("STOCK_MOVEMENT_COMPLETE", movimentacao_estoque, set()),
    ("STOCK_ITEM_LINK", embarque_itens, {"numero_nf", "clear_erro"}),  # numero_nf → nota_fiscal
    ("STOCK_ITEM_FLAG", embarque_itens, {"numero_nf"}),  # numero_nf → nota_fiscal
    ("STOCK_SEPARATION_LINK", separacao, set()),
    ("STOCK_SEPARATION_STATUS", separacao, set()),
    ("STOCK_STATUS_CHANGE", faturamento_produto, {"status_from"}),
    ("STOCK_INCONSISTENCY", inconsistencia_faturamento, {"action"}),
    ("STOCK_JUSTIFICATION", faturamento_parcial_justificativa, set()),
]


@pytest.mark.parametrize(("name", "table", "own"), STOCK_FRAMES, ids=[f[0] for f in STOCK_FRAMES])
def test_stock_frames_match_their_tables(name, table, own):
    schema = getattr(S, name)
    assert own <= set(schema), own - set(schema)
    for column, dtype in schema.items():
        if column not in own:
            assert _compatible(dtype, table.c[column]), f"{name}.{column}"
    if name == "STOCK_ITEM_LINK":
        assert _compatible(schema["numero_nf"], embarque_itens.c["nota_fiscal"])


@pytest.mark.parametrize(
    ("name", "table", "added_by_writer"),
    [
        ("STOCK_MOVEMENT_INSERT", movimentacao_estoque, {"criado_em", "atualizado_em"}),
        ("STOCK_INCONSISTENCY", inconsistencia_faturamento, {"detectada_em"}),
        ("STOCK_JUSTIFICATION", faturamento_parcial_justificativa, {"criado_em", "criado_por"}),
    ],
)
def test_stock_inserts_carry_every_required_column(name, table, added_by_writer):
    required = {c.name for c in table.c if not c.nullable and not c.primary_key}
    assert required - set(getattr(S, name)) == added_by_writer


def test_ddl_has_the_stock_stage_indexes():
    joined = "\n".join(ddl_statements())
    for index in ("embarque_itens (pedido)", "embarque_itens (separacao_lote_id)",
                  "separacao (separacao_lote_id, num_pedido, sincronizado_nf)", "movimentacao_estoque (numero_nf, status_nf)",
                  "faturamento_produto (numero_nf) WHERE status_nf = 'SEM_LOTE'", "inconsistencia_faturamento (numero_nf, tipo)",
                  "faturamento_parcial_justificativa (separacao_lote_id, num_pedido)"):  # fmt: skip
        assert f"{index}" in joined, index
    assert "CREATE TABLE IF NOT EXISTS inconsistencia_faturamento" in joined
    assert "CREATE TABLE IF NOT EXISTS faturamento_parcial_justificativa" in joined


def test_widths_and_stock_table_names_agree_with_the_tables():
    """The constants a sync uses instead of importing SQLAlchemy say what `db.schema` says."""
    from faturamento_batch.db.read_stock import STOCK_TABLE_NAMES
    from faturamento_batch.db.schema import STOCK_TABLES

    def widths(table):
        return {c.name: c.type.length for c in table.c if getattr(c.type, "length", None)}

    assert S.WIDTHS == widths(faturamento_produto)
    assert S.PRODUCT_WIDTHS == widths(cadastro_palletizacao)
    assert STOCK_TABLE_NAMES == tuple(t.name for t in STOCK_TABLES)
