"""What the stock stage (DESIGN §9) needs from PostgreSQL, read on the run's own connection.

Only the NFs and orders of the run, in two rounds:
  1. `read_candidate_lines`: the lines, as the database holds them, of the NFs
     the run must look at besides its own batch — pending NFs (a line in
     `SEM_LOTE` whose order now has a candidate item), the bounded catch-up
     (`CatchUp`: posted NFs without a FATURAMENTO movement of the last days, never
     before the cut-over date), or the NFs `stock --nfs` lists. One query.
  2. `stream_stock_state`: for the NFs and orders found, three queries:
     shipment items, separations, and the NFs' own stock state (movements, open
     inconsistencies, justification keys in one UNION ALL, split here), each
     streamed batch by batch (Arrow), so the stage can spread them over its
     groups of orders without holding them (`stages.stock_groups`).
Every read runs on the run's ADBC cursor, inside its transaction (no connection of
its own, no connectorx); keys are bound as Arrow `text[]` parameters, never pasted.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import polars as pl
import pyarrow as pa

from ..schemas import (
    STOCK_ITEM,
    STOCK_JUSTIFICATION_KEY,
    STOCK_MOVEMENT,
    STOCK_NF_LINE,
    STOCK_OPEN_INCONSISTENCY,
    STOCK_SEPARATION,
)
from ..errors import ConfigError, DatabaseError
from .features import Features
from .read import as_text, read_failure, read_frame, text_array, text_list_sql

# The stock module's tables (`schema.STOCK_TABLES`, by name: a sync does not import SQLAlchemy;
# tests/test_schemas.py checks the two agree).
STOCK_TABLE_NAMES = ("inconsistencia_faturamento", "faturamento_parcial_justificativa")

WHAT = "the stock state"

# A candidate item (§9), or an item the run's own cancellation cascade is about to free
# (`$1`, bound: the NFs this run cancels — their items lose `nota_fiscal` before the stage writes).
_CANDIDATE_ITEM = """i.status = 'ativo' AND i.separacao_lote_id IS NOT NULL
    AND (i.nota_fiscal IS NULL OR i.nota_fiscal = '' OR i.nota_fiscal = ANY($1::text[]))
    AND EXISTS (SELECT 1 FROM embarques e WHERE e.id = i.embarque_id AND e.status = 'ativo')"""

# The SEM_LOTE NFs first (the partial index), then one probe of their order's items each
# (the index on `pedido`). `OFFSET 0` keeps the EXISTS a per-NF probe: flattened into a
# join, a planner without fresh statistics has been seen to scan every SEM_LOTE line once
# per shipment item (seconds for a few thousand NFs).
_PENDING = f"""SELECT s.numero_nf FROM sem_lote s
  WHERE EXISTS (SELECT 1 FROM embarque_itens i WHERE i.pedido = s.origem AND {_CANDIDATE_ITEM} OFFSET 0)"""
_SEM_LOTE = """sem_lote AS MATERIALIZED (SELECT DISTINCT numero_nf, origem FROM faturamento_produto
  WHERE status_nf = 'SEM_LOTE' AND origem <> ''),"""

# `{window}`: the window's first day as a literal (`CatchUp.window`) beside the computed bound
# (never earlier): the planner then sees how few days it is and takes the index on
# `data_fatura`; with the computed bound alone it guessed a third of the table and scanned
# all of it (0.9 s a run at 5M lines).
# A line `f` the catch-up may take: posted, its NF without an active FATURAMENTO movement
# (also what `check` counts).
POSTED_WITHOUT_MOVEMENT = """f.status_nf IN ('Lançado', 'SEM_LOTE')
  AND NOT EXISTS (SELECT 1 FROM movimentacao_estoque m WHERE m.numero_nf = f.numero_nf
                  AND m.tipo_movimentacao = 'FATURAMENTO' AND m.ativo IS DISTINCT FROM false)"""
_CATCH_UP = f"""SELECT f.numero_nf FROM faturamento_produto f
  WHERE f.data_fatura >= {{window}} AND f.data_fatura >= (SELECT since FROM catch_up)
  AND {POSTED_WITHOUT_MOVEMENT}"""



def _module_present(features: Features) -> str:
    """Costs nothing (a one-time false filter), but names the stock module's tables, so a
    database without them fails at the stage's first read, whatever the run holds. A table the
    schema dropped on purpose (`inconsistencia_faturamento`, DESIGN §10) is not asked for."""
    tables = [t for t in STOCK_TABLE_NAMES if features.inconsistencia_faturamento or t != "inconsistencia_faturamento"]
    return " AND ".join(f"NOT EXISTS (SELECT FROM {t} WHERE false)" for t in tables)  # our own constants
_LINE_COLUMNS = as_text(STOCK_NF_LINE, "f")  # names from our own schema

# Lots of the run's orders: every lot the stage can choose is the lot of one of their items.
_LOTS = """lots AS (SELECT DISTINCT i.separacao_lote_id, i.pedido FROM embarque_itens i
  JOIN orders ON i.pedido = orders.v WHERE i.separacao_lote_id IS NOT NULL)"""

# `{carvia}` is the CarVia quote column, or NULL where the database has none (DESIGN §10).
_ITEMS = """
WITH nfs(v) AS (SELECT unnest($1::text[])), orders(v) AS (SELECT unnest($2::text[])),
ids AS (SELECT i.id FROM embarque_itens i JOIN orders ON i.pedido = orders.v
        UNION SELECT i.id FROM embarque_itens i JOIN nfs ON i.nota_fiscal = nfs.v)
