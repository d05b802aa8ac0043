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

# varchar widths of the text columns `transform` cuts to, as the tables declare them. Here and
# not read off the SQLAlchemy tables: a sync must not import SQLAlchemy (~30 MB, only init-db's
# DDL needs it); `tests/test_schemas.py` checks that these agree with `db.schema`.
WIDTHS: dict[str, int] = {
    "numero_nf": 20, "cnpj_cliente": 20, "nome_cliente": 255, "municipio": 100, "estado": 2, "vendedor": 100,
    "equipe_vendas": 100, "incoterm": 20, "cod_produto": 50, "nome_produto": 200, "origem": 20, "status_nf": 20,
    "created_by": 100, "updated_by": 100,
}  # fmt: skip
PRODUCT_WIDTHS: dict[str, int] = {
    "cod_produto": 50, "nome_produto": 255, "tipo_embalagem": 50, "tipo_materia_prima": 50, "categoria_produto": 50,
    "subcategoria": 50, "linha_producao": 50,
}  # fmt: skip
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
# The NFs a run touched, for the modules downstream (run artifact `downstream`, DESIGN §8):
# one row per (NF, kind, customer CNPJ of its lines).
DOWNSTREAM = pl.Schema({"numero_nf": pl.String, "kind": pl.String, "cnpj_cliente": pl.String})


def empty(schema: pl.Schema) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


# -- the stock stage (DESIGN §9): its frames in and out ------------------------------
# In: what `db.read` hands `stock.plan_stock` (only the NFs and orders of the run).

# The NFs the stage may process, one row per faturamento_produto line, as they will
# stand after this run's import writes (Odoo's lines for the NFs of the batch, the
# database's for the others). `stock` keeps only the posted ones (Lançado/SEM_LOTE).
STOCK_NF_LINE = pl.Schema(
    {
        "numero_nf": pl.String,
        "cod_produto": pl.String,
        "nome_produto": pl.String,
        "qtd_produto_faturado": Q3,
        "data_fatura": pl.Date,
        "origem": pl.String,
        "status_nf": pl.String,
    }
)
# embarque_itens of the run's orders (`pedido`) or NFs (`nota_fiscal`), with their shipment's status.
STOCK_ITEM = pl.Schema(
    {
        "id": pl.Int64,
        "embarque_id": pl.Int64,
        "separacao_lote_id": pl.String,
        "pedido": pl.String,
        "nota_fiscal": pl.String,
        "status": pl.String,
        "erro_validacao": pl.String,
        "embarque_status": pl.String,
        "carvia_cotacao_id": pl.Int64,  # null when the database has no CarVia column (§10)
    }
)
# separacao rows of the run's orders (`num_pedido`).
STOCK_SEPARATION = pl.Schema(
    {
        "id": pl.Int64,
        "separacao_lote_id": pl.String,
        "num_pedido": pl.String,
        "cod_produto": pl.String,
        "qtd_saldo": pl.Float64,
        "sincronizado_nf": pl.Boolean,
        "numero_nf": pl.String,
        "status": pl.String,
    }
)
# Active FATURAMENTO movimentacao_estoque rows of the run's NFs.
STOCK_MOVEMENT = pl.Schema(
    {
        "id": pl.Int64,
        "numero_nf": pl.String,
        "cod_produto": pl.String,
        "separacao_lote_id": pl.String,
        "codigo_embarque": pl.Int64,
    }
)
# Open (resolvida false) inconsistencia_faturamento rows of the run's NFs, with the values
# the stage writes, so an open row that already says the same is not rewritten every run.
STOCK_OPEN_INCONSISTENCY = pl.Schema(
    {
        "id": pl.Int64,
        "numero_nf": pl.String,
        "tipo": pl.String,
        "num_pedido": pl.String,
        "cod_produto": pl.String,
        "qtd_faturada": Q3,
        "observacao_resolucao": pl.String,
    }
)
# Existing faturamento_parcial_justificativa keys of the run's NFs.
STOCK_JUSTIFICATION_KEY = pl.Schema(
    {"separacao_lote_id": pl.String, "num_pedido": pl.String, "cod_produto": pl.String, "numero_nf": pl.String}
)

# Out: the `StockPlan`, one frame per kind of write (also the run artifacts).

