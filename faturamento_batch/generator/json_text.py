"""JSON text for the dataset generator: records built as strings, column-wise.

Building a million Python dicts and handing them to `json.dumps` costs more than
the rest of the generator together, so the big models (moves, lines) are built
as Polars string columns: every field becomes its JSON text (numbers as Polars
prints them, which is the shortest round-trip form, strings escaped, many2one
as ``[id, "name"]``, empty as ``false``) and one `concat_str` joins them into a
record. Small models go through `json.dumps` record by record.

A dataset file is written one record per line::

    [
    {"id": 1, ...},
    {"id": 2, ...}
    ]

which is plain JSON for any reader and lets `read_record_texts` split a file
into records without parsing it (the next-day generator rewrites only the few
records it changes).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import polars as pl

CHUNK = 200_000  # rows per str.join when writing: bounds the size of one Python string


def esc(expr: pl.Expr) -> pl.Expr:
    """A string column as JSON string literals (null stays null).

    The generator's texts hold no control characters, so escaping the backslash
    and the quote is all JSON needs; non-ASCII stays UTF-8, as Odoo sends it.
    """
    body = expr.str.replace_all("\\", "\\\\", literal=True).str.replace_all('"', '\\"', literal=True)
    return pl.concat_str([pl.lit('"'), body, pl.lit('"')])


def quoted(expr: pl.Expr) -> pl.Expr:
    """A string column known to need no escaping (digits, dates, keys) as JSON strings."""
    return pl.concat_str([pl.lit('"'), expr, pl.lit('"')])


def or_false(expr: pl.Expr) -> pl.Expr:
    """Odoo's empty value: `false`, never `null`."""
    return expr.fill_null(pl.lit("false"))


def m2o(id_expr: pl.Expr, name_expr: pl.Expr) -> pl.Expr:
    """A many2one as Odoo sends it: ``[id, "display name"]``, or `false` when the id is null."""
    text = pl.concat_str([pl.lit("["), id_expr.cast(pl.String), pl.lit(", "), esc(name_expr), pl.lit("]")])
    return pl.when(id_expr.is_not_null()).then(text).otherwise(pl.lit("false"))


def num(expr: pl.Expr) -> pl.Expr:
    """A number as JSON text."""
    return expr.cast(pl.String)


def m2o_text(value: tuple[int, str] | list | None) -> str:
    """One many2one value as JSON text (for small lookup tables)."""
    if not value:
        return "false"
    return json.dumps([value[0], value[1]], ensure_ascii=False)


def records(frame: pl.DataFrame, fields: Sequence[str]) -> pl.Series:
    """One JSON object text per row; every column of `frame` is already JSON text."""
    parts: list[pl.Expr] = []
    for i, field in enumerate(fields):
        parts.append(pl.lit(("{" if i == 0 else ", ") + json.dumps(field) + ": "))
        parts.append(pl.col(field))
    parts.append(pl.lit("}"))
    return frame.select(pl.concat_str(parts).alias("record")).to_series()


def dict_records(rows: Iterable[dict]) -> list[str]:
    """Small models: one JSON object text per record, as `json.dumps` writes it."""
    return [json.dumps(row, ensure_ascii=False) for row in rows]


def write_records(path: Path, parts: Iterable[pl.Series | list[str] | list[bytes]]) -> int:
    """Write a JSON list, one record per line, from record texts; returns the record count."""
    count = 0
    with open(path, "wb") as out:
        out.write(b"[")
        for part in parts:
            if isinstance(part, pl.Series):
                for offset in range(0, part.len(), CHUNK):
                    chunk = part.slice(offset, CHUNK)
                    if chunk.len() == 0:
                        continue
                    out.write(b"\n" if count == 0 else b",\n")
                    out.write(chunk.str.join(",\n").item().encode())
                    count += chunk.len()
            else:
                for text in part:
                    out.write(b"\n" if count == 0 else b",\n")
                    out.write(text if isinstance(text, bytes) else text.encode())
                    count += 1
        out.write(b"\n]\n" if count else b"]\n")
    return count


def read_record_texts(path: Path) -> pl.Series:
    """The record texts of a dataset file, in file order, as a String series.

    A file in `write_records`' layout (one record per line) is split without
    parsing; anything else (a recorded payload on one line, pretty-printed JSON)
    is parsed and re-serialized one record per line, so callers see one shape.
    """
    data = path.read_bytes()
    rows = pl.Series(data.rstrip().split(b"\n"), dtype=pl.Binary).cast(pl.String)
    if rows.len() >= 2 and rows[0] == "[" and rows[-1] == "]":
        body = rows.slice(1, rows.len() - 2)
        if body.str.starts_with("{").all() and (body.str.ends_with("}") | body.str.ends_with("},")).all():
            return body.str.strip_suffix(",")
    parsed = json.loads(data)
    return pl.Series([json.dumps(r, ensure_ascii=False) for r in parsed], dtype=pl.String)
