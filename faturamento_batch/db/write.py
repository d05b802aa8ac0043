"""Write a ChangeSet to PostgreSQL: one ADBC connection, one transaction.

Statements, whatever the volume (a part with no rows sends nothing):
  1. COPY the new lines into faturamento_produto (adbc_ingest)
  2. stage new products (temporary table) · 3. INSERT … ON CONFLICT DO NOTHING
  4. stage status/drift changes · 5. UPDATE faturamento_produto … FROM the stage
  6. cancellation cascade: one statement, one set-based UPDATE per table
     (movimentacao_estoque, embarque_itens, separacao, and where the database has
     them inconsistencia_faturamento, entregas_monitoradas) for all NFs of the run
     but those a credit note reversed (`revertida`, DESIGN §10: spared, reported)
  6b. order balance (`carteira_principal`, when present): one UPDATE for every (order,
     product) of the NFs inserted, changed or cancelled
  7. stage consolidation · 8. INSERT … ON CONFLICT (numero_nf) DO UPDATE
     (this is also the cascade's and the reactivation's statement for
     relatorio_faturamento_importado: ativo, inativado_em, inativado_por)
  then the stock stage's writes (`db.write_stock`), last, right before
  9. the run record and the cursor, in one statement
Values travel as Arrow data or bound parameters, never pasted into SQL.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl
import pyarrow as pa

from ..diff import ChangeSet
from ..errors import DatabaseError, PermissionDenied, database_error
from ..schemas import CONSOLIDATION, DRIFT_COLUMNS, KEY, LINE_VALUES, NEW_PRODUCT
from ..settings import redact
from .features import FEATURES_SQL, Features
from .privileges import permission_message
from .read import text_array
from .write_stream import INGEST_SLICE, arrow_schema, ingest_stream, to_arrow

log = logging.getLogger(__name__)

ACTOR = "faturamento_batch"
ERRO_NF_CANCELADA = "NF cancelada no Odoo"

# Data-modifying statements are wrapped in `WITH … RETURNING 1 SELECT count(*)`:
# the driver's rowcount is not reliable, and this keeps each one statement.
_INSERT_PRODUCTS = """
WITH ins AS (
INSERT INTO cadastro_palletizacao (cod_produto, nome_produto, palletizacao, peso_bruto, ativo, created_at, updated_at)
SELECT cod_produto, nome_produto, palletizacao, peso_bruto, true, $1::timestamp, $1::timestamp
FROM _fb_new_products
ON CONFLICT (cod_produto) DO NOTHING
RETURNING 1)
SELECT count(*) FROM ins
"""

_SET_DRIFT = ",\n  ".join(f"{c} = CASE WHEN c.set_values THEN c.{c} ELSE f.{c} END" for c in DRIFT_COLUMNS)
_UPDATE_LINES = f"""
WITH upd AS (
UPDATE faturamento_produto AS f SET
  status_nf = CASE WHEN c.set_status THEN c.status_nf ELSE f.status_nf END,
  {_SET_DRIFT},
  updated_at = $1::timestamp,
  updated_by = $2
FROM _fb_changes AS c
WHERE f.numero_nf = c.numero_nf AND f.cod_produto = c.cod_produto
RETURNING 1)
SELECT count(*) FROM upd
"""

# The cancellation cascade (DESIGN §5): one statement, one UPDATE per table, rows counted
# per NF. With the stock module (`inconsistencia_faturamento`), the NF's open
# inconsistencies are resolved in the same statement.
_CASCADE_PARTS = {
    "movimentacao_estoque": """
  UPDATE movimentacao_estoque AS t
  SET status_nf = 'CANCELADO', ativo = false, atualizado_em = $2::timestamp, atualizado_por = $3
  FROM nfs WHERE t.numero_nf = nfs.numero_nf AND t.ativo IS DISTINCT FROM false
  RETURNING nfs.numero_nf""",
    "embarque_itens": """
  UPDATE embarque_itens AS t SET nota_fiscal = NULL, erro_validacao = $4
  FROM nfs WHERE t.nota_fiscal = nfs.numero_nf
  RETURNING nfs.numero_nf""",
    "separacao": """
  UPDATE separacao AS t SET numero_nf = NULL, sincronizado_nf = false
  FROM nfs WHERE t.numero_nf = nfs.numero_nf
  RETURNING nfs.numero_nf""",
    "inconsistencia_faturamento": """
  UPDATE inconsistencia_faturamento AS t
  SET resolvida = true, resolvida_em = $2::timestamp, resolvida_por = $3, acao_tomada = 'NF_CANCELADA'
  FROM nfs WHERE t.numero_nf = nfs.numero_nf AND t.resolvida IS NOT TRUE
  RETURNING nfs.numero_nf""",
}


# Where the database has `entregas_monitoradas` (§10): the NF's delivery is cancelled; only the
# NACOM rows when the table tells origins apart. Rows already so are left (a re-run writes nothing).
_ENTREGAS = """
  UPDATE entregas_monitoradas AS t SET
    status_finalizacao = 'Cancelada', entregue = false, data_hora_entrega_realizada = NULL, data_embarque = NULL,
    data_entrega_prevista = NULL, nova_nf = NULL, finalizado_em = $2::timestamp, finalizado_por = $3
  FROM nfs WHERE t.numero_nf = nfs.numero_nf{origem}
    AND (t.status_finalizacao, t.entregue, t.data_hora_entrega_realizada, t.data_embarque, t.data_entrega_prevista,
         t.nova_nf) IS DISTINCT FROM ('Cancelada', false, NULL::timestamp, NULL::date, NULL::date, NULL::text)
  RETURNING nfs.numero_nf"""
# The reversed NFs (a line with `revertida`): their lines become Cancelado (the import's update),
# nothing else of the cascade touches them; reported under this name.
SPARED = "faturamento_produto.revertida_spared"


def cascade_sql(with_inconsistencies: bool, features: Features | None = None) -> str:
    """The cascade statement; `$1` the NFs, `$2` now, `$3` the actor, `$4` the items' erro_validacao.
    `features` (None: the schema `init-db` creates, none of §10's optional parts) switches on
    the `revertida` exemption and the `entregas_monitoradas` part."""
    f = features or Features(**dict.fromkeys(Features().as_dict(), False))
    parts = {t: sql for t, sql in _CASCADE_PARTS.items() if with_inconsistencies or t != "inconsistencia_faturamento"}
    if f.entregas_monitoradas:
        parts["entregas_monitoradas"] = _ENTREGAS.format(origem=" AND t.origem = 'NACOM'" if f.entregas_origem else "")
    tables = list(parts)
    ctes = ",\n".join(f"c{i} AS ({parts[t]})" for i, t in enumerate(tables))
    counts = "\nUNION ALL ".join(
        f"SELECT '{t}' AS tabela, numero_nf, count(*) AS linhas FROM c{i} GROUP BY numero_nf" for i, t in enumerate(tables)
    )  # table names from our own constants
    if not f.revertida:
        return f"WITH nfs AS (SELECT DISTINCT unnest($1::text[]) AS numero_nf),\n{ctes}\n{counts}"
    head = """WITH asked AS (SELECT DISTINCT unnest($1::text[]) AS numero_nf),
spared AS (SELECT a.numero_nf FROM asked AS a WHERE EXISTS (
  SELECT 1 FROM faturamento_produto AS f WHERE f.numero_nf = a.numero_nf AND f.revertida IS TRUE)),
nfs AS (SELECT numero_nf FROM asked EXCEPT SELECT numero_nf FROM spared)"""
    spared = f"\nUNION ALL SELECT '{SPARED}', numero_nf, 1 FROM spared"
    return f"{head},\n{ctes}\n{counts}{spared}"


# The order balance (§10, legacy-rules §5): for every (order, product) of the lines of `$1`'s NFs,
# ordered − Σ invoiced over that pair's lines not Cancelado (none left: the whole ordered
# quantity back). Only rows whose balance changes are written.
_BALANCE = """
WITH nfs AS (SELECT DISTINCT unnest($1::text[]) AS numero_nf),
pairs AS (SELECT DISTINCT f.origem, f.cod_produto FROM faturamento_produto AS f JOIN nfs ON nfs.numero_nf = f.numero_nf
          WHERE COALESCE(f.origem, '') <> '' AND COALESCE(f.cod_produto, '') <> ''),
x AS (SELECT a.origem, a.cod_produto,
             COALESCE(SUM(f.qtd_produto_faturado) FILTER (WHERE f.status_nf <> 'Cancelado'), 0) AS faturado
      FROM pairs AS a LEFT JOIN faturamento_produto AS f ON f.origem = a.origem AND f.cod_produto = a.cod_produto
      GROUP BY a.origem, a.cod_produto),
upd AS (
  UPDATE carteira_principal AS c SET
    qtd_saldo_produto_pedido = c.qtd_produto_pedido - x.faturado, updated_at = $2::timestamp, updated_by = $3
  FROM x WHERE c.num_pedido = x.origem AND c.cod_produto = x.cod_produto
    AND c.qtd_saldo_produto_pedido IS DISTINCT FROM c.qtd_produto_pedido - x.faturado
  RETURNING 1)
SELECT count(*) FROM upd
"""


def _bound(nfs: pl.Series | list[str], *values) -> pa.RecordBatch:
    """`$1` the NFs as ONE Arrow `text[]` value (a first run's every NF: never a Python list), then `values`."""
    columns = [text_array(nfs), *(pa.array([v]) for v in values)]
    return pa.record_batch(columns, names=[f"p{i}" for i in range(1, len(columns) + 1)])


def cancel_and_rebalance(writer: "Writer", summary: "WriteSummary", cancelled: pl.Series | list[str],
                         balance: pl.Series | list[str], now: datetime, *, stock: bool) -> None:
    """The cascade for `cancelled`, then the order balance of `balance` (+ `cancelled`), through
    `writer` with its features; counts into `summary.rows` (`table.cancel`, `carteira_principal.balance`)."""
    features = writer.features
    cancelled, balance = pl.Series("numero_nf", cancelled, dtype=pl.String), pl.Series("numero_nf", balance, dtype=pl.String)
    if cancelled.len():
        log.info("write: cancellation cascade for %d NFs", cancelled.len())
        writer.execute(cascade_sql(stock and features.inconsistencia_faturamento, features),
                       _bound(cancelled, now, ACTOR, ERRO_NF_CANCELADA))
        cascade = pl.from_arrow(writer.cur.fetch_arrow_table()).cast({"linhas": pl.Int64})  # type: ignore[union-attr]
        summary.cascade = cascade
        per_table = cascade.group_by("tabela").agg(pl.col("linhas").sum())
        keys = pl.when(pl.col("tabela").str.contains(".", literal=True)).then(pl.col("tabela")).otherwise(
            pl.col("tabela") + ".cancel"
        )  # `table.cancel`, or the spared reversed NFs' own key
        summary.rows.update(zip(per_table.select(keys).to_series().to_list(), per_table["linhas"].to_list()))
    nfs = pl.concat([balance, cancelled]).unique()  # the statement takes them DISTINCT: no order needed
    if nfs.len() and features.carteira_principal:
        writer.execute(_BALANCE, _bound(nfs, now, ACTOR))
        summary.rows["carteira_principal.balance"] = writer.rowcount()


_CONS_COLUMNS = CONSOLIDATION.names()
_UPSERT_CONSOLIDATION = f"""
WITH ups AS (
INSERT INTO relatorio_faturamento_importado AS r ({", ".join(_CONS_COLUMNS)}, inativado_em, inativado_por, criado_em)
SELECT {", ".join(f"c.{x}" for x in _CONS_COLUMNS)},
       CASE WHEN c.ativo THEN NULL ELSE $1::timestamp END,
       CASE WHEN c.ativo THEN NULL ELSE $2 END,
       $1::timestamp
FROM _fb_consolidation AS c
ON CONFLICT (numero_nf) DO UPDATE SET
  {", ".join(f"{x} = EXCLUDED.{x}" for x in _CONS_COLUMNS if x not in ("numero_nf", "ativo"))},
  ativo = EXCLUDED.ativo,
  inativado_em = CASE WHEN EXCLUDED.ativo THEN NULL WHEN r.ativo THEN EXCLUDED.inativado_em ELSE r.inativado_em END,
  inativado_por = CASE WHEN EXCLUDED.ativo THEN NULL WHEN r.ativo THEN EXCLUDED.inativado_por ELSE r.inativado_por END
RETURNING 1)
SELECT count(*) FROM ups
"""

_FINISH = """
WITH run AS (
  INSERT INTO sync_runs (run_id, job, mode, status, started_at, finished_at, cursor_from, cursor_to,
                         counts, timings, artifacts_dir)
  VALUES ($1, $2, $3, 'success', $4::timestamp, clock_timestamp()::timestamp, $5::timestamp, $6::timestamp,
          $7::jsonb, $8::jsonb, $9)
  RETURNING run_id)
INSERT INTO sync_state AS s (job, cursor, last_run_id, updated_at, stock_since)
SELECT $2, $6::timestamp, run_id, $4::timestamp, $4::timestamp::date FROM run
ON CONFLICT (job) DO UPDATE SET
  cursor = GREATEST(s.cursor, EXCLUDED.cursor),
  last_run_id = EXCLUDED.last_run_id,
  updated_at = EXCLUDED.updated_at,
  stock_since = COALESCE(s.stock_since, EXCLUDED.stock_since)  -- the first run's day, kept
"""


@dataclass
class RunRecord:
    run_id: str
    job: str
    mode: str
    started_at: datetime
    cursor_from: datetime | None
    cursor_to: datetime | None
    counts: dict
    timings: dict
    artifacts_dir: str


@dataclass
class WriteSummary:
    rows: dict[str, int] = field(default_factory=dict)  # rows each statement affected
    cascade: pl.DataFrame | None = None  # tabela, numero_nf, linhas



class Writer:
    """One ADBC connection held for a whole run: the lock, then one write transaction."""

    def __init__(self, conn):
        self.conn = conn
        self.cur = conn.cursor()
        self.statements = 0
        self.role = ""  # for messages about missing grants; set by the caller that knows it
        self._features: Features | None = None
        # True while the transaction is driven by explicit BEGIN/COMMIT (the quarantine's path):
        # the ADBC driver refuses every statement after an error until a full rollback, so
        # ROLLBACK TO SAVEPOINT only works with the driver in autocommit and our own BEGIN.
        self.manual = False

    @property
    def features(self) -> Features:
        """The database's optional parts (DESIGN §10), read once per run on this connection
        unless the run's start already set them."""
        if self._features is None:
            self.execute("SELECT " + FEATURES_SQL)
            self._features = Features.from_json(self.cur.fetchone()[0])
        return self._features

    @features.setter
    def features(self, value: Features) -> None:
        self._features = value

    def _error(self, prefix: str, exc: Exception) -> DatabaseError:
        text = redact(str(exc)).strip()
        denied = permission_message(text, self.role)
        return PermissionDenied(denied) if denied else database_error(f"{prefix}: {text[:800]}", exc)

    # -- low level: every statement goes through here, so the count is honest ----
    def execute(self, sql: str, params: tuple = ()) -> None:
        self.statements += 1
        try:
            self.cur.execute(sql, params)
        except Exception as exc:
            raise self._error("PostgreSQL refused a write", exc) from exc

    def ingest(self, table: str, frame: pl.DataFrame, *, temporary: bool) -> int:
        """ONE COPY of `frame` into `table`, as a stream of slices: its Arrow copy is never whole."""
        schema = arrow_schema(frame)
        batches = (b for part in frame.iter_slices(INGEST_SLICE) for b in to_arrow(part).cast(schema).to_batches())
        return ingest_stream(self, table, schema, batches, temporary=temporary)

    def rowcount(self) -> int:
        """The count a `WITH … SELECT count(*)` statement returned."""
        return int(self.cur.fetchone()[0])

    def commit(self) -> None:
        log.info("write: commit")
        self.statements += 1
        try:
            if self.manual:
                self.cur.execute("COMMIT")
                self._end_manual()
            else:
                self.conn.commit()
        except Exception as exc:
            raise database_error(f"PostgreSQL refused to commit: {redact(str(exc)).strip()[:800]}", exc) from exc

    def close(self) -> None:
        try:
            self.cur.close()
            self.conn.close()
        except Exception:
            log.debug("closing a broken connection", exc_info=True)

    def rollback(self) -> None:
        try:
            if self.manual:
                self.cur.execute("ROLLBACK")
                self._end_manual()
            else:
                self.conn.rollback()
        except Exception:  # the connection may be gone; the server rolls back anyway
            log.debug("rollback on a broken connection", exc_info=True)

    # -- savepoints (the quarantine's bisection, DESIGN §12) ---------------------------
    def begin_savepoints(self) -> None:
        """Start a transaction in which `savepoint`/`rollback_to` work: the driver in autocommit,
        the transaction ours (BEGIN … COMMIT/ROLLBACK). Call with no transaction open."""
        self._set_autocommit(True)
        self.manual = True
        self.execute("BEGIN")

    def savepoint(self, name: str = "fb_quarantine") -> None:
        self.execute(f"SAVEPOINT {_savepoint_name(name)}")

    def rollback_to(self, name: str = "fb_quarantine") -> None:
        """Undo everything since `savepoint(name)`, which stays set (so a probe can reuse it)."""
        self.execute(f"ROLLBACK TO SAVEPOINT {_savepoint_name(name)}")

    def release(self, name: str = "fb_quarantine") -> None:
        self.execute(f"RELEASE SAVEPOINT {_savepoint_name(name)}")

    def _end_manual(self) -> None:
        self.manual = False
        self._set_autocommit(False)

    def _set_autocommit(self, on: bool) -> None:
        self.conn.adbc_connection.set_options(**{"adbc.connection.autocommit": "true" if on else "false"})

    # -- the run's writes ----------------------------------------------------------
    def write(self, cs: ChangeSet, now: datetime, *, stock: bool = True) -> WriteSummary:
        """Send every part of `cs` inside the open transaction (not committed here).

        `stock`: the database has the stock module's tables (the cascade also
        resolves the cancelled NFs' open inconsistencies)."""
        summary = WriteSummary()
        if cs.inserts.height:
            log.info("write: COPY %d new lines into faturamento_produto", cs.inserts.height)
            rows = cs.inserts.select(LINE_VALUES.names()).with_columns(
                pl.lit(now).alias("created_at"),
                pl.lit(now).alias("updated_at"),
                pl.lit(ACTOR).alias("created_by"),
                pl.lit(ACTOR).alias("updated_by"),
            )
            summary.rows["faturamento_produto.insert"] = self.ingest("faturamento_produto", rows, temporary=False)
        if cs.new_products.height:
            log.info("write: %d new products", cs.new_products.height)
            self.ingest("_fb_new_products", cs.new_products.select(NEW_PRODUCT.names()), temporary=True)
            self.execute(_INSERT_PRODUCTS, (now,))
            summary.rows["cadastro_palletizacao.insert"] = self.rowcount()
        changes = _changes(cs)
        if changes.height:
            log.info("write: status/values of %d existing lines", changes.height)
            self.ingest("_fb_changes", changes, temporary=True)
            self.execute(_UPDATE_LINES, (now, ACTOR))
            summary.rows["faturamento_produto.update"] = self.rowcount()
        balance = pl.concat([cs.inserts.select("numero_nf"), cs.status_changes.select("numero_nf")])
        cancel_and_rebalance(self, summary, cs.cancellations.get_column("numero_nf").to_list(),
                             balance.get_column("numero_nf").unique().to_list(), now, stock=stock)  # fmt: skip
        if cs.consolidation.height:
            log.info("write: consolidation of %d NFs", cs.consolidation.height)
            self.ingest("_fb_consolidation", cs.consolidation.select(_CONS_COLUMNS), temporary=True)
            self.execute(_UPSERT_CONSOLIDATION, (now, ACTOR))
            summary.rows["relatorio_faturamento_importado.upsert"] = self.rowcount()
        return summary

    def finish(self, record: RunRecord) -> None:
        """The run record and the new cursor, in the same transaction as the data."""
        self.execute(
            _FINISH,
            (
                record.run_id,
                record.job,
                record.mode,
                record.started_at,
                record.cursor_from,
                record.cursor_to,
                json.dumps(record.counts),
                json.dumps(record.timings),
                record.artifacts_dir,
            ),
        )


def _savepoint_name(name: str) -> str:
    """Savepoint names are identifiers pasted into SQL: only our own plain ones pass."""
    if not name.isidentifier() or not name.isascii():
        raise ValueError(f"not a savepoint name: {name!r}")
    return name


def _changes(cs: ChangeSet) -> pl.DataFrame:
    """Status changes and (with --apply-drift) drift, as one staged frame keyed by line."""
    status = cs.status_changes.select(*KEY, "status_nf")
    drift = cs.drift.select(*KEY, *DRIFT_COLUMNS) if cs.apply_drift else cs.drift.select(*KEY, *DRIFT_COLUMNS).clear()
    merged = status.join(drift, on=KEY, how="full", coalesce=True)
    return merged.select(
        *KEY,
        pl.col("status_nf").is_not_null().alias("set_status"),
        "status_nf",
        pl.col("data_fatura").is_not_null().alias("set_values"),
        *DRIFT_COLUMNS,
    )
