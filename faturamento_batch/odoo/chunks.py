"""A full extraction cut into chunks of whole moves (NFs), for full runs in bounded memory.

Every source cuts the same way: the in-domain moves, ordered by id, are grouped
into consecutive id ranges holding about `chunk_lines` invoice lines each, so
an NF is never split between chunks and a chunk is one `id >= lo AND id <= hi`
range of moves (an index range in Odoo). Each chunk is a `RawBatch` with the
lines of its moves and only the related records they point at.

Before the first chunk the source also hands over, keys only, the NF numbers
claimed by more than one move (`transform` rejects their lines as
`nf_number_on_several_moves`: a check a chunk cannot make alone, since the two
moves may sit in different chunks).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import polars as pl

from .source import ExtractStats, RawBatch


@dataclass
class ChunkedExtraction:
    """A full extraction delivered chunk by chunk.

    `moves_index`: `move_id` and raw `l10n_br_numero_nota_fiscal` of every move
    with in-domain lines (keys only; `transform.nfs_on_several_moves` finds the NF
    numbers two moves claim). `chunks` yields the `RawBatch` of each chunk, pulled
    lazily: a chunk is read only when it is asked for. `stats` accumulates over
    every chunk.
    """

    moves_index: pl.DataFrame  # move_id, l10n_br_numero_nota_fiscal of every in-domain move
    chunks: Iterator[RawBatch]
    n_chunks: int
    stats: ExtractStats = field(default_factory=ExtractStats)
    total_lines: int | None = None  # in-domain lines of the whole extraction, when the source knows them exactly


def plan_ranges(move_lines: pl.DataFrame, chunk_lines: int) -> list[tuple[int, int]]:
    """Consecutive move-id ranges of about `chunk_lines` lines each.

    In: `move_lines` with `move_id` and `lines` (in-domain lines per move). Out:
    inclusive (lo, hi) ranges covering every move; a range holds at most
    `chunk_lines` lines unless one move alone holds more.
    """
    if move_lines.height == 0:
        return []
    per_move = move_lines.group_by("move_id").agg(pl.col("lines").sum()).sort("move_id")
    # A move starts a new chunk when the lines before it would overflow the current one.
    chunk = (pl.col("lines").cum_sum() - pl.col("lines")) // max(chunk_lines, 1)
    ranges = (
        per_move.with_columns(chunk.alias("chunk"))
        .group_by("chunk", maintain_order=True)
        .agg(pl.col("move_id").min().alias("lo"), pl.col("move_id").max().alias("hi"))
    )
    return list(zip(ranges.get_column("lo").to_list(), ranges.get_column("hi").to_list()))


def one_chunk(batch: RawBatch) -> ChunkedExtraction:
    """A source that cannot chunk: its whole extraction as a single chunk."""
    from .fields import MOVE

    moves = batch.frames[MOVE].select(pl.col("id").alias("move_id"), "l10n_br_numero_nota_fiscal")
    return ChunkedExtraction(moves.clear(), iter([batch]), 1, batch.stats)
