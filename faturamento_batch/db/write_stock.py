"""Write a `StockPlan` (DESIGN §9) in the run's open transaction, through the run's `Writer`.

One staged temporary table (COPY) and one set-based statement per kind of write,
whatever the volume (a part with no rows sends nothing):
  movimentacao_estoque  insert (NOT EXISTS guard) · complete (UPDATE … FROM)
  embarque_itens        link (error cleared, pallet NF reference) · divergent text
  separacao             sync · status FATURADO of (lot, order)
  faturamento_produto   status
  inconsistencia_faturamento  open/update/resolve in one statement
  faturamento_parcial_justificativa  insert (NOT EXISTS guard)
  embarque_itens        re-validation of shipments waiting for an NF the run inserted
                        (`revalidate.py`, computed in SQL, last)
Each statement re-checks, in its own WHERE, the condition the plan was computed
from (the logistics application may have changed the row since the stage read
it) and counts, with RETURNING, the rows it wrote: what was planned and not
written was left alone, and the manifest says so per table.
These come last in the transaction, right before the commit, so the
application's rows stay locked for as short a time as possible.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime

import polars as pl

from ..schemas import (
    STOCK_INCONSISTENCY,
    STOCK_ITEM_FLAG,
    STOCK_ITEM_LINK,
    STOCK_JUSTIFICATION,
    STOCK_MOVEMENT_COMPLETE,
    STOCK_MOVEMENT_INSERT,
    STOCK_SEPARATION_LINK,
    STOCK_SEPARATION_STATUS,
    STOCK_STATUS_CHANGE,
)
from ..stock import ACTOR, StockPlan
from .features import Features
from .revalidate import revalidate
from .write_stream import ingest_stream, to_arrow

log = logging.getLogger(__name__)

_FATURAMENTO_ACTIVE = "m.tipo_movimentacao = 'FATURAMENTO' AND m.ativo IS DISTINCT FROM false"

_MOVEMENT_COLUMNS = STOCK_MOVEMENT_INSERT.names()
_INSERT_MOVEMENTS = f"""
WITH ins AS (
INSERT INTO movimentacao_estoque ({", ".join(_MOVEMENT_COLUMNS)},
                                  criado_em, atualizado_em, criado_por, atualizado_por, ativo)
SELECT {", ".join(f"s.{c}" for c in _MOVEMENT_COLUMNS)}, $1::timestamp, $1::timestamp, $2, $2, true
FROM _fb_stock_movement_inserts AS s
WHERE NOT EXISTS (SELECT 1 FROM movimentacao_estoque AS m
                  WHERE m.numero_nf = s.numero_nf AND m.cod_produto = s.cod_produto AND {_FATURAMENTO_ACTIVE})
RETURNING 1)
SELECT count(*) FROM ins
"""

_COMPLETE_MOVEMENTS = f"""
WITH upd AS (
UPDATE movimentacao_estoque AS m SET
  separacao_lote_id = s.separacao_lote_id, codigo_embarque = s.codigo_embarque, observacao = s.observacao,
  atualizado_em = $1::timestamp, atualizado_por = $2
FROM _fb_stock_movement_completions AS s
WHERE m.id = s.id AND m.numero_nf = s.numero_nf AND m.cod_produto = s.cod_produto AND {_FATURAMENTO_ACTIVE}
  AND (m.separacao_lote_id IS NULL OR m.separacao_lote_id = '' OR m.separacao_lote_id = s.separacao_lote_id)
RETURNING 1)
SELECT count(*) FROM upd
"""

# A linked item's erro_validacao is cleared whatever it held (it was about the missing NF, §10).
_LINK_ITEMS = """
WITH upd AS (
UPDATE embarque_itens AS i SET nota_fiscal = s.numero_nf, erro_validacao = NULL
FROM _fb_stock_item_links AS s
WHERE i.id = s.id AND (i.nota_fiscal IS NULL OR i.nota_fiscal = '') AND i.separacao_lote_id = s.separacao_lote_id
RETURNING false)
SELECT count(*), 0 FROM upd
"""

# With the pallet columns (legacy-rules §7): a linked item whose reference is empty takes the
# item's own pallet NF ('ITEM'), else its shipment's ('EMBARQUE'); a reference is never overwritten.
_LINK_ITEMS_PALLET = """
WITH t AS (
  SELECT i.id, s.numero_nf,
         CASE WHEN COALESCE(i.nf_pallet_referencia, '') <> '' THEN NULL
              ELSE COALESCE(NULLIF(i.nf_pallet_cliente, ''), NULLIF(e.nf_pallet_transportadora, '')) END AS ref,
         CASE WHEN COALESCE(i.nf_pallet_cliente, '') <> '' THEN 'ITEM' ELSE 'EMBARQUE' END AS origem
  FROM embarque_itens AS i JOIN _fb_stock_item_links AS s ON i.id = s.id
  LEFT JOIN embarques AS e ON e.id = i.embarque_id),
