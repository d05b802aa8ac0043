"""Every bulk write is ONE COPY of a stream of Arrow batches (DESIGN §8).

A run spills what it will write to local Parquet chunk by chunk (`Spill`); the
write sequence (`stages.write_run`) then sends each spill as one `adbc_ingest`
of a `RecordBatchReader` over its file (`ingest_stream`), followed by one
set-based statement. So the statements are a constant per run, whatever the
number of chunks, and memory holds a batch, not the run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

INGEST_SLICE = 65_536  # rows per Arrow batch of a streamed COPY


def to_arrow(frame: pl.DataFrame) -> pa.Table:
    """Polars → Arrow with plain `string` columns (what the COPY path maps to text)."""
    table = frame.to_arrow()
    return table.cast(pa.schema([pa.field(f.name, pa.string() if pa.types.is_large_string(f.type) or pa.types.is_string_view(f.type) else f.type) for f in table.schema]))


def arrow_schema(frame: pl.DataFrame) -> pa.Schema:
    """The Arrow schema `to_arrow` gives `frame` (plain strings for COPY)."""
    return to_arrow(frame.clear()).schema


def ingest_stream(writer, table: str, schema: pa.Schema, batches: Iterable[pa.RecordBatch], *, temporary: bool) -> int:
    """ONE COPY of every batch of `batches` into `table` through `writer` (the run's
    `db.write.Writer`); returns the rows written.

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
        # Classified like every other statement (a lost connection is transient: exit 75).
        raise writer._error(f"bulk load into `{table}` failed", exc) from exc
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
