"""Odoo records (as `search_read` returns them) → typed Polars frames.

The raw frame of a model has one column per field, with Odoo's `false` turned
into null:
- integer → Int64; char/selection/date/datetime → String (parsed later, in
  `transform`, where a bad value becomes a rejected line rather than an error);
  float → Float64;
- many2one ``[id, "name"]`` → two columns, ``<field>`` (Int64 id) and
  ``<field>__name`` (String display name).

Odoo sends `false` for an empty char field, and a real text may be the word
"false", so text cannot be read as plain strings. Polars, building a Binary
column, takes only real strings and turns everything else into null; a second,
String-typed read recovers numbers sent for a text field (some localizations
type the NF number as an integer). No Python loop over the records runs here.
"""

from __future__ import annotations

import io
import json
import re

import polars as pl

from ..errors import OdooPermanentError
from .fields import MODELS

M2O_NAME = "__name"

_SCALAR_TYPES = {
    "integer": pl.Int64,
    "float": pl.Float64,
}
_TEXT_KINDS = {"char", "selection", "date", "datetime"}


def raw_schema(model: str) -> pl.Schema:
    """The schema of `model`'s raw frame (many2one split into id and name)."""
    cols: dict[str, pl.DataType] = {}
    for field, kind in MODELS[model].items():
        if kind == "many2one":
            cols[field] = pl.Int64
            cols[field + M2O_NAME] = pl.String
        elif kind in _TEXT_KINDS:
            cols[field] = pl.String
        else:
            cols[field] = _SCALAR_TYPES[kind]
    return pl.Schema(cols)


def frame_from_json(model: str, payload: bytes, key: str | None = None) -> pl.DataFrame:
    """Build `model`'s raw frame straight from JSON bytes, parsed by Polars (Rust).

    `payload` is a JSON list of records, or an object holding that list under
    `key` (``"result"`` for a JSON-RPC response). Raises `OdooPermanentError`
    when the payload is not JSON of that shape.
    """
    if b"\\ud" in payload or b"\\uD" in payload:
        payload = _LONE_SURROGATE.sub(rb"\1\\ufffd", payload)
    wrapped, key = (b'{"r":' + payload + b"}", "r") if key is None else (payload, key)
    try:
        frame = pl.read_json(io.BytesIO(wrapped), schema={key: pl.List(pl.Struct(_read_fields(model)))})
        rows = frame.select(pl.col(key).explode()).unnest(key)
    except pl.exceptions.PolarsError:
        # NaN/Infinity (Python's json writes them) or a broken document: take the exact path.
        return _frame_from_objects(model, _records_of(model, wrapped, key))
    if rows.height == 0 or (rows.height == 1 and frame.get_column(key).list.len().item() == 0):
        return empty_frame(model)
    exact_text = None
    if b'"false"' in payload:
        # The text "false" and Odoo's empty value read alike above; rare enough to
        # pay for an exact read of the text fields only when the word is there.
        exact_text = _exact_text(model, _records_of(model, wrapped, key))
    return _normalize(model, rows, exact_text)


def records_to_frame(model: str, records: list[dict]) -> pl.DataFrame:
    """Build `model`'s raw frame from decoded `search_read` records (missing fields → null).

    Raises `OdooPermanentError` when the payload has a shape no Odoo sends
    (a dict where a value should be, say), naming the model.
    """
    if not records:
        return empty_frame(model)
    try:
        payload = json.dumps(records, allow_nan=False, default=str).encode()
    except ValueError:  # NaN or Infinity among the numbers
        return _frame_from_objects(model, records)
    return frame_from_json(model, payload)


# A UTF-16 surrogate escape without its pair: what invalid UTF-8 becomes on the way
# through Python. Polars (rightly) refuses it; it becomes U+FFFD, the replacement character.
# An escape counts only after an even run of backslashes: an escaped backslash
# followed by "udc80" is plain text.
_LONE_SURROGATE = re.compile(
    rb"(?<!\\)((?:\\\\)*)"
    rb"(?:\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2})"
)


def _read_fields(model: str) -> dict[str, pl.DataType]:
    """How a record is first read: links as lists of text, every other value as text."""
    return {f: pl.List(pl.String) if k == "many2one" else pl.String for f, k in MODELS[model].items()}


def _records_of(model: str, payload: bytes, key: str) -> list:
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise OdooPermanentError(f"Odoo sent `{model}` records that are not valid JSON: {exc}") from exc
    records = data.get(key) if isinstance(data, dict) else None
    if not isinstance(records, list):
        raise OdooPermanentError(f"Odoo sent `{model}` records that are not a JSON list")
    return records


def _frame_from_objects(model: str, records: list) -> pl.DataFrame:
    """The slow, exact path: columns built from Python objects (rare: NaN, odd payloads)."""
    if not records:
        return empty_frame(model)
    try:
        rows = pl.DataFrame(records, schema=_read_fields(model), strict=False)
    except (pl.exceptions.PolarsError, TypeError, ValueError, OverflowError) as exc:
        raise OdooPermanentError(f"Odoo sent `{model}` records of a shape no Odoo sends: {exc}") from exc
    return _normalize(model, rows, _exact_text(model, records))


def _exact_text(model: str, records: list) -> pl.DataFrame:
    """Text fields with only real strings kept (Odoo's `false` and numbers → null)."""
    text = [f for f, k in MODELS[model].items() if k in _TEXT_KINDS]
    try:
        return pl.DataFrame(records, schema={f: pl.Binary for f in text}, strict=False).select(
            pl.all().cast(pl.String, strict=False)
        )
    except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
        raise OdooPermanentError(f"Odoo sent `{model}` records of a shape no Odoo sends: {exc}") from exc


def _normalize(model: str, rows: pl.DataFrame, exact_text: pl.DataFrame | None) -> pl.DataFrame:
    """Raw read (links as lists of strings, the rest as text) → the typed raw frame."""
    exprs: list[pl.Expr] = []
    for field, kind in MODELS[model].items():
        col = pl.col(field)
        if kind == "many2one":
            # A real many2one is [id, name]; `false` reads as ["false"], garbage as anything else.
            ok = col.list.len() == 2
            exprs.append(pl.when(ok).then(col.list.get(0, null_on_oob=True).cast(pl.Int64, strict=False)).alias(field))
            exprs.append(pl.when(ok).then(col.list.get(1, null_on_oob=True)).alias(field + M2O_NAME))
        elif kind in _TEXT_KINDS:
            # Odoo never sends `true` for a text field, and sends `false` for an empty one.
            word = pl.when(col.is_in(["true", "false"]).not_()).then(col)
            if exact_text is not None:
                real = exact_text.get_column(field)
                word = pl.when(real.is_not_null()).then(pl.lit(real)).otherwise(word)
            exprs.append(word.alias(field))
        else:
            exprs.append(col.cast(_SCALAR_TYPES[kind], strict=False).alias(field))
    return rows.select(exprs)


def empty_frame(model: str) -> pl.DataFrame:
    return pl.DataFrame(schema=raw_schema(model))
