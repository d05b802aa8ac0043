"""What a chunked full run needs from PostgreSQL, in memory that does not grow with the table.

A full run compares Odoo with every existing line and consolidation row. When
the tables are small (at most `budget` rows) they are read whole, with
connectorx, and held. When they are larger, one streamed scan per table (ADBC,
Arrow batches) spills them to local Parquet buckets by a hash of `numero_nf`,
`buckets` of them, each about `budget` rows: the run later diffs bucket by
bucket, so a bucket of existing rows meets exactly the incoming lines of the same
NFs. Either way the statements are a constant: two counts in one, the product
codes, and one read or scan per table.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from ..errors import DatabaseError
from ..schemas import EXISTING_CONSOLIDATION, EXISTING_LINE, EXISTING_PRODUCT
from ..settings import redact
from .connection import adbc_connect
from .read import _columns, read_existing_on, read_frame as _read

HASH_SEED = 20260101


def bucket_of(expr: pl.Expr, buckets: int) -> pl.Expr:
    """The spill bucket of an NF number: the same for incoming and existing rows."""
    return (expr.hash(HASH_SEED) % buckets).cast(pl.Int32)


@dataclass
class FullState:
    products: pl.DataFrame  # schemas.EXISTING_PRODUCT: every code of cadastro_palletizacao
    buckets: int  # 1: everything below is held in memory
    lines: pl.DataFrame | None = None  # buckets == 1: every existing line
    consolidation: pl.DataFrame | None = None
    spill: Path | None = None  # buckets > 1: lines-<b>.parquet, consolidation-<b>.parquet
    rows: dict[str, int] = field(default_factory=dict)
    statements: int = 0
    seconds: float = 0.0

    def bucket_lines(self, b: int) -> pl.DataFrame:
        """Existing lines of bucket `b` only (the stock stage and the events need no consolidation)."""
        if self.buckets == 1:
            return self.lines  # type: ignore[return-value]
        assert self.spill is not None
        return _read_spill(self.spill / f"lines-{b}.parquet", EXISTING_LINE)

    def bucket(self, b: int) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Existing lines and consolidation rows of bucket `b`."""
        if self.buckets == 1:
            return self.lines, self.consolidation  # type: ignore[return-value]
        assert self.spill is not None
        return (_read_spill(self.spill / f"lines-{b}.parquet", EXISTING_LINE),
                _read_spill(self.spill / f"consolidation-{b}.parquet", EXISTING_CONSOLIDATION))  # fmt: skip


def _read_spill(file: Path, schema: pl.Schema) -> pl.DataFrame:
    return pl.read_parquet(file) if file.exists() else pl.DataFrame(schema=schema)


def read_full_state(url: str, budget: int, spill: Path) -> FullState:
    """Existing state for a full run: held when at most `budget` rows, else spilled to `spill`."""
    started = time.perf_counter()
    counts = _read(url, "SELECT (SELECT count(*) FROM faturamento_produto) AS lines, "
                        "(SELECT count(*) FROM relatorio_faturamento_importado) AS nfs",
                   pl.Schema({"lines": pl.Int64, "nfs": pl.Int64}))  # fmt: skip
    rows = {"lines": int(counts["lines"][0]), "consolidation": int(counts["nfs"][0])}
    products = _read(url, "SELECT cod_produto FROM cadastro_palletizacao", EXISTING_PRODUCT)
    # budget 0: no chunking (`--chunk-size 0`), the state is held whole.
    buckets = max(1, math.ceil(max(rows.values()) / budget)) if budget > 0 else 1
    state = FullState(products, buckets, rows=rows, statements=2)
    if buckets == 1:
        state.lines = _read(url, f"SELECT {_columns(EXISTING_LINE)} FROM faturamento_produto", EXISTING_LINE)
        state.consolidation = _read(
            url, f"SELECT {_columns(EXISTING_CONSOLIDATION)} FROM relatorio_faturamento_importado", EXISTING_CONSOLIDATION
        )
    else:
        spill.mkdir(parents=True, exist_ok=True)
        state.spill = spill
        _scan_to_buckets(url, "faturamento_produto", EXISTING_LINE, buckets, spill / "lines")
        _scan_to_buckets(url, "relatorio_faturamento_importado", EXISTING_CONSOLIDATION, buckets, spill / "consolidation")
    state.statements += 2
    state.seconds = time.perf_counter() - started
    return state


def read_batch_state(cur, nfs: list[str], codes: list[str]) -> FullState:
    """An incremental run's state: the existing rows of its batch's NFs (and the batch's known
    product codes), read on the run's own connection `cur` and held (one bucket)."""
    got = read_existing_on(cur, nfs, codes)
    rows = {"lines": got.lines.height, "consolidation": got.consolidation.height}
    return FullState(got.products, 1, got.lines, got.consolidation, rows=rows, statements=got.statements,
                     seconds=got.seconds)  # fmt: skip


def _scan_to_buckets(url: str, table: str, schema: pl.Schema, buckets: int, prefix: Path) -> None:
    """One streamed SELECT of `table`, its batches split into `buckets` Parquet files."""
    # ADBC hands `numeric` over as an opaque type: send it as text, parse it back at its scale.
    select = ", ".join(f"{c}::text AS {c}" if isinstance(t, pl.Decimal) else c for c, t in schema.items())
    writers: dict[int, pq.ParquetWriter] = {}
    conn = adbc_connect(url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT {select} FROM {table}")  # identifiers from our own constants
            for batch in cur.fetch_record_batch():
                frame = pl.from_arrow(batch).cast(dict(schema), strict=True)  # type: ignore[arg-type]
                frame = frame.with_columns(bucket_of(pl.col("numero_nf"), buckets).alias("_bucket"))
                for (b,), part in frame.partition_by("_bucket", as_dict=True, include_key=False).items():
                    table_part = part.to_arrow()
                    if b not in writers:
                        writers[b] = pq.ParquetWriter(f"{prefix}-{b}.parquet", table_part.schema)
                    writers[b].write_table(table_part.cast(writers[b].schema))
    except DatabaseError:
        raise
    except Exception as exc:
        raise DatabaseError(f"scanning `{table}` for the full run failed: {redact(str(exc))[:500]}") from exc
    finally:
        for w in writers.values():
            w.close()
        conn.close()
