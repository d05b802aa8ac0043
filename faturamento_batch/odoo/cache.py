"""The related-record cache: one Parquet file per Odoo model under the state directory.

Related records (moves aside, which carry the NF state) change rarely, and an
edit to a partner or product does not touch the invoice line's write_date.
The cache keeps each model's raw frame between runs; `extract` asks Odoo for
the (id, write_date) of the cached ids it needs — a light call — and fetches
whole records only for ids it lacks or whose write_date moved.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import polars as pl

from .frames import empty_frame, raw_schema

log = logging.getLogger(__name__)


class RecordCache:
    def __init__(self, directory: Path | None):
        self.directory = directory

    def _file(self, model: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{model}.parquet"

    def load(self, model: str) -> pl.DataFrame:
        if self.directory is None or not self._file(model).exists():
            return empty_frame(model)
        try:
            frame = pl.read_parquet(self._file(model))
            return frame.select(raw_schema(model).names()).cast(dict(raw_schema(model)))  # type: ignore[arg-type]
        except Exception as exc:  # a damaged or outdated cache is only a cache: start over
            log.warning("ignoring the cache of %s (%s)", model, exc)
            return empty_frame(model)

    def save(self, model: str, frame: pl.DataFrame) -> None:
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self._file(model).with_suffix(".tmp")
        frame.write_parquet(tmp)
        os.replace(tmp, self._file(model))

    @staticmethod
    def merge(cached: pl.DataFrame, fresh: pl.DataFrame) -> pl.DataFrame:
        """Cached records with `fresh` ones replacing those of the same id."""
        return pl.concat([fresh, cached.join(fresh.select("id"), on="id", how="anti")]).unique("id", keep="first")
