"""Re-validation of the shipments waiting for an NF the run inserted (DESIGN §10; the old
job's "SYNC 2", legacy-rules.md §1a), in SQL: one statement in the run's transaction, after
the consolidation rows (`relatorio_faturamento_importado`) exist.

Shipments with an active item whose `erro_validacao` contains `NF_PENDENTE_FATURAMENTO` and
whose `nota_fiscal` is one of the run's new NFs get every active item re-checked, first
matching branch wins:
  CarVia item (quote set and ≠ 0, or lot `CARVIA-…`)   left alone (§10 correction)
  nota_fiscal blank                                    'NF_NAO_PREENCHIDA'
  no consolidation row, an inactive one, or one with
  no CNPJ                                              'NF_PENDENTE_FATURAMENTO' (§10 correction)
  item without CNPJ                                    'CLIENTE_NAO_DEFINIDO: …', NF kept
  CNPJs differ (digits only, left-padded to 14)        'NF_DIVERGENTE: NF … pertence ao CNPJ …', NF cleared
  otherwise                                            peso/valor from the NF, error cleared
An item is written only when one of its values changes, so a re-run writes nothing; the
statement computes from the rows as they stand when it runs, so it needs no other re-check.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa

from .read import text_array


def norm_cnpj(column: str) -> str:
    """SQL for legacy-rules §1a's norm(): digits only; 1–13 digits left-padded with 0 to 14,
    more kept as they are, none → ''. `column` is one of this module's constants."""
    d = f"regexp_replace(COALESCE({column}, ''), '[^0-9]', '', 'g')"
    return f"(CASE WHEN {d} = '' THEN '' WHEN length({d}) < 14 THEN lpad({d}, 14, '0') ELSE {d} END)"


NF_NAO_PREENCHIDA = "NF_NAO_PREENCHIDA"
NF_PENDENTE = "NF_PENDENTE_FATURAMENTO"
CLIENTE_NAO_DEFINIDO = "CLIENTE_NAO_DEFINIDO: Defina o cliente antes de preencher a NF"

_SQL = """
WITH s AS (SELECT DISTINCT i.embarque_id FROM embarque_itens AS i
           WHERE i.status = 'ativo' AND i.erro_validacao LIKE '%%NF_PENDENTE_FATURAMENTO%%'
             AND i.nota_fiscal = ANY($1::text[])),
v AS (
  SELECT i.id, i.nota_fiscal, i.cnpj_cliente, r.cnpj_cliente AS rfi_cnpj, r.peso_bruto, r.valor_total,
    CASE WHEN btrim(COALESCE(i.nota_fiscal, ''), E' \\t\\n\\r\\f\\v') = '' THEN 'nf_nao_preenchida'
         WHEN r.numero_nf IS NULL OR r.ativo IS NOT TRUE OR {rfi_norm} = '' THEN 'pending'
         WHEN COALESCE(i.cnpj_cliente, '') = '' THEN 'cliente_nao_definido'
         WHEN {item_norm} <> {rfi_norm} THEN 'divergent'
         ELSE 'validated' END AS outcome
  FROM embarque_itens AS i JOIN s ON s.embarque_id = i.embarque_id
  LEFT JOIN relatorio_faturamento_importado AS r ON r.numero_nf = i.nota_fiscal
  WHERE i.status = 'ativo' AND NOT ({carvia})
    AND NOT (COALESCE(i.nota_fiscal, '') = ANY($5::text[]))),  -- NFs the quarantine leaves out (§12)
w AS (
  SELECT v.id, v.outcome,
    CASE v.outcome WHEN 'nf_nao_preenchida' THEN $2::text WHEN 'pending' THEN $3::text WHEN 'cliente_nao_definido' THEN $4::text
         WHEN 'divergent' THEN format('NF_DIVERGENTE: NF %s pertence ao CNPJ %s, não a %s',
                                      v.nota_fiscal, v.rfi_cnpj, v.cnpj_cliente)
         END AS erro,
    v.outcome = 'divergent' AS clear_nf,
    v.outcome = 'validated' AS set_values,
    COALESCE(v.peso_bruto, 0) AS peso, COALESCE(v.valor_total, 0) AS valor
  FROM v),
upd AS (
  UPDATE embarque_itens AS i SET
    erro_validacao = w.erro,
    nota_fiscal = CASE WHEN w.clear_nf THEN NULL ELSE i.nota_fiscal END,
    peso = CASE WHEN w.set_values THEN w.peso ELSE i.peso END,
    valor = CASE WHEN w.set_values THEN w.valor ELSE i.valor END
  FROM w
  WHERE i.id = w.id
    AND (i.erro_validacao IS DISTINCT FROM w.erro OR (w.clear_nf AND i.nota_fiscal IS NOT NULL)
         OR (w.set_values AND (i.peso IS DISTINCT FROM w.peso OR i.valor IS DISTINCT FROM w.valor)))
  RETURNING w.outcome)
SELECT outcome, count(*) FROM upd GROUP BY outcome
"""


def revalidate_sql(*, carvia: bool) -> str:
    """The statement; `$1` the new NFs, `$2`–`$4` the fixed texts, `$5` NFs left out (their items
    are not touched). `carvia`: the database has
    `embarque_itens.carvia_cotacao_id` (otherwise only the `CARVIA-` lot prefix tells)."""
    prefix = "COALESCE(i.separacao_lote_id, '') LIKE 'CARVIA-%%'"
    test = f"COALESCE(i.carvia_cotacao_id, 0) <> 0 OR {prefix}" if carvia else prefix
    sql = _SQL.format(rfi_norm=norm_cnpj("r.cnpj_cliente"), item_norm=norm_cnpj("i.cnpj_cliente"), carvia=test)
    return sql.replace("%%", "%")


def revalidate(writer, new_nfs: pl.Series | list[str], *, carvia: bool, left_out: list[str] | tuple = ()) -> dict[str, int]:
    """Run the re-validation through `writer` (transaction open). Out: items written per
    outcome (validated, divergent, pending, cliente_nao_definido, nf_nao_preenchida).
    `new_nfs` (a first run's every NF) is bound as one Arrow array, never a Python list.
    `left_out`: NFs the quarantine leaves out of the run — their items are not re-checked."""
    texts = [pa.array([t]) for t in (NF_NAO_PREENCHIDA, NF_PENDENTE, CLIENTE_NAO_DEFINIDO)]
    params = pa.record_batch([text_array(new_nfs), *texts, text_array(list(left_out))], names=["p1", "p2", "p3", "p4", "p5"])
    writer.execute(revalidate_sql(carvia=carvia), params)
    got = {str(outcome): int(n) for outcome, n in writer.cur.fetchall()}
    return {k: got.get(k, 0) for k in ("validated", "divergent", "pending", "cliente_nao_definido", "nf_nao_preenchida")}