SELECT i.id, i.embarque_id, i.separacao_lote_id, i.pedido, i.nota_fiscal, i.status, i.erro_validacao,
       e.status AS embarque_status, {carvia} AS carvia_cotacao_id
FROM embarque_itens i JOIN ids ON ids.id = i.id LEFT JOIN embarques e ON e.id = i.embarque_id
"""

# Only separations of (lot, order) pairs some item carries: the index on
# (separacao_lote_id, num_pedido, …) serves it, and no other separation can matter.
_SEPARATIONS = f"""
WITH orders(v) AS (SELECT unnest($1::text[])), {_LOTS}
SELECT s.id, s.separacao_lote_id, s.num_pedido, s.cod_produto, s.qtd_saldo::text AS qtd_saldo, s.sincronizado_nf, s.numero_nf, s.status
FROM separacao s JOIN lots ON s.separacao_lote_id = lots.separacao_lote_id AND s.num_pedido = lots.pedido
"""

_NF_STATE = f"""
WITH nfs(v) AS (SELECT unnest($1::text[])), orders(v) AS (SELECT unnest($2::text[])), {_LOTS}
SELECT 'movement' AS kind, m.id, m.numero_nf, m.cod_produto, m.separacao_lote_id, m.codigo_embarque,
       NULL::text AS tipo, NULL::text AS num_pedido, NULL::text AS qtd_faturada,
       NULL::text AS observacao_resolucao
FROM movimentacao_estoque m JOIN nfs ON m.numero_nf = nfs.v
WHERE m.tipo_movimentacao = 'FATURAMENTO' AND m.ativo IS DISTINCT FROM false
{{inconsistencies}}UNION ALL
SELECT 'justification', NULL, j.numero_nf, j.cod_produto, j.separacao_lote_id, NULL, NULL, j.num_pedido, NULL, NULL
FROM faturamento_parcial_justificativa j
JOIN (SELECT DISTINCT separacao_lote_id FROM lots) l ON j.separacao_lote_id = l.separacao_lote_id
JOIN nfs ON j.numero_nf = nfs.v
"""
# Only when the table exists (features.inconsistencia_faturamento): production dropped it,
# and without it the stage reads an empty frame of the same schema.
_OPEN_INCONSISTENCIES = """UNION ALL
SELECT 'inconsistency', c.id, c.numero_nf, c.cod_produto, NULL, NULL, c.tipo, c.num_pedido, c.qtd_faturada::text,
       c.observacao_resolucao
