"""The writes of a chunked full run: every bulk write is ONE COPY of a stream of Arrow batches.

The new lines are COPYed into faturamento_produto while the run is still
producing them (one `adbc_ingest` of a `RecordBatchReader` whose batches come
from the chunks as they are diffed). What is staged (status/drift changes, new
products, consolidation) is spilled to local Parquet chunk by chunk and sent
after the lines, each as one `adbc_ingest` of a reader over its file, followed
by the same set-based statement as a one-piece run (`db.write`). So the
statements are a constant per run, whatever the number of chunks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import DatabaseError
from ..settings import redact
from .write import (
    _INSERT_PRODUCTS,
    _UPDATE_LINES,
    _UPSERT_CONSOLIDATION,
    ACTOR,
    WriteSummary,
    Writer,
    cancel_and_rebalance,
    to_arrow,
)

log = logging.getLogger(__name__)


def arrow_schema(frame: pl.DataFrame) -> pa.Schema:
    """The Arrow schema `to_arrow` gives `frame` (plain strings for COPY)."""
    return to_arrow(frame.clear()).schema


def ingest_stream(writer: Writer, table: str, schema: pa.Schema, batches: Iterable[pa.RecordBatch], *, temporary: bool) -> int:
    """ONE COPY of every batch of `batches` into `table`; returns the rows written.

    `batches` is pulled by the driver while the COPY runs, so the producer may
    still be computing them; an exception it raises surfaces here unchanged.
    """
    failure: list[BaseException] = []

    def guarded() -> Iterator[pa.RecordBatch]:
        try:
            yield from batches
        except BaseException as exc:  # the driver only sees "stream failed": keep the real cause
            failure.append(exc)
            raise

    writer.statements += 1
    reader = pa.RecordBatchReader.from_batches(schema, guarded())
    try:
        rows = writer.cur.adbc_ingest(table, reader, mode="create" if temporary else "append", temporary=temporary)
    except Exception as exc:
        if failure:
            raise failure[0] from None
        raise DatabaseError(f"bulk load into `{table}` failed: {redact(str(exc)).strip()[:800]}") from exc
    return int(rows)


class Spill:
    """Frames appended chunk by chunk to one local Parquet file, read back as a stream of batches."""

    def __init__(self, file: Path):
        self.file = file
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None

    def append(self, frame: pl.DataFrame) -> None:
        table = to_arrow(frame)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.file, table.schema)
        if table.num_rows:
            self._writer.write_table(table.cast(self._writer.schema))
            self.rows += table.num_rows

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def batches(self) -> Iterator[pa.RecordBatch]:
        self.close()
        yield from pq.ParquetFile(self.file).iter_batches(batch_size=65_536)

    @property
    def schema(self) -> pa.Schema:
        self.close()
        return pq.read_schema(self.file)


def write_staged(writer: Writer, spills: dict[str, Spill], cancelled_nfs: list[str], now: datetime,
                 *, stock: bool = True, balance_nfs: list[str] | tuple = ()) -> WriteSummary:
    """After the lines: new products, status/drift changes, the cascade, the consolidation.

    The same statements and order as `Writer.write` (`stock`: the database has the
    stock module's tables); a part with no rows sends nothing.
    """
    summary = WriteSummary()
    if spills["new_products"].rows:
        spill = spills["new_products"]
        ingest_stream(writer, "_fb_new_products", spill.schema, spill.batches(), temporary=True)
        writer.execute(_INSERT_PRODUCTS, (now,))
        summary.rows["cadastro_palletizacao.insert"] = writer.rowcount()
    if spills["changes"].rows:
        spill = spills["changes"]
        ingest_stream(writer, "_fb_changes", spill.schema, spill.batches(), temporary=True)
        writer.execute(_UPDATE_LINES, (now, ACTOR))
        summary.rows["faturamento_produto.update"] = writer.rowcount()
    cancel_and_rebalance(writer, summary, cancelled_nfs, list(balance_nfs), now, stock=stock)
    if spills["consolidation"].rows:
        spill = spills["consolidation"]
        ingest_stream(writer, "_fb_consolidation", spill.schema, spill.batches(), temporary=True)
        writer.execute(_UPSERT_CONSOLIDATION, (now, ACTOR))
        summary.rows["relatorio_faturamento_importado.upsert"] = writer.rowcount()
    return summary
