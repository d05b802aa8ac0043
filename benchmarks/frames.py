"""Small shared pieces: raw Odoo frames on disk, an in-memory `Source`, Arrow for ADBC."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pyarrow as pa

from faturamento_batch.odoo.chunks import ChunkedExtraction, plan_ranges
from faturamento_batch.odoo.fields import LINE, MODELS, MOVE, RELATED_IDS_FROM
from faturamento_batch.odoo.source import ExtractStats, RawBatch, max_write_date

# Incremental runs: every record of the batch is inside the window. Here, not in `prepare`, so a
# worker imports only what `sync` imports (prepare pulls the generator, NumPy and SQLAlchemy,
# which would inflate the peak RSS measured for our run).
SINCE = datetime(2000, 1, 1)


def save_raw(frames: dict[str, pl.DataFrame], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for model, frame in frames.items():
        frame.write_parquet(directory / f"{model}.parquet")


def load_raw(directory: Path) -> dict[str, pl.DataFrame]:
    return {model: pl.read_parquet(Path(directory) / f"{model}.parquet") for model in MODELS}


class MemorySource:
    """A `Source` whose extraction is already done: the Odoo frames are in memory.

    `extract` hands back the same frames whatever `since` is (the batch was cut to
    the window when it was prepared) and reports no Odoo call.
    """

    description = "Odoo frames in memory (benchmark)"

    def __init__(self, batch: RawBatch | dict[str, pl.DataFrame]):
        if isinstance(batch, dict):
            batch = RawBatch(batch, None, max_write_date(batch), ExtractStats())
        self.batch = batch

    def extract(self, since: datetime | None) -> RawBatch:
        return RawBatch(self.batch.frames, since, self.batch.max_write_date, ExtractStats())


class ParquetSource:
    """The DB-side source of full runs: the raw Odoo frames on local Parquet, read chunk by chunk.

    What `MemorySource` is for incremental runs, without holding the run: the
    chunk plan reads one column (`move_id`), then each chunk reads only its
    moves' lines (a `move_id` range, pruned by Parquet row-group statistics) and
    the related records they point at. Reading Parquet is timed, so DB-side full
    runs include the decode of their input; it stands for Odoo's frames, not Odoo.
    """

    description = "Odoo frames on local Parquet, chunked (benchmark)"

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def _scan(self, model: str) -> pl.LazyFrame:
        return pl.scan_parquet(self.directory / f"{model}.parquet")

    def extract(self, since: datetime | None) -> RawBatch:
        frames = load_raw(self.directory)
        return RawBatch(frames, since, max_write_date(frames), ExtractStats())

    def extract_chunks(self, chunk_lines: int) -> ChunkedExtraction:
        move_lines = self._scan(LINE).group_by("move_id").agg(pl.len().alias("lines")).collect()
        ranges = plan_ranges(move_lines, chunk_lines)
        index = (
            self._scan(MOVE).select(pl.col("id").alias("move_id"), "l10n_br_numero_nota_fiscal").collect()
            .join(move_lines.select("move_id"), on="move_id", how="semi")
        )  # fmt: skip

        def chunks():
            for lo, hi in ranges:
                frames = {LINE: self._scan(LINE).filter(pl.col("move_id").is_between(lo, hi)).collect().sort("id")}
                for model, sources in RELATED_IDS_FROM.items():
                    ids = pl.concat([frames[src].get_column(f) for src, f in sources]).drop_nulls().unique()
                    frames[model] = self._scan(model).filter(pl.col("id").is_in(ids.implode())).collect()
                yield RawBatch(frames, None, max_write_date(frames), ExtractStats())

        return ChunkedExtraction(index, chunks(), len(ranges), ExtractStats())


def extract_lines(spec: dict) -> tuple[pl.DataFrame, int]:
    """Invoice lines read over JSON-RPC by faturamento_batch's extraction and transform.

    For the end-to-end runs of contenders with no Odoo extraction of their own (dlt,
    the floor): the same wire work as our job, then their own load.
    """
    from faturamento_batch.odoo.extract import OdooSource
    from faturamento_batch.schemas import LINE_VALUES
    from faturamento_batch.settings import Settings
    from faturamento_batch.transform import transform


    odoo = spec["odoo"]
    settings = Settings(odoo_url=odoo["url"], odoo_db=odoo["db"], odoo_user=odoo["login"],
                        odoo_password=odoo["password"], odoo_timeout=600.0, use_cache=False)  # fmt: skip
    batch = OdooSource.from_settings(settings).extract(SINCE if spec["kind"] == "incremental" else None)
    lines = transform(batch.frames).lines.select(LINE_VALUES.names())
    return lines, batch.stats.total_calls


def audit_columns(ts: datetime, actor: str) -> list[pl.Expr]:
    return [
        pl.lit(ts).alias("created_at"),
        pl.lit(ts).alias("updated_at"),
        pl.lit(actor).alias("created_by"),
        pl.lit(actor).alias("updated_by"),
    ]


def to_arrow(frame: pl.DataFrame) -> pa.Table:
    """Polars → Arrow with plain `string` columns (what ADBC's COPY maps to text)."""
    table = frame.to_arrow()
    fields = [
        pa.field(f.name, pa.string()) if pa.types.is_large_string(f.type) or pa.types.is_string_view(f.type) else f
        for f in table.schema
    ]
    return table.cast(pa.schema(fields))
