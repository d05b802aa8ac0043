"""Frame schemas, declared once.

`LINE` is an invoice line after `transform` (one row per NF and product), named
as `faturamento_produto`'s columns plus the job's own `odoo_` columns, which
are never written. `tests/test_schemas.py` checks that these agree with the
SQLAlchemy tables.
"""

from __future__ import annotations

import polars as pl

Q3 = pl.Decimal(15, 3)  # quantities and weights
P4 = pl.Decimal(15, 4)  # unit prices
V2 = pl.Decimal(15, 2)  # money

# Odoo-owned columns of faturamento_produto, in table order.
LINE_VALUES = pl.Schema(
    {
        "numero_nf": pl.String,
        "data_fatura": pl.Date,
        "cnpj_cliente": pl.String,
        "nome_cliente": pl.String,
        "municipio": pl.String,
        "estado": pl.String,
        "vendedor": pl.String,
        "equipe_vendas": pl.String,
        "incoterm": pl.String,
        "cod_produto": pl.String,
        "nome_produto": pl.String,
        "qtd_produto_faturado": Q3,
        "preco_produto_faturado": P4,
        "valor_produto_faturado": V2,
        "peso_unitario_produto": Q3,
        "peso_total": Q3,
        "origem": pl.String,
        "status_nf": pl.String,
    }
)
KEY = ("numero_nf", "cod_produto")
# Compared for drift: everything Odoo owns except the key and the status.
DRIFT_COLUMNS = tuple(c for c in LINE_VALUES if c not in KEY and c != "status_nf")

LINE = pl.Schema(
    {
        **LINE_VALUES,
        "odoo_move_id": pl.Int64,
        "odoo_line_count": pl.UInt32,  # Odoo lines merged into this row
        "odoo_write_date": pl.Datetime("us"),
        # For cadastro_palletizacao: the template's name at that table's width, and
        # its gross weight as Odoo sent it (the line keeps it rounded to 3 places).
        "odoo_template_name": pl.String,
        "odoo_gross_weight": pl.Float64,
    }
)

REJECTED = pl.Schema(
    {
        "odoo_line_id": pl.Int64,
        "odoo_move_id": pl.Int64,
        "numero_nf": pl.String,
        "cod_produto": pl.String,
        "reason": pl.String,
    }
)

# Existing rows of faturamento_produto as the diff needs them.
EXISTING_LINE = pl.Schema({**LINE_VALUES})
EXISTING_PRODUCT = pl.Schema({"cod_produto": pl.String})
CONSOLIDATION = pl.Schema(
    {
        "numero_nf": pl.String,
        "data_fatura": pl.Date,
        "cnpj_cliente": pl.String,
        "nome_cliente": pl.String,
        "valor_total": pl.Float64,
        "peso_bruto": pl.Float64,
        "municipio": pl.String,
        "estado": pl.String,
        "origem": pl.String,
        "incoterm": pl.String,
        "vendedor": pl.String,
        "equipe_vendas": pl.String,
        "ativo": pl.Boolean,
    }
)
EXISTING_CONSOLIDATION = CONSOLIDATION

NEW_PRODUCT = pl.Schema(
    {"cod_produto": pl.String, "nome_produto": pl.String, "palletizacao": pl.Float64, "peso_bruto": pl.Float64}
)
STATUS_CHANGE = pl.Schema(
    {"numero_nf": pl.String, "cod_produto": pl.String, "status_from": pl.String, "status_nf": pl.String}
)
NF_LIST = pl.Schema({"numero_nf": pl.String})


def empty(schema: pl.Schema) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)
