"""The same rows loaded by dlt — the loader a user would pick instead — with
``write_disposition="merge"`` and ``primary_key=("numero_nf", "cod_produto")``.

dlt is given the transformed invoice lines as one Arrow table (the same rows the
floor ingests: the Odoo-owned columns plus the four audit columns), with column
hints for the widths and scales of faturamento_produto, and loads them into **the
same table our job writes**: `faturamento_produto` as `init-db` creates it, with its
unique (numero_nf, cod_produto) index and the other indexes (dlt's dataset is the
schema the table lives in, `public`). Everything else is dlt's default: the
postgres destination, the ``delete-insert`` merge strategy, the load file format dlt
picks for an Arrow table (the formats used are recorded in each result), its state
tables beside ours. What that means, compared with our job:
- a merge replaces whole rows: no status-only update, no drift report, no
  cancellation cascade, no consolidation, no products;
- the data goes first into a staging dataset (``public_staging``), then a merge
  transaction (DELETE … WHERE EXISTS, INSERT … SELECT) moves it over — through the
  same index maintenance as our COPY pays.
(Until issue 20 dlt loaded its own unindexed table in its own schema: a different job.)

End-to-end, dlt gets its rows from faturamento_batch's own extraction (JSON-RPC)
and transform — dlt has no Odoo source for these models — so the wire work is the
same as our job's, and the difference is the load.

Statements: counted where dlt sends them — every query of its SQL client (a script
joined by dlt's ``execute_many`` counts each of its statements), one per COPY/ADBC
ingest, one per commit. dlt's local work (extract, normalize, files) is timed but sends nothing.
"""

from __future__ import annotations

import shutil
import threading
from datetime import datetime
from pathlib import Path

import polars as pl

from faturamento_batch.db.schema import faturamento_produto
from faturamento_batch.schemas import LINE_VALUES

from .frames import audit_columns, extract_lines, to_arrow

PIPELINE = "faturamento_bench"
DATASET = "public"  # the schema init-db creates faturamento_produto in: dlt loads the same indexed table
TABLE = "faturamento_produto"
KEY = ("numero_nf", "cod_produto")
ACTOR = "dlt"


def column_hints() -> dict[str, dict]:
    """faturamento_produto's widths, scales and NOT NULLs as dlt column hints."""
    hints: dict[str, dict] = {}
    for col in faturamento_produto.c:
        if col.name == "id":
            continue
        kind = type(col.type).__name__
        hint: dict = {"nullable": bool(col.nullable)}
        if kind == "String":
            hint.update(data_type="text", precision=col.type.length)
        elif kind == "Numeric":
            hint.update(data_type="decimal", precision=col.type.precision, scale=col.type.scale)
        elif kind == "Date":
            hint.update(data_type="date")
        elif kind == "DateTime":
            hint.update(data_type="timestamp", timezone=False)
        hints[col.name] = hint
    return hints


class Counter:
    """Counts what dlt sends: patched onto dlt's postgres SQL client and load jobs."""

    def __init__(self) -> None:
        self.statements = 0
        self.ingests = 0
        self.commits = 0
        self._lock = threading.Lock()

    def add(self, what: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, what, getattr(self, what) + n)

    @property
    def total(self) -> int:
        return self.statements + self.ingests + self.commits