FROM inconsistencia_faturamento c JOIN nfs ON c.numero_nf = nfs.v
WHERE c.resolvida IS NOT TRUE
"""
_NF_STATE_SCHEMA = pl.Schema(
    {
        "kind": pl.String,
        "id": pl.Int64,
        "numero_nf": pl.String,
        "cod_produto": pl.String,
        "separacao_lote_id": pl.String,
        "codigo_embarque": pl.Int64,
        "tipo": pl.String,
        "num_pedido": pl.String,
        "qtd_faturada": pl.String,  # numeric, read as text (ADBC)
        "observacao_resolucao": pl.String,
    }
)


@dataclass(frozen=True)
class CatchUp:
    """The bounded stock catch-up (DESIGN §10): posted NFs without a FATURAMENTO movement whose
    `data_fatura` is at most `days` before `today` (the run's date, database clock) and on or
    after `since` — the configured cut-over date, else the one recorded in `sync_state` by the
    job's first run (`sync_state.stock_since`), else (this is the first run) `today`."""

    today: date
    days: int
    since: date | None
    job: str

    @classmethod
    def of(cls, rules, job: str, now: datetime) -> "CatchUp":
        """From the run's rules (`config.Rules`), its job and its start (`RunStart.now`)."""
        return cls(now.date(), rules.stock_catch_up_days, rules.stock_since, job)

    def window(self) -> str:
        """The window's first day, a typed literal (a `date`'s ISO text): the bound is never earlier."""
        return f"DATE '{(self.today - timedelta(days=int(self.days))).isoformat()}'"

    def sql(self) -> str:
        """The lower bound as a one-row CTE body. Only typed values are pasted (a `date`'s ISO
        text, an `int`); the job name travels as data (`text_list_sql`)."""
        window = (self.today - timedelta(days=int(self.days))).isoformat()
        configured = f"DATE '{self.since.isoformat()}'" if self.since else "NULL::date"
        recorded = f"SELECT s.stock_since FROM sync_state s WHERE s.job IN ({text_list_sql([self.job])})"
        return (f"SELECT GREATEST(DATE '{window}', COALESCE({configured}, ({recorded}), "
                f"DATE '{self.today.isoformat()}')) AS since")  # fmt: skip


def candidate_lines_sql(*, pending: bool, catch_up: CatchUp | None, features: Features = Features()) -> str:
    """The one query of round 1 (see `read_candidate_lines`); `$1` binds the cancelled NFs,
    `$2` the listed ones."""
    sources = ["SELECT unnest($2::text[])"]
    if pending:
        sources.append(_PENDING)
    if catch_up is not None:
        sources.append(_CATCH_UP.format(window=catch_up.window()))
    union = "\n  UNION\n  ".join(sources)
    bounds = f"\ncatch_up AS ({catch_up.sql()})," if catch_up is not None else ""
    return f"""
WITH {_SEM_LOTE if pending else ""}{bounds}
nfs(numero_nf) AS ({union})
SELECT {_LINE_COLUMNS} FROM faturamento_produto f JOIN nfs ON nfs.numero_nf = f.numero_nf
WHERE {_module_present(features)}
""".replace("WITH \n", "WITH ")


def catch_up_preview(url, catch_up: CatchUp) -> tuple[date, int]:
    """What the bounded catch-up would take now, without running it (for a preflight): its
    lower bound and how many posted NFs without a FATURAMENTO movement it would process. One query."""
    query = f"""WITH catch_up AS ({catch_up.sql()})
SELECT (SELECT since FROM catch_up) AS since, count(DISTINCT nfs.numero_nf) AS nfs
FROM ({_CATCH_UP.format(window=catch_up.window())}) nfs"""
    frame = read_frame(url, query, WHAT, schema=pl.Schema({"since": pl.Date, "nfs": pl.Int64}))
    since, nfs = frame.row(0)
    return since, int(nfs)


def _params(*arrays: pl.Series | list[str]) -> pa.RecordBatch:
    return pa.record_batch([text_array(a) for a in arrays], names=[f"p{i}" for i in range(1, len(arrays) + 1)])


def stream(cur, query: str, params: pa.RecordBatch, schema: pl.Schema) -> Iterator[pl.DataFrame]:
    """`query` on the run's cursor, batch by batch (Arrow, as the server sends them), each
    cast to `schema` (numerics arrive as text and are parsed at their scale)."""
    try:
        cur.execute(query, params)
        reader = cur.fetch_record_batch()
        for batch in reader:
            if batch.num_rows:
                yield pl.from_arrow(batch).select(schema.names()).cast(dict(schema), strict=True)  # type: ignore[union-attr,arg-type]
    except DatabaseError:
        raise
    except Exception as exc:
        raise read_failure(exc, WHAT) from exc


def read_all(cur, query: str, params: pa.RecordBatch, schema: pl.Schema) -> pl.DataFrame:
    frames = list(stream(cur, query, params, schema))
    return pl.concat(frames) if frames else pl.DataFrame(schema=schema)


@dataclass
class CandidateLines:
    lines: pl.DataFrame  # schemas.STOCK_NF_LINE, as the database holds them
    statements: int = 0
    seconds: float = 0.0


def read_candidate_lines(
    cur, *, pending: bool, catch_up: CatchUp | None, listed: list[str] | None = None,
    cancelled: pl.Series | list[str] | None = None, features: Features = Features(),
) -> CandidateLines:
    """Every line of the NFs that are pending (`pending`), posted without a FATURAMENTO
    movement within the `catch_up` bounds (None: no catch-up) or in `listed`; `cancelled` are
    the NFs this run cancels (their items count as freed when looking for candidate items).
    `cur`: the run's ADBC cursor."""
    started = time.perf_counter()
    query = candidate_lines_sql(pending=pending, catch_up=catch_up, features=features)
    try:
        lines = read_all(cur, query, _params(cancelled if cancelled is not None else [], list(listed or [])), STOCK_NF_LINE)
    except DatabaseError as exc:
        missing = [t for t in STOCK_TABLE_NAMES if f'"{t}" does not exist' in str(exc)]
        if not missing:
            raise
        raise ConfigError(
            f"the database has no `{missing[0]}` table (the stock module): run `faturamento-batch init-db`, "
            "or skip the stock stage with `--no-stock`"
        ) from exc
    return CandidateLines(lines, statements=1, seconds=time.perf_counter() - started)


def reversed_nfs(cur, nfs: pl.Series) -> pl.DataFrame:
    """Of `nfs` (the NFs a run cancels), those with a `revertida` line (DESIGN §10): the cascade
    leaves them alone, so the stage must not count their items and separations as freed. Only
    call it where the database has the column. One query."""
    query = """SELECT DISTINCT f.numero_nf FROM faturamento_produto f
WHERE f.numero_nf = ANY($1::text[]) AND f.revertida IS TRUE"""
    return read_all(cur, query, _params(nfs), pl.Schema({"numero_nf": pl.String}))


@dataclass
class StockState:
    items: pl.DataFrame  # schemas.STOCK_ITEM
    separations: pl.DataFrame  # schemas.STOCK_SEPARATION
    movements: pl.DataFrame  # schemas.STOCK_MOVEMENT
    open_inconsistencies: pl.DataFrame  # schemas.STOCK_OPEN_INCONSISTENCY
    justification_keys: pl.DataFrame  # schemas.STOCK_JUSTIFICATION_KEY
    statements: int = 0
    seconds: float = 0.0


# The parts of a `StockState`, in its field order, and their schemas.
STATE_PARTS = {
    "items": STOCK_ITEM,
    "separations": STOCK_SEPARATION,
    "movements": STOCK_MOVEMENT,
    "open_inconsistencies": STOCK_OPEN_INCONSISTENCY,
    "justification_keys": STOCK_JUSTIFICATION_KEY,
}
_NF_STATE_KINDS = {"movement": "movements", "inconsistency": "open_inconsistencies", "justification": "justification_keys"}


def stream_stock_state(cur, nfs: pl.Series, orders: pl.Series, *, features: Features = Features()
                       ) -> Iterator[tuple[str, pl.DataFrame]]:
    """(part, frame) pairs, batch by batch, of: items of `orders` (by `pedido`) or of `nfs` (by
    `nota_fiscal`) with their shipment's status (and CarVia quote, when `features.carvia`);
    separations of the lots those orders' items carry; active FATURAMENTO movements, open
    inconsistencies (none read without the table, `features`) and justification keys of `nfs`.
    Three statements, one after the other on `cur`; an item may come twice (by order and by NF)."""
    if nfs.len() == 0:
        return
    inconsistencies = _OPEN_INCONSISTENCIES if features.inconsistencia_faturamento else ""
    carvia = "i.carvia_cotacao_id" if features.carvia else "NULL::integer"  # a constant, never input
    for batch in stream(cur, _ITEMS.format(carvia=carvia), _params(nfs, orders), STOCK_ITEM):
        yield "items", batch
    for batch in stream(cur, _SEPARATIONS, _params(orders), STOCK_SEPARATION):
        yield "separations", batch
    query = _NF_STATE.format(inconsistencies=inconsistencies)
    for batch in stream(cur, query, _params(nfs, orders), _NF_STATE_SCHEMA):
        for kind, part in _NF_STATE_KINDS.items():
            schema = STATE_PARTS[part]
            rows = batch.filter(pl.col("kind") == kind)
            if rows.height:
                yield part, rows.select(schema.names()).cast(dict(schema))  # type: ignore[arg-type]


STATE_STATEMENTS = 3  # what `stream_stock_state` sends when it has NFs


def read_stock_state(cur, nfs: pl.Series | list[str], orders: pl.Series | list[str], *,
                     features: Features = Features()) -> StockState:
    """`stream_stock_state`, held whole (one group of orders)."""
    started = time.perf_counter()
    nfs, orders = pl.Series("v", nfs, dtype=pl.String), pl.Series("v", orders, dtype=pl.String)
    got: dict[str, list[pl.DataFrame]] = {name: [] for name in STATE_PARTS}
    for name, frame in stream_stock_state(cur, nfs, orders, features=features):
        got[name].append(frame)
    frames = {name: pl.concat(fs) if fs else pl.DataFrame(schema=STATE_PARTS[name]) for name, fs in got.items()}
    return StockState(**frames, statements=STATE_STATEMENTS if nfs.len() else 0, seconds=time.perf_counter() - started)
