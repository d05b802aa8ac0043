"""A dataset directory (DESIGN §3) read in-process, as an Odoo would answer the job.

The same domain as the wire client asks Odoo for, evaluated with Polars: line
type and move state through the move, product lines only, and — for an
incremental window — lines whose own or whose move's write_date is in the
window, widened to every in-domain line of those moves.

The files are never parsed whole (a dataset may hold millions of lines): they
are read a block of records at a time (`json_blocks`) into Parquet parts in a
temporary directory, and the domain, the window and the chunks are lazy Polars
queries over those parts, so a full run from a dataset is as bounded as one
from Odoo (DESIGN §8). The format itself (DESIGN §3) is unchanged.
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import datetime
from pathlib import Path

import polars as pl

from ..config import Rules
from ..errors import ConfigError
from .chunks import ChunkedExtraction, plan_ranges
from .fields import LINE, MODELS, MOVE, MOVE_STATES, RELATED_IDS_FROM, dataset_file
from .frames import empty_frame, frame_from_json, raw_schema
from .json_blocks import record_blocks
from .source import ExtractStats, RawBatch, max_write_date, parse_write_date

META_KEYS = ("db", "login", "password", "api_key", "uid")


def read_meta(path: Path) -> dict:
    meta_file = path / "meta.json"
    if not meta_file.exists():
        return {}
    try:
        return json.loads(meta_file.read_text())
    except ValueError as exc:
        raise ConfigError(f"`{meta_file}` is not valid JSON: {exc}") from exc


def load_frames(path: Path | str) -> dict[str, pl.DataFrame]:
    """Every model's raw frame from a dataset directory, held whole (a missing file is an empty model).

    For tests and tools over small datasets; runs read through `stage_dataset`.
    """
    return {model: frame.collect() for model, frame in _scans(_check_dir(path), None).items()}


def stage_dataset(path: Path | str, workdir: Path) -> dict[str, pl.LazyFrame]:
    """Each model's raw frame as a lazy scan of Parquet parts written block by block into `workdir`.

    The JSON files are read once, a block of records at a time (`json_blocks`),
    so staging holds one block, whatever the size of the dataset; what a run
    then collects from the scans is what bounds it.
    """
    return _scans(_check_dir(path), workdir)


def _check_dir(path: Path | str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"dataset `{path}` is not a directory (expected one JSON file per Odoo model)")
    return path


def _scans(path: Path, workdir: Path | None) -> dict[str, pl.LazyFrame]:
    scans = {}
    for model in MODELS:
        file = path / dataset_file(model)
        blocks = (frame_from_json(model, block) for block in record_blocks(file)) if file.exists() else iter(())
        if workdir is None:
            scans[model] = pl.concat([empty_frame(model), *blocks]).lazy()
            continue
        parts = workdir / model
        parts.mkdir(parents=True)
        empty_frame(model).write_parquet(parts / "part-000000.parquet")  # the schema, even with no records
        for i, frame in enumerate(blocks, start=1):  # one iteration per block of ~25k records
            frame.write_parquet(parts / f"part-{i:06d}.parquet")
        scans[model] = pl.scan_parquet(parts / "*.parquet", schema=raw_schema(model))
    return scans


def in_domain_lines(frames: dict, since: datetime | None, rules: Rules | None = None):
    """The lines an Odoo would return for the job's domain (`odoo.fields.line_domain(rules)`)
    and window, moves kept whole.

    `frames` holds DataFrames (→ a DataFrame) or LazyFrames (→ a LazyFrame).
    """
    rules = rules or Rules()
    # Odoo's `not in` matches a move without a company: it is never excluded.
    company_ok = ~pl.col("company_id").is_in(list(rules.excluded_companies)).fill_null(False)
    lazy = isinstance(frames[LINE], pl.LazyFrame)
    line, move = frames[LINE].lazy(), frames[MOVE].lazy()
    moves = move.select(
        pl.col("id").alias("move_id"),
        (pl.col("l10n_br_tipo_pedido").is_in(list(rules.invoice_types)).fill_null(False) & company_ok).alias("_tipo_ok"),
        pl.col("state").is_in(list(MOVE_STATES)).fill_null(False).alias("_state_ok"),
        parse_write_date(pl.col("write_date")).alias("_move_write_date"),
    ).unique("move_id", keep="first")
    # Duplicate line ids keep their file order (the transform takes the first): joins and sort keep it.
    lines = line.join(moves, on="move_id", how="left", maintain_order="left").filter(
        pl.col("product_id").is_not_null() & pl.col("_tipo_ok") & pl.col("_state_ok")
    )
    if since is not None:
        changed = (parse_write_date(pl.col("write_date")) >= since) | (pl.col("_move_write_date") >= since)
        moves_in_window = lines.filter(changed.fill_null(False)).select("move_id").unique()
        lines = lines.join(moves_in_window, on="move_id", how="semi", maintain_order="left")
    out = lines.select(raw_schema(LINE).names()).sort("id", maintain_order=True)
    return out if lazy else out.collect()


def related_subset(frames: dict, lines: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """Only the related records the lines point at, as the wire client fetches them.

    `frames` may be DataFrames or LazyFrames (only the matching records are collected).
    """
    out = {LINE: lines}
    for model, sources in RELATED_IDS_FROM.items():
        ids = pl.concat([out[src].select(pl.col(f).alias("id")) for src, f in sources]).drop_nulls().unique()
        out[model] = frames[model].lazy().join(ids.lazy(), on="id", how="semi").collect()
    return out


class DatasetSource:
    """`Source` over a dataset directory, read in-process (no server), in bounded memory.

    Every extraction first stages the JSON files as Parquet parts (one pass, a
    block at a time) in a temporary directory, removed when the extraction is
    over; the domain, the window and the chunks are lazy Polars queries over
    them. A chunk reads the parts whose move ids overlap its range (Parquet
    statistics), so for files in id order — as `search_read` and `record` write
    them — each part is read about once; a file in another order still works,
    at more reading per chunk.
    """

    def __init__(self, path: Path | str, rules: Rules | None = None):
        self.path = Path(path)
        self.rules = rules or Rules()
        self.description = f"dataset {self.path}"

    def extract(self, since: datetime | None) -> RawBatch:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="faturamento-dataset-") as tmp:
            frames = stage_dataset(self.path, Path(tmp))
            subset = related_subset(frames, in_domain_lines(frames, since, self.rules).collect())
        stats = ExtractStats(records={m: f.height for m, f in subset.items()})
        stats.seconds = time.perf_counter() - started
        return RawBatch(subset, since, max_write_date(subset), stats)

    def extract_moves(self, move_ids: list[int]) -> RawBatch:
        """The in-domain lines of the moves `move_ids` (by id, any write_date)."""
        started = time.perf_counter()
        wanted = pl.Series("move_id", move_ids, dtype=pl.Int64).implode()
        with tempfile.TemporaryDirectory(prefix="faturamento-dataset-") as tmp:
            frames = stage_dataset(self.path, Path(tmp))
            lines = in_domain_lines(frames, None, self.rules).filter(pl.col("move_id").is_in(wanted)).collect()
            subset = related_subset(frames, lines)
        stats = ExtractStats(records={m: f.height for m, f in subset.items()})
        stats.seconds = time.perf_counter() - started
        return RawBatch(subset, None, max_write_date(subset), stats)

    def extract_chunks(self, chunk_lines: int) -> ChunkedExtraction:
        """The full extraction in chunks of whole moves (see `odoo.chunks`).

        The staging directory lives until the last chunk has been read (or the
        extraction is dropped).
        """
        started = time.perf_counter()
        tmp = tempfile.TemporaryDirectory(prefix="faturamento-dataset-")
        frames = stage_dataset(self.path, Path(tmp.name))
        lines = in_domain_lines(frames, None, self.rules)
        stats = ExtractStats(records={})
        move_lines = lines.group_by("move_id").agg(pl.len().alias("lines")).collect()
        ranges = plan_ranges(move_lines, chunk_lines)
        moves_index = (
            frames[MOVE].unique("id", keep="first").join(move_lines.lazy(), left_on="id", right_on="move_id", how="semi")
            .select(pl.col("id").alias("move_id"), "l10n_br_numero_nota_fiscal").collect()
        )  # fmt: skip
        stats.seconds = time.perf_counter() - started

        def chunks():
            try:
                for lo, hi in ranges:
                    t = time.perf_counter()
                    part = lines.filter(pl.col("move_id").is_between(lo, hi)).collect()
                    subset = related_subset(frames, part)
                    for model, frame in subset.items():
                        stats.records[model] = stats.records.get(model, 0) + frame.height
                    stats.seconds += time.perf_counter() - t
                    yield RawBatch(subset, None, max_write_date(subset), ExtractStats())
            finally:
                tmp.cleanup()

        total = int(move_lines.get_column("lines").sum())
        return ChunkedExtraction(moves_index, chunks(), len(ranges), stats, total_lines=total)
