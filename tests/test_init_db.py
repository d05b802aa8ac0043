"""`init-db` on an empty database and on one shaped like production today (DESIGN §10)."""

from __future__ import annotations

import pytest

from faturamento_batch.cli import main
from faturamento_batch.db.admin import init_db
from faturamento_batch.db.connection import adbc_connect
from faturamento_batch.db.features import Features, read_features
from faturamento_batch.db.schema import JOB_TABLES, metadata

from .dbutil import existing_tables, scalar
from .prod_schema import create_prod_schema

PROD_TABLES = {
    "faturamento_produto", "relatorio_faturamento_importado", "cadastro_palletizacao", "embarques", "embarque_itens",
    "movimentacao_estoque", "separacao", "faturamento_parcial_justificativa", "carteira_principal", "entregas_monitoradas",
}  # fmt: skip


@pytest.fixture
def prod_bare_url(empty_db_url) -> str:
    """Production's logistics tables, before `init-db` ever ran on them."""
    create_prod_schema(empty_db_url)
    return empty_db_url


def _indexes(url: str) -> dict[str, str]:
    conn = adbc_connect(url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT indexname::text, indexdef FROM pg_indexes WHERE schemaname = current_schema()")
            return dict(cur.fetchall())
    finally:
        conn.close()


def test_on_an_empty_database_it_creates_the_full_schema(empty_db_url):
    done = init_db(empty_db_url)
    assert not done.existing and done.not_created == [] and done.covered == {}
    assert existing_tables(empty_db_url) == {t.name for t in metadata.sorted_tables}
    assert sorted(done.indexes) == sorted(ix.name for t in metadata.sorted_tables for ix in t.indexes)
    again = init_db(empty_db_url)  # everything is there now: nothing to send
    assert again.statements == 0 and again.tables == [] and again.indexes == []


def test_on_production_it_creates_only_the_job_tables_and_missing_indexes(prod_bare_url):
    before = _indexes(prod_bare_url)
    done = init_db(prod_bare_url)
    assert done.existing
    assert sorted(done.tables) == sorted(t.name for t in JOB_TABLES)
    assert done.not_created == ["inconsistencia_faturamento"]  # dropped by the application: stays dropped
    assert existing_tables(prod_bare_url) == PROD_TABLES | {t.name for t in JOB_TABLES}
    # Indexes already there under the application's names are not built twice …
    assert done.covered["ix_embarque_itens_nota_fiscal"] == "idx_ei_nota_fiscal"
    assert done.covered["ix_faturamento_produto_cliente_data"] == "idx_faturamento_cliente_data"
    assert done.covered["ix_separacao_numero_nf_sincronizado"] == "idx_sep_nf"
    assert "ix_faturamento_produto_origem" not in done.indexes  # same name and definition in production
    # … the non-unique legacy (numero_nf, cod_produto) index does not stand for the unique one …
    assert "uq_faturamento_produto_nf_produto" in done.indexes
    # … and the ones production lacks are created, the partial one with its predicate.
    for name in ("ix_embarque_itens_pedido", "ix_movimentacao_estoque_nf_status", "ix_faturamento_produto_sem_lote",
                 "ix_separacao_lote_pedido_sincronizado", "ix_faturamento_produto_created_status"):  # fmt: skip
        assert name in done.indexes, name
    after = _indexes(prod_bare_url)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing of theirs touched
    job_keys = {"sync_state_pkey", "sync_runs_pkey", "sync_runs_run_id_key", "sync_quarantine_pkey", "sync_events_pkey",
                "sync_event_consumers_pkey", "sync_event_deliveries_pkey"}  # the job's own tables' keys
    assert set(after) - set(before) == set(done.indexes) | job_keys
    assert "WHERE ((status_nf)::text = 'SEM_LOTE'::text)" in after["ix_faturamento_produto_sem_lote"]
    assert init_db(prod_bare_url).statements == 0  # a second init-db finds everything in place


def test_production_features(prod_db_url, db_url):
    conn = adbc_connect(prod_db_url, autocommit=True)
    try:
        with conn.cursor() as cur:
            found = read_features(cur)
    finally:
        conn.close()
    assert found == Features(inconsistencia_faturamento=False)
    conn = adbc_connect(db_url, autocommit=True)
    try:
        with conn.cursor() as cur:
            # init-db's schema is the appendix's (Sept. 2025): it has the table production dropped.
            assert read_features(cur).inconsistencia_faturamento
    finally:
        conn.close()


def test_duplicate_keys_refuse_the_unique_index_and_create_nothing(prod_bare_url, capsys):
    conn = adbc_connect(prod_bare_url)
    with conn.cursor() as cur:
        cur.execute("""
            INSERT INTO faturamento_produto (numero_nf, data_fatura, cnpj_cliente, nome_cliente, cod_produto, nome_produto,
                qtd_produto_faturado, preco_produto_faturado, valor_produto_faturado, status_nf, created_at, updated_at)
            SELECT nf, DATE '2026-05-01', '1', 'c', p, 'n', 1, 1, 1, 'Lançado', now(), now()
            FROM (VALUES ('9001', 'A'), ('9001', 'A'), ('9001', 'B'), ('9002', 'C'), ('9002', 'C'), ('9002', 'C'),
                         ('9003', 'A')) AS v(nf, p)""")
    conn.commit()
    conn.close()
    before = _indexes(prod_bare_url)
    code = main(["init-db", "--database-url", prod_bare_url])
    assert code == 1
    message = capsys.readouterr().err
    assert "2 key(s)" in message and "numero_nf `9001`, cod_produto `A`) × 2" in message
    assert "numero_nf `9002`, cod_produto `C`) × 3" in message and "9003" not in message
    assert "HAVING count(*) > 1" in message and "Nothing was created" in message
    # One transaction: not even the job's tables or the other indexes were left behind.
    assert existing_tables(prod_bare_url) == PROD_TABLES
    assert _indexes(prod_bare_url) == before
    # With the duplicates merged, it goes through.
    conn = adbc_connect(prod_bare_url)
    with conn.cursor() as cur:
        cur.execute("DELETE FROM faturamento_produto a USING faturamento_produto b "
                    "WHERE a.numero_nf = b.numero_nf AND a.cod_produto = b.cod_produto AND a.id > b.id")  # fmt: skip
    conn.commit()
    conn.close()
    assert main(["init-db", "--database-url", prod_bare_url]) == 0
    assert scalar(prod_bare_url, "SELECT count(*) FROM pg_indexes WHERE indexname = 'uq_faturamento_produto_nf_produto'") == 1
