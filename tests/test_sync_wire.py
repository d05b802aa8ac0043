"""`sync` over the wire: the replay server gives the same database as `--source`,
full and incremental, and a failed run never moves the cursor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faturamento_batch.artifacts import read_manifest, read_part
from faturamento_batch.diff import downstream_lists
from faturamento_batch.cli import main
from faturamento_batch.replay import ReplayServer

from .builders import build_dataset
from .conftest import FIXTURES
from .dbutil import read_table, scalar, snapshot

AUDIT = {"created_at", "updated_at", "criado_em", "atualizado_em", "inativado_em", "id", "started_at", "finished_at",
         "detectada_em", "resolvida_em", "data_sincronizacao"}


def _comparable(url: str) -> dict:
    """Every logistics table without its audit timestamps and ids (they differ between runs)."""
    from faturamento_batch.db.schema import LOGISTICS_TABLES

    out = {}
    for table in LOGISTICS_TABLES:
        cols = [c.name for c in table.c if c.name not in AUDIT]
        out[table.name] = sorted(read_table(url, table.name, cols).rows(), key=repr)
    return out


def _wire_sync(odoo: ReplayServer, url: str, runs: Path, monkeypatch, *args: str, transport: str = "jsonrpc") -> tuple[int, dict]:
    meta = odoo.meta
    monkeypatch.setenv("ODOO_PASSWORD", meta["password"] if transport != "json2" else "")
    monkeypatch.setenv("ODOO_API_KEY", meta["api_key"] if transport == "json2" else "")
    code = main([
        "sync", "--odoo-url", odoo.url, "--odoo-db", meta["db"], "--odoo-user", meta["login"], "--transport", transport,
        "--database-url", url, "--artifacts-dir", str(runs), "--state-dir", str(runs.parent / "state"), *args,
    ])  # fmt: skip
    latest = max(runs.iterdir(), key=lambda p: p.stat().st_mtime_ns)
    return code, read_manifest(latest)


def _source_sync(ds: Path, url: str, runs: Path, *args: str) -> tuple[int, dict]:
    code = main(["sync", "--source", str(ds), "--database-url", url, "--artifacts-dir", str(runs), *args])
    latest = max(runs.iterdir(), key=lambda p: p.stat().st_mtime_ns)
    return code, read_manifest(latest)


@pytest.mark.parametrize("transport", ["jsonrpc", "xmlrpc", "json2"])
def test_wire_sync_equals_source_sync(transport, db_url, second_db, tmp_path, monkeypatch):
    ds = FIXTURES / "smoke_mixed" / "odoo"
    with ReplayServer(ds) as odoo:
        code, manifest = _wire_sync(odoo, db_url, tmp_path / "a" / "runs", monkeypatch, "--max-reject-ratio", "1", transport=transport)
    assert code == 0, manifest.get("error")
    assert _source_sync(ds, second_db, tmp_path / "b" / "runs", "--max-reject-ratio", "1")[0] == 0
    assert _comparable(db_url) == _comparable(second_db)
    assert manifest["odoo"]["total_calls"] > 0 and manifest["odoo"]["bytes_received"] > 0


DAY1_LATEST = "2026-01-05 10:00:00"


def _day1(dst: Path, moves: int) -> None:
    """NFs written on Jan 4, the last one on Jan 5 at 10:00 (the cursor after a sync)."""
    build_dataset(dst, moves=moves, cancelled={3}, write_date="2026-01-04 10:00:00")
    _stamp(dst, {moves}, DAY1_LATEST, lines_too=True)


def _stamp(ds: Path, move_ids: set[int], ts: str, *, lines_too: bool, edit=None) -> None:
    moves = json.loads((ds / "account.move.json").read_text())
    lines = json.loads((ds / "account.move.line.json").read_text())
    for m in moves:
        if m["id"] in move_ids:
            m["write_date"] = ts
            if edit:
                edit(m)
    for ln in lines:
        if lines_too and ln["move_id"][0] in move_ids:
            ln["write_date"] = ts
    (ds / "account.move.json").write_text(json.dumps(moves))
    (ds / "account.move.line.json").write_text(json.dumps(lines))


def _mutate_day2(dst: Path) -> None:
    """Day 2 of a 30-NF day 1: 2 new NFs, NF 100005 cancelled and NF 100003 reactivated
    (the move's write_date moves, the lines' do not), NF 100007's price changed."""
    build_dataset(dst, moves=32, cancelled={5}, write_date="2026-01-04 10:00:00")
    _stamp(dst, {30}, DAY1_LATEST, lines_too=True)
    day2 = "2026-01-06 08:00:00"
    _stamp(dst, {3, 5}, day2, lines_too=False)
    _stamp(dst, {31, 32}, day2, lines_too=True)
    lines = json.loads((dst / "account.move.line.json").read_text())
    for ln in lines:
        if ln["move_id"][0] == 7:
            ln["price_unit"], ln["write_date"] = 11.0, day2
    (dst / "account.move.line.json").write_text(json.dumps(lines))


