"""The physical floor: what the database must receive at the very least.

Full runs: one `adbc_ingest` (COPY) of the transformed lines into the empty,
indexed faturamento_produto, one commit — 2 statements.
Incremental runs (the targeted floor): one connectorx read of the existing keys
of the batch's NFs (``numero_nf = ANY(...)``), an anti-join in Polars, one
`adbc_ingest` of the new lines, one commit — 3 statements. No status update, no
cascade, no consolidation, no products: a lower bound, not a job.
End-to-end, the rows come from faturamento_batch's own extraction and transform
(the floor has none): the wire work every job must do, then the least load.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import adbc_driver_postgresql.dbapi as adbc
import connectorx as cx
import polars as pl

from faturamento_batch.db.read import text_list_sql
from faturamento_batch.schemas import KEY, LINE_VALUES

from .frames import audit_columns, extract_lines, to_arrow

ACTOR = "floor"


def prepare(spec: dict) -> pl.DataFrame | None:
    if spec["mode"] == "e2e":
        return None
    return pl.read_parquet(Path(spec["lines"])).select(LINE_VALUES.names())


def run(lines: pl.DataFrame | None, spec: dict) -> dict:
    statements = odoo_calls = 0
    if lines is None:  # end-to-end: faturamento_batch's extraction and transform, then the floor's load
        lines, odoo_calls = extract_lines(spec)
    if spec["kind"] == "incremental":
        nfs = lines.get_column("numero_nf").unique().to_list()
        query = f"SELECT numero_nf, cod_produto FROM faturamento_produto WHERE numero_nf = ANY(ARRAY({text_list_sql(nfs)}))"
        existing = cx.read_sql(spec["url"], query, return_type="polars")
        statements += 1
        if existing.height:
            lines = lines.join(existing.select(KEY), on=list(KEY), how="anti")
    now = datetime.now()
    with adbc.connect(spec["url"]) as conn, conn.cursor() as cur:
        rows = cur.adbc_ingest("faturamento_produto", to_arrow(lines.with_columns(audit_columns(now, ACTOR))), mode="append")
        conn.commit()
    statements += 2
    return {"statements": statements, "odoo_calls": odoo_calls, "detail": {"rows_ingested": rows}}
