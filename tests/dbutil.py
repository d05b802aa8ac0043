"""Test helpers to load rows into tables and read tables back (test code, per-row allowed)."""

from __future__ import annotations

from contextlib import contextmanager

from datetime import date, datetime
from decimal import Decimal

import connectorx as cx
import polars as pl

from faturamento_batch.db import schema
from faturamento_batch.db.connection import adbc_connect

FIXED_TS = datetime(2026, 1, 1, 0, 0, 0)
# Values the tables require that a scenario need not spell out.
DEFAULTS = {
    "faturamento_produto": {"created_at": FIXED_TS, "updated_at": FIXED_TS, "created_by": "legacy", "updated_by": "legacy"},
    "cadastro_palletizacao": {"created_at": FIXED_TS, "updated_at": FIXED_TS, "palletizacao": 1.0, "peso_bruto": 1.0},
    "movimentacao_estoque": {
        "criado_em": FIXED_TS, "atualizado_em": FIXED_TS, "data_movimentacao": date(2026, 1, 1),
        "tipo_movimentacao": "SAIDA", "local_movimentacao": "CD", "nome_produto": "produto",
        "qtd_movimentacao": "1", "atualizado_por": "legacy",
    },
    "embarque_itens": {"cliente": "cliente", "pedido": "P1", "uf_destino": "SP", "cidade_destino": "Campinas"},
    "separacao": {"cod_uf": "SP"},
    "relatorio_faturamento_importado": {"criado_em": FIXED_TS},
    "embarques": {"criado_em": FIXED_TS},
    "inconsistencia_faturamento": {"detectada_em": FIXED_TS},
    "faturamento_parcial_justificativa": {"criado_em": FIXED_TS, "criado_por": "legacy"},
}  # fmt: skip
# What production's models fill in client-side (no server default there, legacy-rules.md §9), as
# the application would; each value is the server default of init-db's schema, so rows load the
# same on both. Only columns the database has are filled (`criado_por` is production's only).
MODEL_DEFAULTS = {
    "embarques": {"status": "ativo", "criado_por": "Administrador"},
    "embarque_itens": {"status": "ativo"},
    "separacao": {"status": "ABERTO", "sincronizado_nf": False, "tipo_envio": "total"},
    "relatorio_faturamento_importado": {"ativo": True},
    "cadastro_palletizacao": {"ativo": True},
    "movimentacao_estoque": {"ativo": True},
}
# How a loaded FIXED_TS reads back as text: a scenario's "<set>" never matches it.
FIXED_TS_TEXT = "2026-01-01 00:00:00.000000"


def _coerce(table, column: str, value):
    if column not in schema.metadata.tables[table].c:  # a column a scenario's setup_sql added (§10)
        return value
    col = schema.metadata.tables[table].c[column]
    python_type = col.type.python_type if hasattr(col.type, "python_type") else str
    if value is None:
        return None
    if python_type is Decimal:
        return Decimal(str(value))
    if python_type is date and isinstance(value, str):
        return date.fromisoformat(value)
    if python_type is datetime and isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


def load_rows(url: str, tables: dict[str, list[dict]]) -> None:
    """INSERT the given rows (dicts of column → value) with bound parameters, in table order.

    A table the schema does not know is an error: silently skipping it would let a
    scenario assert on rows it never loaded."""
    unknown = sorted(set(tables) - set(schema.metadata.tables))
    if unknown:
        raise KeyError(f"no table(s) {unknown} in the schema")
    conn = adbc_connect(url)
    try:
        with conn.cursor() as cur:
            present = _present_columns(cur)
            absent = sorted(t for t, rows in tables.items() if rows and t not in present)
            if absent:
                raise KeyError(f"table(s) {absent} do not exist in this database")
            for table in schema.metadata.sorted_tables:
                for row in tables.get(table.name, []):
                    defaults = {**MODEL_DEFAULTS.get(table.name, {}), **DEFAULTS.get(table.name, {})}
                    full = {**{c: v for c, v in defaults.items() if c in present[table.name]}, **row}
                    cols = list(full)
                    params = tuple(_coerce(table.name, c, full[c]) for c in cols)
                    placeholders = ", ".join(f"${i + 1}" for i in range(len(cols)))
                    cur.execute(f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({placeholders})", params)
                if any("id" in r for r in tables.get(table.name, [])) and "id" in table.c:
                    cur.execute(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), (SELECT max(id) FROM {table.name}))")
        conn.commit()
    finally:
        conn.close()


