"""Small shared pieces: raw Odoo frames on disk, an in-memory `Source`, Arrow for ADBC."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pyarrow as pa

from faturamento_batch.odoo.fields import MODELS
from faturamento_batch.odoo.source import ExtractStats, RawBatch, max_write_date


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


def extract_lines(spec: dict) -> tuple[pl.DataFrame, int]:
    """Invoice lines read over JSON-RPC by faturamento_batch's extraction and transform.

    For the end-to-end runs of contenders with no Odoo extraction of their own (dlt,
    the floor): the same wire work as our job, then their own load.
    """
    from faturamento_batch.odoo.extract import OdooSource
    from faturamento_batch.schemas import LINE_VALUES
    from faturamento_batch.settings import Settings
    from faturamento_batch.transform import transform

    from .prepare import SINCE

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
