"""The same rows loaded by sling (https://slingdata.io), a second loader a user might pick:
``sling run --mode incremental --primary-key numero_nf,cod_produto`` into faturamento_produto.

sling is a Go binary (`pip install sling sling-linux-amd64`; the `sling` wrapper would
download a binary at first use, so `SLING_BINARY` points at the one the
`sling-linux-amd64` wheel ships). It reads the transformed invoice lines (the same
rows as dlt and the floor: the Odoo-owned columns plus the four audit columns)
from a CSV file — its Parquet reader needs a DuckDB it downloads, and there is no
internet here — and loads them into *our* faturamento_produto (unique index on the
key, all our indexes) with its defaults: a COPY into a staging table
(``faturamento_produto_tmp``), then, in incremental mode with a primary key and no
update key, an UPDATE of the matching keys (whole rows) and an INSERT of the others.
It adds a ``_sling_loaded_at`` column to the table. No status-only update, no
cascade, no consolidation, no products.

Statements: sling logs every SQL statement it sends at debug level (`-d`); they are
counted from that log, plus one per bulk COPY it reports. Peak RSS: sling runs as a
child process, so the figure is the larger of the worker's and sling's
(`RUSAGE_CHILDREN`), both recorded.
DB-side, the CSV is written before the clock starts; end-to-end, the rows come from
faturamento_batch's extraction and transform (JSON-RPC), and writing the CSV is timed.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
from datetime import datetime
from pathlib import Path

import polars as pl

from faturamento_batch.schemas import LINE_VALUES

from .frames import audit_columns, extract_lines

ACTOR = "sling"
TABLE = "public.faturamento_produto"
_SQL = re.compile(r"\x1b\[36m")  # sling prints each SQL statement it executes in cyan at debug level
_COPY = re.compile(r"(?i)\bcopy\b.*\bfrom stdin\b|bulk.?load|copyfrom")


def sling_binary() -> str:
    binary = os.environ.get("SLING_BINARY")
    if binary:
        return binary
    import sling_linux_amd64  # noqa: PLC0415 — the wheel that ships the binary

    return str(Path(sling_linux_amd64.__file__).parent / "bin" / "sling-linux-amd64")


def sling_url(url: str) -> str:
    """sling reaches the embedded server's Unix socket with an empty host and `?host=`; it requires a password."""
    scheme, rest = url.split("://", 1)
    user, host_db = rest.split("@", 1)
    host_db = host_db.split("/", 1)[1] if "/" in host_db else host_db
    sep = "&" if "?" in host_db else "?"
    return f"{scheme}://{user.split(':')[0]}:trust@/{host_db}{sep}sslmode=disable"


def write_csv(lines: pl.DataFrame, file: Path) -> None:
    lines.select(LINE_VALUES.names()).with_columns(audit_columns(datetime.now(), ACTOR)).write_csv(file)


def prepare(spec: dict) -> Path | None:
    sling_binary()  # fail before the clock if sling is missing
    if spec["mode"] == "e2e":
        return None
    file = Path(spec["tmp"]) / "lines.csv"
    write_csv(pl.read_parquet(Path(spec["lines"])), file)
    return file


def run(file: Path | None, spec: dict) -> dict:
    odoo_calls = 0
    if file is None:  # end-to-end: faturamento_batch's extraction and transform, then sling
        lines, odoo_calls = extract_lines(spec)
        file = Path(spec["tmp"]) / "lines.csv"
        write_csv(lines, file)
        del lines
    env = {**os.environ, "SLING_TGT": sling_url(spec["url"]), "SLING_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    cmd = [sling_binary(), "run", "--src-stream", f"file://{file}", "--tgt-conn", "SLING_TGT", "--tgt-object", TABLE,
           "--mode", "incremental", "--primary-key", "numero_nf,cod_produto", "-d"]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    (Path(spec["tmp"]).parent / f"sling-{spec['mode']}.log").write_text(log)
    if proc.returncode != 0:
        raise RuntimeError(f"sling failed ({proc.returncode}):\n{log[-3000:]}")
    sql = len(_SQL.findall(log))
    copies = len([line for line in log.splitlines() if _COPY.search(line)])
    child_mb = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    return {
        "statements": sql + max(copies, 1),
        "odoo_calls": odoo_calls,
        "child_peak_rss_mb": child_mb,
        "detail": {"sql_logged": sql, "copies": copies, "sling_peak_rss_mb": child_mb},
    }
