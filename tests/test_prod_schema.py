"""`sync` on a database shaped like production today (legacy-rules.md §9, tests/prod_schema.py):
the schema as found (DESIGN §10) — no inconsistency table, NOT NULL columns without server
defaults, the legacy indexes — full then incremental, stock stage on."""

from __future__ import annotations

from pathlib import Path

from faturamento_batch.artifacts import read_manifest, read_part
from faturamento_batch.cli import main

from .builders import build_dataset
from .dbutil import existing_tables, load_rows, read_table, scalar
from .test_stock_io import PED1, PED2, _logistics

DAY2 = "2026-01-06 10:00:00"


def _run(url: str, tmp_path: Path, *args: str) -> tuple[int, dict]:
    code = main([args[0], "--database-url", url, "--artifacts-dir", str(tmp_path / "runs"), *args[1:]])
    latest = max((tmp_path / "runs").iterdir(), key=lambda p: p.stat().st_mtime_ns)
    return code, read_manifest(latest)


def test_sync_full_then_incremental_on_production_schema(prod_db_url, tmp_path, capsys):
    load_rows(prod_db_url, _logistics({"PED1": PED1, "PED2": PED2}))  # NF 100003's order has no shipment
    day1 = build_dataset(tmp_path / "odoo1", moves=3)
    code, m = _run(prod_db_url, tmp_path, "sync", "--full", "--source", str(day1))
    assert code == 0, m.get("error")
    assert m["mode"] == "full" and m["features"]["inconsistencia_faturamento"] is False
    assert m["features"]["revertida"] and m["features"]["nf_pallet"] and m["features"]["carteira_principal"]
    s = m["stock"]
    assert (s["nfs_processed"], s["nfs_with_lot"], s["nfs_without_lot"]) == (3, 2, 1)
    assert s["counts"]["movements_created"] == 9 and s["counts"]["inconsistencies_opened"] == 0
    assert not [k for k in m["written"] if k.startswith("inconsistencia_faturamento")]
    # The NF without a lot: no inconsistency row anywhere, its reason in the stage's part.
    assert scalar(prod_db_url, "SELECT count(DISTINCT numero_nf) FROM faturamento_produto WHERE status_nf = 'SEM_LOTE'") == 1
    run_dir = tmp_path / "runs" / m["run_id"]
    assignments = read_part(run_dir, "stock_assignments")  # the reason per NF stays here
    assert assignments.filter(assignments["separacao_lote_id"].is_null())["tipo"].to_list() == ["NF_SEM_SEPARACAO"]
    assert read_part(run_dir, "inconsistencies").height == 0
    # Production's NOT NULL columns without server defaults were supplied by the job.
    assert scalar(prod_db_url, "SELECT count(*) FROM movimentacao_estoque WHERE criado_em IS NULL OR atualizado_em IS NULL") == 0
    assert scalar(prod_db_url, "SELECT bool_and(ativo) FROM relatorio_faturamento_importado") is True
    assert scalar(prod_db_url, "SELECT bool_and(ativo) AND count(*) > 0 FROM cadastro_palletizacao") is True
    assert scalar(prod_db_url, "SELECT bool_or(revertida) FROM faturamento_produto") is False  # its server default

    day2 = build_dataset(tmp_path / "odoo2", moves=4, cancelled={1}, write_date=DAY2)  # one more NF, NF 100001 cancelled
    code, m = _run(prod_db_url, tmp_path, "sync", "--source", str(day2))
    assert code == 0, m.get("error")
    assert m["mode"] == "incremental" and m["features"]["inconsistencia_faturamento"] is False
    assert m["counts"]["inserts"] == 3 and m["counts"]["cancellations"] == 1
    assert m["written"]["movimentacao_estoque.cancel"] == 3  # the cascade, without the inconsistency part
    assert "inconsistencia_faturamento" not in existing_tables(prod_db_url)
    moves = read_table(prod_db_url, "movimentacao_estoque", ["numero_nf", "status_nf", "ativo"])
    assert set(moves.filter(moves["numero_nf"] == "100001")["status_nf"]) == {"CANCELADO"}

    capsys.readouterr()
    assert main(["runs", "show", "--database-url", prod_db_url, "--artifacts-dir", str(tmp_path / "runs")]) == 0
    shown = capsys.readouterr().out
    assert "schema features: on: revertida, nf_pallet" in shown and "off: inconsistencia_faturamento" in shown