# One row per processed NF: the lot chosen and how (`linked`, `candidate`, `none`).
STOCK_ASSIGNMENT = pl.Schema(
    {
        "numero_nf": pl.String,
        "origem": pl.String,
        "how": pl.String,
        "separacao_lote_id": pl.String,  # null: no lot
        "embarque_id": pl.Int64,  # the lowest embarque_id of the lot's items of the order
        "score": pl.Float64,  # null for linked lots and NFs without a lot
        "tipo": pl.String,  # null, NF_SEM_SEPARACAO or DIVERGENCIA_NF_EMBARQUE
        "divergent_pedido": pl.String,  # DIVERGENCIA_NF_EMBARQUE: the other order …
        "divergent_embarque_id": pl.Int64,  # … and its shipment
    }
)
# movimentacao_estoque rows to insert (the table's columns; audit columns set by the writer).
STOCK_MOVEMENT_INSERT = pl.Schema(
    {
        "cod_produto": pl.String,
        "nome_produto": pl.String,
        "data_movimentacao": pl.Date,
        "tipo_movimentacao": pl.String,
        "local_movimentacao": pl.String,
        "qtd_movimentacao": Q3,
        "separacao_lote_id": pl.String,
        "numero_nf": pl.String,
        "num_pedido": pl.String,
        "tipo_origem": pl.String,
        "status_nf": pl.String,
        "codigo_embarque": pl.Int64,
        "observacao": pl.String,
    }
)
# Existing FATURAMENTO movements to complete with their lot (re-check: still active).
STOCK_MOVEMENT_COMPLETE = pl.Schema(
    {
        "id": pl.Int64,
        "numero_nf": pl.String,
        "cod_produto": pl.String,
        "separacao_lote_id": pl.String,
        "codigo_embarque": pl.Int64,
        "observacao": pl.String,
    }
)
# embarque_itens to link (re-check: nota_fiscal still null or '').
STOCK_ITEM_LINK = pl.Schema(
    {"id": pl.Int64, "numero_nf": pl.String, "separacao_lote_id": pl.String, "clear_erro": pl.Boolean}
)
# Divergent embarque_itens (§10: active, naming the NF, `pedido` ≠ the NF's order) whose
# erro_validacao is empty get `erro_validacao` (re-check: still empty, still naming the NF).
STOCK_ITEM_FLAG = pl.Schema({"id": pl.Int64, "numero_nf": pl.String, "erro_validacao": pl.String})
# separacao rows of (lot, order) not yet FATURADO and not synced by the stage (re-check: still not FATURADO).
STOCK_SEPARATION_STATUS = pl.Schema({"id": pl.Int64, "separacao_lote_id": pl.String, "num_pedido": pl.String, "numero_nf": pl.String})
# separacao rows to sync (re-check: sincronizado_nf still false).
STOCK_SEPARATION_LINK = pl.Schema({"id": pl.Int64, "numero_nf": pl.String, "separacao_lote_id": pl.String})
# faturamento_produto status of a whole NF (re-check: the line still has `status_from`).
STOCK_STATUS_CHANGE = pl.Schema({"numero_nf": pl.String, "status_from": pl.String, "status_nf": pl.String})
# Inconsistencies: `action` is `open` (insert, or update the open one `id`) or `resolve`
# (every open one of the NF → resolvida, acao_tomada = LOTE_VINCULADO).
STOCK_INCONSISTENCY = pl.Schema(
    {
        "action": pl.String,
        "id": pl.Int64,  # the open row updated/resolved; null for an insert
        "tipo": pl.String,
        "numero_nf": pl.String,
        "num_pedido": pl.String,
        "cod_produto": pl.String,
        "qtd_faturada": Q3,
        "observacao_resolucao": pl.String,
    }
)
# faturamento_parcial_justificativa rows to insert.
STOCK_JUSTIFICATION = pl.Schema(
    {
        "separacao_lote_id": pl.String,
        "num_pedido": pl.String,
        "cod_produto": pl.String,
        "numero_nf": pl.String,
        "qtd_separada": Q3,
        "qtd_faturada": Q3,
        "qtd_saldo": Q3,
        "motivo_nao_faturamento": pl.String,
        "classificacao_saldo": pl.String,
        "descricao_detalhada": pl.String,
    }
)

# Run artifacts of the stage (one Parquet part each), built from the StockPlan.
# `stock_movements`: inserts and completions, `action` = insert | complete.
STOCK_MOVEMENTS_PART = pl.Schema({"action": pl.String, "id": pl.Int64, **STOCK_MOVEMENT_INSERT})
# `stock_links`: shipment items and separations given an NF, `kind` = item | separation.
STOCK_LINKS_PART = pl.Schema(
    {"kind": pl.String, "id": pl.Int64, "numero_nf": pl.String, "separacao_lote_id": pl.String, "clear_erro": pl.Boolean}
)
