"""A dataset directory (DESIGN §3) read in-process, as an Odoo would answer the job.

The same domain as the wire client asks Odoo for, evaluated with Polars: line
type and move state through the move, product lines only, and — for an
incremental window — lines whose own or whose move's write_date is in the
window, widened to every in-domain line of those moves.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import polars as pl

from ..config import Rules
from ..errors import ConfigError
from .chunks import ChunkedExtraction, plan_ranges
from .fields import LINE, MODELS, MOVE, MOVE_STATES, RELATED_IDS_FROM, dataset_file
from .frames import empty_frame, frame_from_json
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
    """Every model's raw frame from a dataset directory (a missing file is an empty model)."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"dataset `{path}` is not a directory (expected one JSON file per Odoo model)")
    frames = {}
    for model in MODELS:
        file = path / dataset_file(model)
        frames[model] = frame_from_json(model, file.read_bytes()) if file.exists() else empty_frame(model)
    return frames


def in_domain_lines(frames: dict[str, pl.DataFrame], since: datetime | None, rules: Rules | None = None) -> pl.DataFrame:
    """The lines an Odoo would return for the job's domain (`odoo.fields.line_domain(rules)`)
    and window, moves kept whole."""
    rules = rules or Rules()
    # Odoo's `not in` matches a move without a company: it is never excluded.
    company_ok = ~pl.col("company_id").is_in(list(rules.excluded_companies)).fill_null(False)
    moves = frames[MOVE].select(
        pl.col("id").alias("move_id"),
        (pl.col("l10n_br_tipo_pedido").is_in(list(rules.invoice_types)).fill_null(False) & company_ok).alias("_tipo_ok"),
        pl.col("state").is_in(list(MOVE_STATES)).fill_null(False).alias("_state_ok"),
        parse_write_date(pl.col("write_date")).alias("_move_write_date"),
    ).unique("move_id", keep="first")
    lines = (
        frames[LINE]
        .join(moves, on="move_id", how="left")
        .filter(pl.col("product_id").is_not_null() & pl.col("_tipo_ok") & pl.col("_state_ok"))
    )
    if since is not None:
        changed = (parse_write_date(pl.col("write_date")) >= since) | (pl.col("_move_write_date") >= since)
        moves_in_window = lines.filter(changed.fill_null(False)).select("move_id").unique()
        lines = lines.join(moves_in_window, on="move_id", how="semi")
    return lines.select(frames[LINE].columns).sort("id")


def related_subset(frames: dict[str, pl.DataFrame], lines: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """Only the related records the lines point at, as the wire client fetches them."""
    out = {LINE: lines}
    for model, sources in RELATED_IDS_FROM.items():
        ids = pl.concat([out[src].select(pl.col(f).alias("id")) for src, f in sources]).drop_nulls().unique()
        out[model] = frames[model].join(ids, on="id", how="semi")
    return out


class DatasetSource:
    """`Source` over a dataset directory, read in-process (no server)."""

    def __init__(self, path: Path | str, rules: Rules | None = None):
        self.path = Path(path)
        self.rules = rules or Rules()
        self.description = f"dataset {self.path}"

    def extract(self, since: datetime | None) -> RawBatch:
        started = time.perf_counter()
        frames = load_frames(self.path)
        subset = related_subset(frames, in_domain_lines(frames, since, self.rules))
        stats = ExtractStats(records={m: f.height for m, f in subset.items()})
        stats.seconds = time.perf_counter() - started
        return RawBatch(subset, since, max_write_date(subset), stats)

    def extract_moves(self, move_ids: list[int]) -> RawBatch:
        """The in-domain lines of the moves `move_ids` (by id, any write_date)."""
        started = time.perf_counter()
        frames = load_frames(self.path)
        wanted = pl.Series("move_id", move_ids, dtype=pl.Int64).implode()
        lines = in_domain_lines(frames, None, self.rules).filter(pl.col("move_id").is_in(wanted))
        subset = related_subset(frames, lines)
        stats = ExtractStats(records={m: f.height for m, f in subset.items()})
        stats.seconds = time.perf_counter() - started
        return RawBatch(subset, None, max_write_date(subset), stats)

    def extract_chunks(self, chunk_lines: int) -> ChunkedExtraction:
        """The full extraction in chunks of whole moves (see `odoo.chunks`).

        The dataset files are read whole (this source is for tests, the demo and
        recorded scenarios); the chunks it hands on are what bounds the run.
        """
        started = time.perf_counter()
        frames = load_frames(self.path)
        lines = in_domain_lines(frames, None, self.rules)
        stats = ExtractStats(records={})
        move_lines = lines.group_by("move_id").agg(pl.len().alias("lines"))
        ranges = plan_ranges(move_lines, chunk_lines)
        moves_index = (
            frames[MOVE].unique("id", keep="first").join(move_lines, left_on="id", right_on="move_id", how="semi")
            .select(pl.col("id").alias("move_id"), "l10n_br_numero_nota_fiscal")
        )  # fmt: skip
        stats.seconds = time.perf_counter() - started

        def chunks():
            for lo, hi in ranges:
                t = time.perf_counter()
                part = lines.filter(pl.col("move_id").is_between(lo, hi))
                subset = related_subset(frames, part)
                for model, frame in subset.items():
                    stats.records[model] = stats.records.get(model, 0) + frame.height
                stats.seconds += time.perf_counter() - t
                yield RawBatch(subset, None, max_write_date(subset), ExtractStats())

        return ChunkedExtraction(moves_index, chunks(), len(ranges), stats)