def test_incremental_over_the_wire(db_url, second_db, tmp_path, monkeypatch):
    served = tmp_path / "served"
    _day1(served, moves=30)
    runs = tmp_path / "runs"
    with ReplayServer(served) as odoo:
        code, first = _wire_sync(odoo, db_url, runs, monkeypatch, "--no-stock")
        assert code == 0 and first["mode"] == "full" and first["counts"]["inserts"] == 90
        _mutate_day2(served)
        odoo.reload()
        odoo.reset_stats()
        code, second = _wire_sync(odoo, db_url, runs, monkeypatch, "--no-stock")
        calls = odoo.stats()["calls"]
    assert code == 0 and second["mode"] == "incremental"
    c = second["counts"]
    assert (c["inserts"], c["cancellations"], c["reactivations"], c["drift"], c["status_changes"]) == (6, 1, 1, 3, 6)
    # Only the window was read: moves 3, 5, 7, 31, 32 and the overlap's move 30 (18 lines), not all 96.
    assert c["odoo_lines"] == 18
    assert second["downstream"]["nfs_to_reprocess"] == 3
    reprocess = downstream_lists(read_part(runs / second["run_id"], "downstream"))["nfs_to_reprocess"]
    assert reprocess == ["100003", "100031", "100032"]
    assert calls["account.move.line.search_read"] <= 4
    assert scalar(db_url, "SELECT count(*) FROM faturamento_produto WHERE status_nf = 'Cancelado'") == 3
    assert scalar(db_url, "SELECT cursor::text FROM sync_state") == "2026-01-06 08:00:00"
    # The same end state as a full in-process sync of day 2 (drift aside: not applied). The import
    # alone: the stock stage's rows depend on the history (day 1's movements of NFs day 2 cancels).
    assert _source_sync(served, second_db, tmp_path / "b" / "runs", "--no-stock")[0] == 0
    a, b = _comparable(db_url), _comparable(second_db)
    drift_cols = ("preco_produto_faturado", "valor_produto_faturado")
    assert {k: v for k, v in a.items() if k != "faturamento_produto" and k != "relatorio_faturamento_importado"} == \
           {k: v for k, v in b.items() if k != "faturamento_produto" and k != "relatorio_faturamento_importado"}  # fmt: skip
    keys = lambda rows: sorted((r[0], r[9]) for r in rows)  # noqa: E731  (numero_nf, cod_produto)
    assert keys(a["faturamento_produto"]) == keys(b["faturamento_produto"]), drift_cols


def test_failed_run_after_extraction_leaves_the_cursor(db_url, tmp_path, monkeypatch):
    served = tmp_path / "served"
    _day1(served, moves=30)
    runs = tmp_path / "runs"
    with ReplayServer(served) as odoo:
        assert _wire_sync(odoo, db_url, runs, monkeypatch)[0] == 0
        cursor = scalar(db_url, "SELECT cursor::text FROM sync_state")
        _mutate_day2(served)
        odoo.reload()
        before = snapshot(db_url)
        # Extraction succeeds, then PostgreSQL refuses the cascade for a reason that is not the
        # row's (a row-specific refusal — class 22/23, P0001 — would quarantine the NF, DESIGN §12,
        # tests/test_quarantine.py): nothing may move.
        from faturamento_batch.db.connection import adbc_connect

        conn = adbc_connect(db_url, autocommit=True)
        with conn.cursor() as cur:
            cur.execute("CREATE FUNCTION no_cancel() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                        "RAISE EXCEPTION 'application in maintenance' USING ERRCODE = '55000'; END $$")
            cur.execute("CREATE TRIGGER no_cancel BEFORE UPDATE ON faturamento_produto FOR EACH ROW "
                        "WHEN (NEW.status_nf = 'Cancelado') EXECUTE FUNCTION no_cancel()")  # fmt: skip
        conn.close()
        code, manifest = _wire_sync(odoo, db_url, runs, monkeypatch)
        assert code == 1 and manifest["status"] == "failed" and manifest["odoo"]["total_calls"] > 0
        assert snapshot(db_url) == before
        assert scalar(db_url, "SELECT cursor::text FROM sync_state") == cursor
        # Fix the cause: the next run re-reads the same window and completes.
        conn = adbc_connect(db_url, autocommit=True)
        with conn.cursor() as cur:
            cur.execute("DROP TRIGGER no_cancel ON faturamento_produto")
        conn.close()
        code, manifest = _wire_sync(odoo, db_url, runs, monkeypatch)
    assert code == 0 and manifest["counts"]["cancellations"] == 1
