"""Chunked full runs (DESIGN §8) against a real PostgreSQL: the same database as a one-piece run,
statements that do not grow with the chunks, orphans, NFs on several moves across chunks, and a
run killed midway that leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from faturamento_batch.artifacts import read_manifest, read_part
from faturamento_batch.db import schema
from faturamento_batch.generator import generate_dataset
from faturamento_batch.odoo.fields import LINE, MOVE, dataset_file
from faturamento_batch.pipeline import run_sync
from faturamento_batch.settings import Settings

from .builders import build_dataset
from .dbutil import load_cascade_rows, load_rows, read_table, scalar, snapshot

# Columns that differ by construction between two runs (serial ids, run timestamps).
VOLATILE = {"id", "created_at", "updated_at", "criado_em", "atualizado_em", "inativado_em", "resolvida_em",
            "detectada_em", "data_sincronizacao"}  # fmt: skip
COMPARED = ("faturamento_produto", "relatorio_faturamento_importado", "cadastro_palletizacao", "movimentacao_estoque",
            "embarque_itens", "separacao", "inconsistencia_faturamento", "faturamento_parcial_justificativa")  # fmt: skip


def _run(url: str, tmp: Path, source: Path, chunk_size: int, **kw):
    # wait_seconds: the server drops a closed session's advisory lock a moment after the
    # client has gone; back-to-back runs in one test must not race it (a loaded CI machine).
    settings = Settings(database_url=url, artifacts_dir=tmp / "runs", state_dir=tmp / "state", source=source,
                        full=True, chunk_size=chunk_size, max_reject_ratio=1.0, wait_seconds=10.0, **kw)  # fmt: skip
    return run_sync(settings)


def _tables(url: str) -> dict[str, pl.DataFrame]:
    out = {}
    for name in COMPARED:
        cols = [c.name for c in schema.metadata.tables[name].c if c.name not in VOLATILE]
        out[name] = read_table(url, name, cols).sort(cols, nulls_last=True)
    return out


def _same_database(a: str, b: str) -> None:
    left, right = _tables(a), _tables(b)
    for name in COMPARED:
        assert left[name].height == right[name].height, name
        assert left[name].equals(right[name]), f"`{name}` differs between the chunked and the one-piece run"


def _several_moves_dataset(path: Path) -> Path:
    """A generated dataset where the first and the last move claim the same NF number (other chunks)."""
    generate_dataset(path, 2_500, seed=11)
    moves_file = path / dataset_file(MOVE)
    moves = json.loads(moves_file.read_text())
    with_lines = {line["move_id"][0] for line in json.loads((path / dataset_file(LINE)).read_text()) if line["move_id"]}
    usable = [m for m in moves if m["id"] in with_lines and m["l10n_br_numero_nota_fiscal"]
              and m["state"] in ("posted", "cancel") and m["l10n_br_tipo_pedido"] in ("venda", "bonificacao")
              and (m.get("company_id") or [None])[0] != 5  # company 5 is outside the domain (DESIGN §10)
              and m["invoice_origin"] not in (False, "", "false")]  # no order: rejected as no_origin first  # fmt: skip
    usable[-1]["l10n_br_numero_nota_fiscal"] = " " + usable[0]["l10n_br_numero_nota_fiscal"] + " "  # cleaned: the same
    moves_file.write_text(json.dumps(moves))
    return path


def test_chunked_and_one_piece_full_runs_give_the_same_database(db_url, second_db, tmp_path):
    ds = _several_moves_dataset(tmp_path / "odoo")
    chunked = _run(db_url, tmp_path / "a", ds, chunk_size=150)
    one_piece = _run(second_db, tmp_path / "b", ds, chunk_size=0)
    assert chunked.manifest["chunks"]["chunks"] > 5  # really cut
    assert one_piece.manifest["chunks"]["chunks"] == 1  # --chunk-size 0: the same path, one chunk
    _same_database(db_url, second_db)
    for key in ("inserts", "consolidation", "new_products", "rejected", "status_changes", "cancellations"):
        assert chunked.manifest["counts"][key] == one_piece.manifest["counts"][key], key
    assert chunked.manifest["downstream"] == one_piece.manifest["downstream"]
    assert read_part(chunked.run_dir, "downstream").sort(pl.all()).equals(read_part(one_piece.run_dir, "downstream").sort(pl.all()))
    several = read_part(chunked.run_dir, "rejected").filter(pl.col("reason") == "nf_number_on_several_moves")
    assert several.height >= 2 and several.get_column("odoo_move_id").n_unique() == 2
    assert read_part(chunked.run_dir, "inserts").height == chunked.manifest["counts"]["inserts"]


def test_chunked_full_run_over_a_populated_database_matches_one_piece(db_url, second_db, tmp_path):
    """Existing rows larger than a chunk: the state is spilled to buckets and diffed bucket by bucket."""
    day1 = build_dataset(tmp_path / "day1", moves=120)
    day2 = build_dataset(tmp_path / "day2", moves=130, cancelled={3, 4, 5}, price=11.0, write_date="2026-01-06 10:00:00")
    for url, sub in ((db_url, "a"), (second_db, "b")):
        assert _run(url, tmp_path / sub, day1, chunk_size=0).manifest["status"] == "success"
        load_rows(url, {"faturamento_produto": [{  # a key Odoo no longer returns: an orphan
            "numero_nf": "999999", "data_fatura": "2026-01-01", "cnpj_cliente": "x", "nome_cliente": "x",
            "cod_produto": "P00001", "nome_produto": "x", "qtd_produto_faturado": "1", "preco_produto_faturado": "1",
            "valor_produto_faturado": "1", "status_nf": "Lançado"}]})  # fmt: skip
        load_cascade_rows(url, ["100003"])
    chunked = _run(db_url, tmp_path / "a", day2, chunk_size=40, apply_drift=True)
    one_piece = _run(second_db, tmp_path / "b", day2, chunk_size=0, apply_drift=True)
    assert chunked.manifest["chunks"]["state_buckets"] > 1
    _same_database(db_url, second_db)
    assert chunked.manifest["counts"]["orphans"] == one_piece.manifest["counts"]["orphans"] == 1
    orphans = read_part(chunked.run_dir, "orphans")
    assert orphans.select("numero_nf", "cod_produto").rows() == [("999999", "P00001")]
    assert chunked.manifest["counts"]["cancellations"] == 3
    cancelled = chunked.manifest["written"]["movimentacao_estoque.cancel"]
    assert cancelled == one_piece.manifest["written"]["movimentacao_estoque.cancel"] >= 1
    assert chunked.manifest["counts"]["drift"] == one_piece.manifest["counts"]["drift"] > 0


def test_orphans_found_when_existing_rows_are_held(db_url, tmp_path):
    ds = build_dataset(tmp_path / "odoo", moves=20)
    assert _run(db_url, tmp_path, ds, chunk_size=0).manifest["status"] == "success"
    smaller = build_dataset(tmp_path / "odoo2", moves=18, lines_per_move=2)  # NFs 19, 20 gone; line 3 of each gone
    result = _run(db_url, tmp_path, smaller, chunk_size=1_000)  # 60 existing rows: held in memory
    assert result.manifest["chunks"]["state_buckets"] == 1
    result = _run(db_url, tmp_path, smaller, chunk_size=10)  # held state is per chunk size: buckets now
    orphans = read_part(result.run_dir, "orphans")
    assert orphans.height == 18 + 2 * 3
    assert set(orphans.get_column("numero_nf").unique()) == {str(100_000 + m) for m in range(1, 21)}


def test_statement_count_does_not_grow_with_the_number_of_chunks(db_url, second_db, tmp_path):
    ds = build_dataset(tmp_path / "odoo", moves=300, cancelled={7})
    few = _run(db_url, tmp_path / "a", ds, chunk_size=100_000)
    many = _run(second_db, tmp_path / "b", ds, chunk_size=9)
    assert few.manifest["chunks"]["chunks"] == 1 and many.manifest["chunks"]["chunks"] == 100
    assert many.manifest["sql_statements"] == few.manifest["sql_statements"]
    assert many.manifest["sql_statements"]["total"] <= 25  # the stock stage included
    assert scalar(second_db, "SELECT count(*) FROM faturamento_produto") == 900


def test_one_chunk_many_chunks_and_chunk_size_0_same_database_and_statements_with_the_stage_on(
        db_url, second_db, pg_admin_url, template_url, tmp_path, monkeypatch):  # fmt: skip
    """One run path: the same database (every table) and the same statements, stage on, whatever the
    chunking; a first run writes its SEM_LOTE lines as SEM_LOTE (no insert-then-update)."""
    from .conftest import clone_template, drop_database
    from .test_stock_io import _budget_shipments

    from faturamento_batch.db.write import Writer

    sent: list[str] = []
    execute = Writer.execute
    monkeypatch.setattr(Writer, "execute", lambda self, sql, params=(): (sent.append(sql), execute(self, sql, params))[1])
    third = clone_template(pg_admin_url)
    try:
        ds = build_dataset(tmp_path / "odoo", moves=300, cancelled={7})
        runs = {}
        for url, chunk_size in ((db_url, 100_000), (second_db, 9), (third, 0)):
            _budget_shipments(url, 0, 0, 300)  # a lot for every odd order: NFs with and without a lot
            runs[chunk_size] = _run(url, tmp_path / str(chunk_size), ds, chunk_size=chunk_size)
        one, many, zero = runs[100_000].manifest, runs[9].manifest, runs[0].manifest
        assert (one["chunks"]["chunks"], many["chunks"]["chunks"], zero["chunks"]["chunks"]) == (1, 100, 1)
        # The stage by groups of orders: one group, or ~9 candidate lines each (897 posted lines).
        assert (one["stock"]["groups"], many["stock"]["groups"], zero["stock"]["groups"]) == (1, 100, 1)
        _same_database(db_url, second_db)
        _same_database(db_url, third)
        assert one["sql_statements"] == many["sql_statements"] == zero["sql_statements"]
        assert one["sql_statements"]["total"] <= 35
        s = one["stock"]
        assert s["nfs_with_lot"] == 149 and s["nfs_without_lot"] == 150  # the odd orders have a lot; NF 7 is cancelled
        assert s["counts"]["status_changes"] == 150 and s["counts"]["items_linked"] == 149
        assert one["written"]["faturamento_produto.status_lines"] == 150 * 3 == many["written"]["faturamento_produto.status_lines"]
        assert scalar(db_url, "SELECT count(*) FROM faturamento_produto WHERE status_nf = 'SEM_LOTE'") == 150 * 3
        # Written once: COPYed as SEM_LOTE, no UPDATE of faturamento_produto in any of the three runs.
        assert sent and not [sql for sql in sent if "UPDATE faturamento_produto" in sql]
        assert sum(s["left_alone"].values()) == 0
    finally:
        drop_database(pg_admin_url, third)


def test_dry_run_chunked_writes_nothing(db_url, tmp_path):
    ds = build_dataset(tmp_path / "odoo", moves=30)
    before = snapshot(db_url)
    result = _run(db_url, tmp_path, ds, chunk_size=20, dry_run=True)
    assert result.manifest["status"] == "dry_run" and result.manifest["counts"]["inserts"] == 90
    assert snapshot(db_url) == before


def test_reject_ratio_checked_over_the_whole_chunked_run(db_url, tmp_path):
    ds = build_dataset(tmp_path / "odoo", moves=40, bad_quantity_every=4)
    before = snapshot(db_url)
    settings = Settings(database_url=db_url, artifacts_dir=tmp_path / "runs", state_dir=tmp_path / "state", source=ds,
                        full=True, chunk_size=12)  # fmt: skip
    with pytest.raises(Exception, match="were rejected"):
        run_sync(settings)
    assert snapshot(db_url) == before


def test_chunked_run_killed_midway_leaves_the_database_untouched(db_url, tmp_path):
    ds = build_dataset(tmp_path / "odoo", moves=3_000, lines_per_move=4)
    before = snapshot(db_url)
    env = {**os.environ, "FATURAMENTO_CHUNK_SIZE": "40"}
    cmd = [sys.executable, "-m", "faturamento_batch", "sync", "--full", "--source", str(ds), "--database-url", db_url,
           "--artifacts-dir", str(tmp_path / "runs")]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    copying = False
    while time.monotonic() < deadline and proc.poll() is None:  # wait until the COPY is streaming
        copying = bool(scalar(db_url, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'faturamento_batch' "
                                      "AND query ILIKE 'COPY%' AND state = 'active'"))  # fmt: skip
        if copying:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert copying, "the run ended before its COPY was seen streaming"
    time.sleep(0.5)  # the server notices the dead connection and rolls back
    assert snapshot(db_url) == before
    assert not (tmp_path / "runs").exists() or all(
        read_manifest(d).get("status") != "success" for d in (tmp_path / "runs").iterdir() if (d / "manifest.json").exists()
    )


def test_write_run_replayed_without_an_nf_leaves_out_all_of_it(db_url, second_db, tmp_path, monkeypatch):
    """`write_run(writer, run, exclude)` (what quarantine replays under a SAVEPOINT): every write of
    the excluded NF is left out — lines, consolidation, stock movements, inconsistencies, links —
    and everything else is written as in a healthy run."""
    import faturamento_batch.pipeline as pipeline
    from faturamento_batch.stages.write_run import write_run

    from .test_stock_io import _budget_shipments

    ds = build_dataset(tmp_path / "odoo", moves=40)
    for url in (db_url, second_db):
        _budget_shipments(url, 0, 0, 40)  # odd orders have a lot: NF 100003 gets one
    healthy = _run(db_url, tmp_path / "a", ds, chunk_size=7)
    left_out = pl.DataFrame({"numero_nf": ["100003", "100004"]})
    monkeypatch.setattr(pipeline, "write_run", lambda writer, run, exclude=None: write_run(writer, run, left_out))
    replayed = _run(second_db, tmp_path / "b", ds, chunk_size=7)
    assert healthy.manifest["status"] == replayed.manifest["status"] == "success"
    for table, column in (("faturamento_produto", "numero_nf"), ("relatorio_faturamento_importado", "numero_nf"),
                          ("movimentacao_estoque", "numero_nf"), ("inconsistencia_faturamento", "numero_nf"),
                          ("embarque_itens", "nota_fiscal"), ("separacao", "numero_nf"),
                          ("faturamento_parcial_justificativa", "numero_nf")):  # fmt: skip
        query = f"SELECT count(*) FROM {table} WHERE {column} IN ('100003', '100004')"  # our own constants
        assert scalar(second_db, query) == 0, table
        other = f"SELECT count(*) FROM {table} WHERE {column} NOT IN ('100003', '100004')"
        assert scalar(second_db, other) == scalar(db_url, other), table
    assert scalar(db_url, "SELECT count(*) FROM movimentacao_estoque WHERE numero_nf = '100003'") == 3
    assert scalar(db_url, "SELECT count(*) FROM embarque_itens WHERE nota_fiscal = '100003'") == 1
    assert scalar(db_url, "SELECT count(*) FROM inconsistencia_faturamento WHERE numero_nf = '100004'") == 1
    assert replayed.manifest["sql_statements"] == healthy.manifest["sql_statements"]
