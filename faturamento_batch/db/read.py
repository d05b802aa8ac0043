"""What the diff needs from PostgreSQL, read with connectorx (Arrow, no Python rows).

Only the rows the diff needs: in incremental runs the existing lines and
consolidation of the batch's NFs, and the known codes among the batch's
products. connectorx takes no bound parameters, so a list of keys travels as
data: a JSON array, hex-encoded, decoded by PostgreSQL. The hex text can only
hold [0-9a-f], whatever the keys contain, so no key can change the SQL.
"""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import polars as pl
import pyarrow as pa

from ..errors import DatabasePermanentError, DatabaseTransientError, PermissionDenied, database_error
from ..schemas import EXISTING_CONSOLIDATION, EXISTING_LINE, EXISTING_PRODUCT
from ..dsn import ConnInfo
from ..settings import redact
from .connection import conninfo
from .privileges import permission_message

_HEX = re.compile(r"^[0-9a-f]*$")
# connectorx raises a bare RuntimeError with no SQLSTATE; these texts are the
# connection-level failures (unreachable, dropped or terminated), worth a retry later.
_CX_CONNECTION_LOST = ("error connecting to server", "timed out waiting for connection", "connection closed",
                       "terminating connection", "Connection reset", "Connection refused")  # fmt: skip


def text_list_sql(values: list[str]) -> str:
    """A SQL expression yielding `values` as a set of text rows, safe for any content."""
    hex_text = json.dumps(values, ensure_ascii=False).encode("utf-8").hex()
    assert _HEX.match(hex_text)  # the only text pasted into SQL
    return f"SELECT jsonb_array_elements_text(convert_from(decode('{hex_text}', 'hex'), 'UTF8')::jsonb)"


def text_array(values: pl.Series | list[str]) -> pa.Array:
    """`values` as ONE Arrow `list<string>` value: a `$n::text[]` parameter, bound, never pasted."""
    arr = pl.Series("v", values, dtype=pl.String).to_arrow()
    arr = arr.cast(pa.string()) if arr.type != pa.string() else arr
    return pa.ListArray.from_arrays(pa.array([0, len(arr)], pa.int32()), arr)


@dataclass
class ExistingState:
    lines: pl.DataFrame  # schemas.EXISTING_LINE
    products: pl.DataFrame  # schemas.EXISTING_PRODUCT
    consolidation: pl.DataFrame  # schemas.EXISTING_CONSOLIDATION
    statements: int = 0
    seconds: float = 0.0


def read_frame(target: str | ConnInfo, query: str, what: str = "the existing state", *, schema: pl.Schema | None = None) -> pl.DataFrame:
    """`query` read with connectorx into a frame (of `schema` when given, empty frames too);
    errors become `DatabaseError` about `what`, password masked."""
    import connectorx as cx

    info = conninfo(target)
    try:
        frame = cx.read_sql(info.connectorx(), query, return_type="polars")
    except BaseException as exc:  # connectorx raises pyo3 panics, which are BaseException
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        text = str(exc).replace(info.password, "***") if info.password else str(exc)
        denied = permission_message(text, info.get("user") or "")
        if denied:
            raise PermissionDenied(denied) from exc
        cls = DatabaseTransientError if any(t in text for t in _CX_CONNECTION_LOST) else DatabasePermanentError
        raise cls(f"reading {what} from `{info.describe()}` failed: {text.strip()[:500]}") from exc
    if schema is None:
        return frame
    if frame.height == 0:
        return pl.DataFrame(schema=schema)
    return frame.select(schema.names()).cast(dict(schema), strict=False)  # type: ignore[arg-type]


def _columns(schema: pl.Schema) -> str:
    return ", ".join(schema.names())  # names come from our own schema constants


def _read_on(cur, query: str, keys: list[str], schema: pl.Schema) -> pl.DataFrame:
    try:
        cur.execute(query, (keys,))
        frame = pl.from_arrow(cur.fetch_arrow_table())
    except Exception as exc:
        raise read_failure(exc, "the existing state") from exc
    if frame.height == 0:  # type: ignore[union-attr]
        return pl.DataFrame(schema=schema)
    return frame.select(schema.names()).cast(dict(schema), strict=True)  # type: ignore[union-attr,arg-type]


