"""What every Odoo source returns: raw frames per model for one extraction window.

A source is anything with `extract(since) -> RawBatch`: the in-process dataset
reader (`odoo.dataset`) and the wire client (`odoo.extract`). `transform` and
`diff` see only the frames, never where they came from.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import polars as pl

from .fields import LINE, MOVE

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass
class ExtractStats:
    """What an extraction cost: Odoo calls per model/method, bytes, records, seconds."""

    calls: dict[str, int] = field(default_factory=dict)
    bytes_received: int = 0
    records: dict[str, int] = field(default_factory=dict)
    cache_hits: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_call(self, model: str, method: str, n: int = 1) -> None:
        key = f"{model}.{method}"
        with self._lock:  # related models are fetched from several threads
            self.calls[key] = self.calls.get(key, 0) + n

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def as_dict(self) -> dict:
        return {
            "calls": dict(sorted(self.calls.items())),
            "total_calls": self.total_calls,
            "bytes_received": self.bytes_received,
            "records": dict(sorted(self.records.items())),
            "cache_hits": dict(sorted(self.cache_hits.items())),
            "seconds": round(self.seconds, 4),
        }


@dataclass
class RawBatch:
    """Raw frames of one extraction: the in-domain lines of whole moves, and their related records."""

    frames: dict[str, pl.DataFrame]
    since: datetime | None  # None: a full extraction
    max_write_date: datetime | None  # largest line/move write_date seen: the next cursor
    stats: ExtractStats = field(default_factory=ExtractStats)


class Source(Protocol):
    description: str

    def extract(self, since: datetime | None) -> RawBatch:
        """All in-domain lines of every move changed at or after `since` (None: all moves)."""
        ...

    def extract_moves(self, move_ids: list[int]) -> RawBatch:
        """All in-domain lines of the moves `move_ids`, whatever their write_date (the quarantine's
        retries, DESIGN §12: the cursor has moved past them)."""
        ...


def merge_batches(batch: RawBatch, extra: RawBatch) -> RawBatch:
    """`batch` plus the records of `extra` it lacks (by id); the cursor stays `batch`'s: the
    moves fetched by id are older than the window by construction."""
    frames = {
        m: pl.concat([f, extra.frames[m]], how="diagonal_relaxed").unique("id", keep="first", maintain_order=True)
        if m in extra.frames and extra.frames[m].height else f
        for m, f in batch.frames.items()
    }  # fmt: skip
    stats = batch.stats
    for key, n in extra.stats.calls.items():
        model, _, method = key.rpartition(".")
        stats.count_call(model, method, n)
    stats.bytes_received += extra.stats.bytes_received
    stats.seconds += extra.stats.seconds
    stats.records = {m: f.height for m, f in frames.items()}
    return RawBatch(frames, batch.since, batch.max_write_date, stats)


def parse_write_date(expr: pl.Expr) -> pl.Expr:
    return expr.str.to_datetime(DATETIME_FORMAT, strict=False, time_unit="us")


def max_write_date(frames: dict[str, pl.DataFrame]) -> datetime | None:
    """The next cursor: the largest write_date among the batch's lines and moves."""
    values = [
        frames[m].select(parse_write_date(pl.col("write_date")).max()).item() for m in (LINE, MOVE) if frames[m].height
    ]
    values = [v for v in values if v is not None]
    return max(values) if values else None