def install_counter() -> Counter:
    from contextlib import contextmanager

    from dlt.destinations import _adbc_jobs
    from dlt.destinations.impl.postgres import postgres as pg_impl
    from dlt.destinations.impl.postgres import sql_client as pg_client

    counter = Counter()
    client = pg_client.Psycopg2SqlClient
    if getattr(client, "_bench_patched", False):
        return client._bench_counter
    execute_query = client.execute_query
    commit = client.commit_transaction

    @contextmanager
    def counted_query(self, query, *args, **kwargs):
        text = query if isinstance(query, str) else None
        counter.add("statements", text.count(";\n") + 1 if text else 1)
        with execute_query(self, query, *args, **kwargs) as cur:
            yield cur

    def counted_commit(self):
        counter.add("commits")
        return commit(self)

    client.execute_query = counted_query
    client.commit_transaction = counted_commit
    job = _adbc_jobs.AdbcParquetCopyJob
    job_run = job.run

    def counted_run(self):
        counter.add("ingests")
        counter.add("commits")
        return job_run(self)

    job.run = counted_run
    csv_job = pg_impl.PostgresCsvCopyJob
    csv_run = csv_job.run

    def counted_csv_run(self):
        counter.add("ingests")  # one COPY … FROM STDIN (its commit goes through the SQL client)
        return csv_run(self)

    csv_job.run = counted_csv_run
    client._bench_patched = True
    client._bench_counter = counter
    return counter


def credentials(url: str) -> str:
    """dlt requires a password; the embedded server trusts local connections and never asks for it."""
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user.split(':')[0]}:trust@{host}"


def pipeline(url: str, pipelines_dir: Path):
    import dlt

    return dlt.pipeline(
        pipeline_name=PIPELINE,
        destination=dlt.destinations.postgres(credentials=credentials(url)),
        dataset_name=DATASET,
        pipelines_dir=str(pipelines_dir),
    )


def resource(table):
    import dlt

    return dlt.resource(
        table, name=TABLE, write_disposition="merge", primary_key=KEY, columns=column_hints()
    )


def prepare(spec: dict) -> pl.DataFrame | None:
    import dlt  # noqa: F401  (the import is not what is measured)

    tmp = Path(spec["tmp"])
    if spec.get("dlt_pipeline"):  # incremental: the pipeline state of the load that filled the table
        shutil.copytree(spec["dlt_pipeline"], tmp / "dlt_pipelines")
    if spec["mode"] == "e2e":
        return None
    return pl.read_parquet(Path(spec["lines"])).select(LINE_VALUES.names())


def run(lines: pl.DataFrame | None, spec: dict) -> dict:
    odoo_calls = 0
    if lines is None:  # end-to-end: faturamento_batch's extraction and transform, then dlt
        lines, odoo_calls = extract_lines(spec)
    counter = install_counter()
    table = to_arrow(lines.with_columns(audit_columns(datetime.now(), ACTOR)))
    p = pipeline(spec["url"], Path(spec["tmp"]) / "dlt_pipelines")
    info = p.run(resource(table))
    info.raise_on_failed_jobs()
    formats = sorted({j.job_file_info.file_format for pkg in info.load_packages for j in pkg.jobs["completed_jobs"]})
    return {
        "statements": counter.total,
        "odoo_calls": odoo_calls,
        "detail": {
            "statements": counter.statements, "ingests": counter.ingests, "commits": counter.commits,
            "load_file_formats": formats,
        },
    }  # fmt: skip


def seed(spec: dict) -> dict:
    """dlt's state for an incremental scenario: the template already holds the rows in
    faturamento_produto; a first dlt load of a slice of those same rows (a no-op merge)
    creates dlt's state tables and its local pipeline state, as a pipeline that filled the
    table would have them."""
    import adbc_driver_postgresql.dbapi as adbc

    head = pl.read_parquet(spec["rows"]).head(1000)
    p = pipeline(spec["url"], Path(spec["pipelines_dir"]))
    info = p.run(resource(to_arrow(head)))
    info.raise_on_failed_jobs()
    with adbc.connect(spec["url"]) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
            (DATASET, TABLE),
        )
        columns = [r[0] for r in cur.fetchall()]
        cur.execute(f'SELECT count(*) FROM "{DATASET}"."{TABLE}"')
        count = cur.fetchone()[0]
        cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2", (DATASET, TABLE)
        )
        indexes = [r[1] for r in cur.fetchall()]
    return {"rows": int(count), "columns": columns, "indexes": indexes, "load_id": info.loads_ids[-1]}