def read_failure(exc: BaseException, what: str) -> DatabaseError:
    """A failed read on the run's ADBC cursor: a missing grant named, else transient or permanent
    by its SQLSTATE; the message masked."""
    text = redact(str(exc))
    denied = permission_message(text, "")
    if denied:
        return PermissionDenied(denied)
    return database_error(f"reading {what} failed: {text[:500]}", exc)


def as_text(schema: pl.Schema, alias: str = "") -> str:
    # ADBC hands `numeric` over as an opaque type: read it as text, parse it at its scale.
    p = f"{alias}." if alias else ""  # `alias`: one of our own constants
    return ", ".join(f"{p}{c}::text AS {c}" if isinstance(t, pl.Decimal) else f"{p}{c}" for c, t in schema.items())


def read_existing_on(cur, nfs: list[str], codes: list[str]) -> ExistingState:
    """The state of an incremental run over the run's own open ADBC connection (`cur`).

    A small batch pays more for connecting than for reading: three statements on
    the connection the run already holds (keys bound as `$1::text[]`) replace
    three connectorx connections. Same frames as `read_existing`.
    """
    started = time.perf_counter()
    statements = 0
    lines = pl.DataFrame(schema=EXISTING_LINE)
    consolidation = pl.DataFrame(schema=EXISTING_CONSOLIDATION)
    products = pl.DataFrame(schema=EXISTING_PRODUCT)
    if nfs:
        lines = _read_on(cur, f"SELECT {as_text(EXISTING_LINE)} FROM faturamento_produto WHERE numero_nf = ANY($1::text[])",
                         nfs, EXISTING_LINE)  # fmt: skip
        consolidation = _read_on(cur, f"SELECT {as_text(EXISTING_CONSOLIDATION)} FROM relatorio_faturamento_importado "
                                      "WHERE numero_nf = ANY($1::text[])", nfs, EXISTING_CONSOLIDATION)  # fmt: skip
        statements += 2
    if codes:
        products = _read_on(cur, "SELECT cod_produto FROM cadastro_palletizacao WHERE cod_produto = ANY($1::text[])",
                            codes, EXISTING_PRODUCT)  # fmt: skip
        statements += 1
    return ExistingState(lines, products, consolidation, statements, time.perf_counter() - started)


def read_existing(url: str | ConnInfo, nfs: list[str], codes: list[str], *, full: bool) -> ExistingState:
    """Existing lines/consolidation (all in full runs, else the NFs in `nfs`) and known product codes.

    The three reads are independent; connectorx releases the GIL, so they run
    side by side on their own connections.
    """
    started = time.perf_counter()
    url = conninfo(url)
    nf_filter = "" if full else f" WHERE numero_nf IN ({text_list_sql(nfs)})"
    reads: dict[str, tuple[str, pl.Schema]] = {}
    if full or nfs:
        reads["lines"] = (f"SELECT {_columns(EXISTING_LINE)} FROM faturamento_produto{nf_filter}", EXISTING_LINE)
        reads["consolidation"] = (
            f"SELECT {_columns(EXISTING_CONSOLIDATION)} FROM relatorio_faturamento_importado{nf_filter}",
            EXISTING_CONSOLIDATION,
        )
    if codes:
        reads["products"] = (
            f"SELECT cod_produto FROM cadastro_palletizacao WHERE cod_produto IN ({text_list_sql(codes)})",
            EXISTING_PRODUCT,
        )
    with ThreadPoolExecutor(max_workers=3) as pool:
        jobs = {name: pool.submit(read_frame, url, query, schema=schema) for name, (query, schema) in reads.items()}
        got = {name: job.result() for name, job in jobs.items()}
    return ExistingState(
        lines=got.get("lines", pl.DataFrame(schema=EXISTING_LINE)),
        products=got.get("products", pl.DataFrame(schema=EXISTING_PRODUCT)),
        consolidation=got.get("consolidation", pl.DataFrame(schema=EXISTING_CONSOLIDATION)),
        statements=len(reads),
        seconds=time.perf_counter() - started,
    )