def _present_columns(cur) -> dict[str, set[str]]:
    """table → its columns, for the tables the connection's schema holds."""
    cur.execute("SELECT table_name::text, column_name::text FROM information_schema.columns WHERE table_schema = current_schema()")
    out: dict[str, set[str]] = {}
    for table, column in cur.fetchall():
        out.setdefault(table, set()).add(column)
    return out


def existing_tables(url: str) -> set[str]:
    conn = adbc_connect(url, autocommit=True)
    try:
        with conn.cursor() as cur:
            return set(_present_columns(cur))
    finally:
        conn.close()


def load_cascade_rows(url: str, nfs: list[str]) -> None:
    """Stock, shipment and picking rows pointing at `nfs`, so their cancellation cascades."""
    load_rows(url, {
        "embarques": [{"id": 1, "numero": 1}],
        "movimentacao_estoque": [{"cod_produto": "P00001", "numero_nf": nf, "status_nf": "FATURADO"} for nf in nfs],
        "embarque_itens": [{"embarque_id": 1, "nota_fiscal": nf} for nf in nfs],
        "separacao": [{"numero_nf": nf, "sincronizado_nf": True} for nf in nfs],
    })  # fmt: skip


def read_table(url: str, table: str, columns: list[str] | None = None, order: str | None = None) -> pl.DataFrame:
    """A table as a frame; numerics come back as text at their scale, so '1.500' compares exactly.
    A table or column `init-db` does not create (a scenario's setup_sql made it) is read as text."""
    if table not in schema.metadata.tables or any(c not in schema.metadata.tables[table].c for c in columns or []):
        known = schema.metadata.tables[table].c if table in schema.metadata.tables else {}
        exprs = [c if c in known and type(known[c].type).__name__ != "Numeric" else f"{c}::text AS {c}" for c in columns or []]
        query = f"SELECT {', '.join(exprs)} FROM {table}" + (f" ORDER BY {order}" if order else "")
        return cx.read_sql(url, query, return_type="polars")
    tbl = schema.metadata.tables[table]
    cols = columns or [c.name for c in tbl.c]
    exprs = [f"{c}::text AS {c}" if type(tbl.c[c].type).__name__ == "Numeric" else c for c in cols]
    query = f"SELECT {', '.join(exprs)} FROM {table}" + (f" ORDER BY {order}" if order else "")
    return cx.read_sql(url, query, return_type="polars")


def scalar(url: str, sql: str, params: tuple = ()):
    conn = adbc_connect(url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchone()[0]
    finally:
        conn.close()


def snapshot(url: str) -> dict[str, list[tuple]]:
    """Every row of every table of ours the database has, for before/after comparisons."""
    out = {}
    present = existing_tables(url)
    for table in schema.metadata.sorted_tables:
        if table.name not in present:
            continue
        frame = read_table(url, table.name, order="1")
        out[table.name] = frame.rows()
    for extra in EXTRA_TABLES:  # the optional tables a scenario may have created (DESIGN §10)
        if scalar(url, "SELECT to_regclass($1) IS NOT NULL", (extra,)):
            out[extra] = cx.read_sql(url, f"SELECT t::text AS row FROM {extra} t ORDER BY 1", return_type="polars").rows()
    return out


EXTRA_TABLES = ("carteira_principal", "entregas_monitoradas")


@contextmanager
def cursor(url: str):
    """An ADBC cursor on its own connection (a run's reads take the run's cursor), rolled back."""
    conn = adbc_connect(url)
    try:
        with conn.cursor() as cur:
            yield cur
        conn.rollback()
    finally:
        conn.close()


def execute(url: str, *statements: str, each: bool = False) -> None:
    """Run SQL statements and commit: in one transaction (a scenario's setup, a schema), or with
    `each` every statement committed at once (what "the logistics application" does beside a run)."""
    conn = adbc_connect(url, autocommit=each)
    try:
        with conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)
        if not each:
            conn.commit()
    finally:
        conn.close()
