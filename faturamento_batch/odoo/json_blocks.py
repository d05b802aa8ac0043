"""A JSON list of records (a dataset file, DESIGN §3) cut into blocks of whole records.

A dataset file is one JSON list, exactly as `search_read` returns it, and may
hold millions of records: parsing it whole costs memory that grows with the
file. Here it is read `block_bytes` at a time; each block is cut after the last
record that ends in it, and handed on as a small JSON list of its own (then
parsed by Polars, in Rust, like any Odoo payload). What is alive at once is a
block and the part of a record that straddles two blocks.

Finding where a record ends needs to know which braces sit inside strings. That
is decided with NumPy over the block's bytes, not by a Python loop: the real
quotes are the ones preceded by an even run of backslashes, a brace is
structural when an even number of real quotes precede it, and a record ends
where a structural `}` brings the nesting depth back to that of the list. Each
block starts between two records (outside any string, at the list's depth), so
no state crosses a block boundary. UTF-8 never uses bytes below 0x80 inside a
multi-byte character, so the scan is byte-exact for any text.

Incremental JSON libraries (ijson) were considered: they hand back one Python
object per record, which is the per-row Python the data path avoids.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import OdooPermanentError

BLOCK_BYTES = 8 << 20  # ~25k invoice lines: small against a chunk, large against Polars' per-call cost
_WHITESPACE = b" \t\r\n"
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPEN, _CLOSE = np.frombuffer(b"{[", dtype=np.uint8), np.frombuffer(b"}]", dtype=np.uint8)


def record_blocks(file: Path, block_bytes: int | None = None) -> Iterator[bytes]:
    """The records of `file`'s top-level JSON list, as consecutive JSON lists of whole records.

    In: a file holding one JSON list of objects; `block_bytes` read at a time
    (default `BLOCK_BYTES`). Out: bytes, each a JSON list
    (``[{...},{...}]``) of the next records in file order; nothing for an empty
    list. Raises `OdooPermanentError` naming the file when it is not a JSON list
    or ends before the list does (a broken record inside a block surfaces when
    the block is parsed).
    """
    block_bytes = block_bytes or BLOCK_BYTES
    with open(file, "rb") as f:
        head = f.read(block_bytes).lstrip(_WHITESPACE)
        if head.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark some editors write
            head = head[3:].lstrip(_WHITESPACE)
        if not head.startswith(b"["):
            raise OdooPermanentError(f"`{file}` is not a JSON list of records (as `search_read` returns them)")
        pending = head[1:]
        while True:
            end = last_record_end(pending)
            if end:
                yield b"[" + pending[:end].lstrip(_WHITESPACE + b",") + b"]"
                pending = pending[end:]
            data = f.read(block_bytes)
            if not data:
                break
            pending += data
    if pending.strip(_WHITESPACE) != b"]":
        raise OdooPermanentError(f"`{file}` ends before its JSON list does (a truncated or broken dataset file)")


def last_record_end(buf: bytes) -> int:
    """Offset just past the last record (`}` at the list's depth) that ends in `buf`, or 0.

    `buf` starts between two records of the list: outside any string, at depth 0.
    """
    a = np.frombuffer(buf, dtype=np.uint8)
    quotes = np.flatnonzero(a == _QUOTE)
    if quotes.size and (a == _BACKSLASH).any():
        quotes = quotes[_escape_run(a, quotes) % 2 == 0]
    brackets = np.flatnonzero(np.isin(a, _OPEN) | np.isin(a, _CLOSE))
    brackets = brackets[np.searchsorted(quotes, brackets) % 2 == 0]  # outside strings
    if not brackets.size:
        return 0
    chars = a[brackets]
    depth = np.cumsum(np.where(np.isin(chars, _OPEN), 1, -1))
    ends = brackets[(chars == ord("}")) & (depth == 0)]
    return int(ends[-1]) + 1 if ends.size else 0


def _escape_run(a: np.ndarray, quotes: np.ndarray) -> np.ndarray:
    """For each quote, how many backslashes directly precede it (odd: the quote is escaped)."""
    run = np.zeros(quotes.size, dtype=np.int64)
    alive = np.ones(quotes.size, dtype=bool)
    k = 1
    while True:  # one pass per backslash of the longest run, not per quote
        at = quotes - k
        alive &= at >= 0
        alive[alive] &= a[at[alive]] == _BACKSLASH
        if not alive.any():
            return run
        run += alive
        k += 1