upd AS (
UPDATE embarque_itens AS i SET nota_fiscal = t.numero_nf, erro_validacao = NULL,
  nf_pallet_referencia = COALESCE(t.ref, i.nf_pallet_referencia),
  nf_pallet_origem = CASE WHEN t.ref IS NULL THEN i.nf_pallet_origem ELSE t.origem END
FROM t JOIN _fb_stock_item_links AS s ON s.id = t.id
WHERE i.id = t.id AND (i.nota_fiscal IS NULL OR i.nota_fiscal = '') AND i.separacao_lote_id = s.separacao_lote_id
RETURNING (t.ref IS NOT NULL) AS pallet)
SELECT count(*), count(*) FILTER (WHERE pallet) FROM upd
"""

# The divergent text, only on an item still naming the NF with an empty error.
_FLAG_ITEMS = """
WITH upd AS (
UPDATE embarque_itens AS i SET erro_validacao = s.erro_validacao
FROM _fb_stock_item_flags AS s
WHERE i.id = s.id AND i.nota_fiscal = s.numero_nf AND COALESCE(i.erro_validacao, '') = '' AND i.status = 'ativo'
RETURNING 1)
SELECT count(*) FROM upd
"""

_SEPARATION_STATUS = """
WITH upd AS (
UPDATE separacao AS t SET status = 'FATURADO'
FROM _fb_stock_separation_statuses AS s
WHERE t.id = s.id AND t.separacao_lote_id = s.separacao_lote_id AND t.num_pedido = s.num_pedido
  AND t.status IS DISTINCT FROM 'FATURADO'
RETURNING 1)
SELECT count(*) FROM upd
"""

_SYNC_SEPARATIONS = """
WITH upd AS (
UPDATE separacao AS t SET
  numero_nf = s.numero_nf, sincronizado_nf = true, data_sincronizacao = $1::timestamp, status = 'FATURADO'
FROM _fb_stock_separation_links AS s
WHERE t.id = s.id AND t.sincronizado_nf = false AND t.separacao_lote_id = s.separacao_lote_id
RETURNING 1)
SELECT count(*) FROM upd
"""

# Planned per NF, written per line: count both.
_SET_STATUS = """
WITH upd AS (
UPDATE faturamento_produto AS f SET status_nf = s.status_nf, updated_at = $1::timestamp, updated_by = $2
FROM _fb_stock_status_changes AS s
WHERE f.numero_nf = s.numero_nf AND f.status_nf = s.status_from
RETURNING f.numero_nf)
SELECT count(DISTINCT numero_nf), count(*) FROM upd
"""

# One statement for the table: resolve (still open), update the open one (still open,
# and only when something differs — a second run rewrites nothing), insert a new open
# one (none open for the NF and tipo). The sub-statements see one snapshot and touch
# disjoint rows (an NF either got a lot — resolve — or did not — open). `s` is NOT MATERIALIZED:
# inlined, the planner sees the analyzed staged table's statistics (as a CTE scan it guessed one
# row and re-scanned the growing inconsistency table once per staged row: quadratic).
_OPEN_VALUES = ("num_pedido", "cod_produto", "qtd_faturada", "observacao_resolucao")
_INCONSISTENCIES = f"""
WITH s AS NOT MATERIALIZED (SELECT * FROM _fb_stock_inconsistencies),
resolved AS (
  UPDATE inconsistencia_faturamento AS c SET
    resolvida = true, resolvida_em = $1::timestamp, resolvida_por = $2, acao_tomada = 'LOTE_VINCULADO'
  FROM s WHERE s.action = 'resolve' AND c.id = s.id AND c.numero_nf = s.numero_nf AND c.resolvida IS NOT TRUE
  RETURNING 1),
updated AS (
  UPDATE inconsistencia_faturamento AS c SET {", ".join(f"{v} = s.{v}" for v in _OPEN_VALUES)}
  FROM s WHERE s.action = 'open' AND c.id = s.id AND c.numero_nf = s.numero_nf AND c.tipo = s.tipo
    AND c.resolvida IS NOT TRUE
    AND ({", ".join(f"c.{v}" for v in _OPEN_VALUES)}) IS DISTINCT FROM ({", ".join(f"s.{v}" for v in _OPEN_VALUES)})
  RETURNING 1),
unchanged AS (
  SELECT 1 FROM s JOIN inconsistencia_faturamento AS c ON c.id = s.id AND c.numero_nf = s.numero_nf AND c.tipo = s.tipo
  WHERE s.action = 'open' AND c.resolvida IS NOT TRUE
    AND ({", ".join(f"c.{v}" for v in _OPEN_VALUES)}) IS NOT DISTINCT FROM ({", ".join(f"s.{v}" for v in _OPEN_VALUES)})),
inserted AS (
  INSERT INTO inconsistencia_faturamento (tipo, numero_nf, {", ".join(_OPEN_VALUES)}, resolvida, detectada_em)
  SELECT s.tipo, s.numero_nf, {", ".join(f"s.{v}" for v in _OPEN_VALUES)}, false, $1::timestamp
  FROM s WHERE s.action = 'open' AND s.id IS NULL
    AND NOT EXISTS (SELECT 1 FROM inconsistencia_faturamento AS c
                    WHERE c.numero_nf = s.numero_nf AND c.tipo = s.tipo AND c.resolvida IS NOT TRUE)
  RETURNING 1)
SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM updated), (SELECT count(*) FROM unchanged),
       (SELECT count(*) FROM resolved)
"""

_JUSTIFICATION_COLUMNS = STOCK_JUSTIFICATION.names()
_INSERT_JUSTIFICATIONS = f"""
WITH ins AS (
INSERT INTO faturamento_parcial_justificativa ({", ".join(_JUSTIFICATION_COLUMNS)}, criado_em, criado_por)
SELECT {", ".join(f"s.{c}" for c in _JUSTIFICATION_COLUMNS)}, $1::timestamp, $2
FROM _fb_stock_justifications AS s
WHERE NOT EXISTS (SELECT 1 FROM faturamento_parcial_justificativa AS j
                  WHERE j.separacao_lote_id = s.separacao_lote_id AND j.num_pedido = s.num_pedido
                    AND j.cod_produto = s.cod_produto AND j.numero_nf = s.numero_nf)
RETURNING 1)
SELECT count(*) FROM ins
"""


@dataclass
class StockWriteSummary:
    """Rows written per `table.action`, and per table the planned rows left alone."""

    written: dict[str, int] = field(default_factory=dict)
    left_alone: dict[str, int] = field(default_factory=dict)

    def add(self, table: str, action: str, planned: int, written: int, unchanged: int = 0) -> None:
        self.written[f"{table}.{action}"] = written
        self.left_alone[table] = self.left_alone.get(table, 0) + planned - written - unchanged


def _stage(writer, name: str, frame: pl.DataFrame | pl.LazyFrame, schema: pl.Schema) -> None:
    shaped = frame.select(schema.names()).cast(dict(schema))  # type: ignore[arg-type]
    if isinstance(shaped, pl.DataFrame):
        writer.ingest(name, shaped, temporary=True)
        return
    # A spilled part: one COPY of its batches as they are read back (never whole in memory).
    arrow = to_arrow(pl.DataFrame(schema=schema)).schema
    batches = (b for part in shaped.collect_batches() for b in to_arrow(part).cast(arrow).to_batches())
    ingest_stream(writer, name, arrow, batches, temporary=True)


# Each kind of write: its staged temporary table and the frame schema it is staged in.
_STAGED = (
    ("movement_inserts", "_fb_stock_movement_inserts", STOCK_MOVEMENT_INSERT),
    ("movement_completions", "_fb_stock_movement_completions", STOCK_MOVEMENT_COMPLETE),
    ("item_links", "_fb_stock_item_links", STOCK_ITEM_LINK),
    ("item_flags", "_fb_stock_item_flags", STOCK_ITEM_FLAG),
    ("separation_links", "_fb_stock_separation_links", STOCK_SEPARATION_LINK),
    ("separation_statuses", "_fb_stock_separation_statuses", STOCK_SEPARATION_STATUS),
    ("status_changes", "_fb_stock_status_changes", STOCK_STATUS_CHANGE),
    ("inconsistencies", "_fb_stock_inconsistencies", STOCK_INCONSISTENCY),
    ("justifications", "_fb_stock_justifications", STOCK_JUSTIFICATION),
)


def analyze_sql(tables: list[str]) -> str:
    """One ANALYZE of every staged table (names from `_STAGED`, our constants).

    Temporary tables are never analyzed by autovacuum: without statistics the planner
    guessed one row for a filtered staged table and chose a nested loop whose inner
    side re-scanned the table the same statement was inserting into — quadratic
    (the inconsistencies at 100k lines: 6.3 s of 10.9, 3.8M buffer hits)."""
    return "ANALYZE " + ", ".join(tables)


def write_stock(
    writer, plan: StockPlan, now: datetime, *, features: Features | None = None, new_nfs: pl.Series | list[str] | tuple = (),
    left_out: list[str] | tuple = (),
) -> StockWriteSummary:
    """Send every part of `plan` through `writer` (a `db.write.Writer`, transaction open, not
    committed), then re-validate the shipments waiting for one of `new_nfs` (the NFs the run
    inserted). `features`: the database's optional parts (default: what `writer` read).

    Every part is staged first, then one ANALYZE of the staged tables, then one
    statement per kind of write."""
    features = features if features is not None else writer.features
    if not features.inconsistencia_faturamento:  # dropped in production (DESIGN §10): nothing to write
        plan = replace(plan, inconsistencies=plan.inconsistencies.clear())
    out = StockWriteSummary()
    counts = plan.counts()
    log.info("write: stock stage (%s)", ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "nothing to write")
    staged = [table for name, table, schema in _STAGED if counts[name]]
    for name, table, schema in _STAGED:
        if counts[name]:
            _stage(writer, table, getattr(plan, name), schema)
    if staged:
        writer.execute(analyze_sql(staged))
    if counts["movement_inserts"]:
        writer.execute(_INSERT_MOVEMENTS, (now, ACTOR))
        out.add("movimentacao_estoque", "insert", counts["movement_inserts"], writer.rowcount())
    if plan.movement_completions.height:
        writer.execute(_COMPLETE_MOVEMENTS, (now, ACTOR))
        out.add("movimentacao_estoque", "complete", plan.movement_completions.height, writer.rowcount())
    if plan.item_links.height:
        writer.execute(_LINK_ITEMS_PALLET if features.nf_pallet else _LINK_ITEMS)
        linked, pallet = (int(v) for v in writer.cur.fetchone())
        out.add("embarque_itens", "link", plan.item_links.height, linked)
        if features.nf_pallet:
            out.written["embarque_itens.pallet_reference"] = pallet
    if plan.item_flags.height:
        writer.execute(_FLAG_ITEMS)
        out.add("embarque_itens", "divergent", plan.item_flags.height, writer.rowcount())
    if plan.separation_links.height:
        writer.execute(_SYNC_SEPARATIONS, (now,))
        out.add("separacao", "sync", plan.separation_links.height, writer.rowcount())
    if plan.separation_statuses.height:
        writer.execute(_SEPARATION_STATUS)
        out.add("separacao", "faturado", plan.separation_statuses.height, writer.rowcount())
    if plan.status_changes.height:
        writer.execute(_SET_STATUS, (now, ACTOR))
        nfs, lines = writer.cur.fetchone()
        out.add("faturamento_produto", "status_nfs", plan.status_changes.height, int(nfs))
        out.written["faturamento_produto.status_lines"] = int(lines)
    if plan.inconsistencies.height:
        writer.execute(_INCONSISTENCIES, (now, ACTOR))
        inserted, updated, unchanged, resolved = (int(v) for v in writer.cur.fetchone())
        action = plan.inconsistencies.get_column("action")
        planned_open = int((action == "open").sum())
        out.add("inconsistencia_faturamento", "open", planned_open, inserted + updated, unchanged)
        out.written["inconsistencia_faturamento.open"] = inserted
        out.written["inconsistencia_faturamento.update"] = updated
        out.add("inconsistencia_faturamento", "resolve", plan.inconsistencies.height - planned_open, resolved)
    if plan.justifications.height:
        writer.execute(_INSERT_JUSTIFICATIONS, (now, ACTOR))
        out.add("faturamento_parcial_justificativa", "insert", plan.justifications.height, writer.rowcount())
    if len(new_nfs):
        # After the consolidation rows exist (the import's writes) and the stage's own links.
        nfs = new_nfs if isinstance(new_nfs, pl.Series) else list(new_nfs)
        for outcome, n in revalidate(writer, nfs, carvia=features.carvia, left_out=left_out).items():
            out.written[f"embarque_itens.revalidate_{outcome}"] = n
    return out
