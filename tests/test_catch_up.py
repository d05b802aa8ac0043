"""The bounded stock catch-up (DESIGN §10): every run, posted NFs without a FATURAMENTO movement
of the last `stock_catch_up_days`, never before `stock_since` (default: the first run's day,
recorded) — a first run on a database holding years of history writes none of it off."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from faturamento_batch.artifacts import read_manifest
from faturamento_batch.cli import main
from faturamento_batch.db.read_stock import CatchUp, catch_up_preview

from .builders import build_dataset
from .dbutil import load_rows, scalar


def _line(nf: str, day: date) -> dict:
    return {
        "numero_nf": nf, "data_fatura": day.isoformat(), "cnpj_cliente": "11.111.111/0001-11",
        "nome_cliente": "Cliente Um", "municipio": "Campinas", "estado": "SP", "cod_produto": "A1",
        "nome_produto": "Produto A1", "qtd_produto_faturado": "2.000", "preco_produto_faturado": "10.0000",
        "valor_produto_faturado": "20.00", "peso_unitario_produto": "1.000", "peso_total": "2.000",
        "origem": f"PED{nf}", "status_nf": "Lançado",
    }  # fmt: skip


def _nfs(url: str) -> list[str]:
    text = scalar(url, "SELECT coalesce(string_agg(DISTINCT numero_nf, ',' ORDER BY numero_nf), '') FROM movimentacao_estoque "
                       "WHERE tipo_movimentacao = 'FATURAMENTO' AND numero_nf LIKE '90%'")  # fmt: skip
    return [nf for nf in text.split(",") if nf]


def _sync(url: str, dataset, runs, *args: str) -> dict:
    assert main(["sync", "--source", str(dataset), "--database-url", url, "--artifacts-dir", str(runs), *args]) == 0
    latest = max(runs.iterdir(), key=lambda p: p.stat().st_mtime_ns)
    return read_manifest(latest)


def test_first_run_processes_only_nfs_within_the_bounds(db_url, tmp_path):
    today = datetime.now(ZoneInfo("America/Sao_Paulo")).date()  # the run's date: the database clock, in the rules' zone
    old = {"9001": today - timedelta(days=400), "9002": today - timedelta(days=30),
           "9003": today - timedelta(days=3), "9004": today}  # fmt: skip
    load_rows(db_url, {"faturamento_produto": [_line(nf, day) for nf, day in old.items()]})
    dataset = build_dataset(tmp_path / "odoo", moves=1)
    runs = tmp_path / "runs"

    # What a preflight says beforehand: from today (no run recorded yet), one NF.
    assert catch_up_preview(db_url, CatchUp(today, 7, None, "faturamento")) == (today, 1)
    assert catch_up_preview(db_url, CatchUp(today, 60, date(2020, 1, 1), "faturamento")) == (today - timedelta(days=60), 3)
    # First run, default rules: stock_since is today (recorded), so only today's NF is caught up.
    manifest = _sync(db_url, dataset, runs)
    assert manifest["mode"] == "full" and manifest["rules"]["stock_catch_up_days"] == 7
    assert _nfs(db_url) == ["9004"]
    assert scalar(db_url, "SELECT stock_since FROM sync_state") == today

    # An incremental run with the cut-over date configured 5 days back: 9003 (3 days old) too.
    _sync(db_url, dataset, runs, "--stock-since", (today - timedelta(days=5)).isoformat())
    assert _nfs(db_url) == ["9003", "9004"]

    # The cut-over long ago, but the window still 7 days: 9002 (30 days) stays as it is …
    _sync(db_url, dataset, runs, "--stock-since", "2020-01-01")
    assert _nfs(db_url) == ["9003", "9004"]
    # … until the window reaches it; 9001 is older than the window still.
    _sync(db_url, dataset, runs, "--stock-since", "2020-01-01", "--stock-catch-up-days", "60")
    assert _nfs(db_url) == ["9002", "9003", "9004"]
    # The recorded first-run day is kept, whatever later runs configure.
    assert scalar(db_url, "SELECT stock_since FROM sync_state") == today


def test_the_recorded_day_bounds_later_runs(db_url, tmp_path):
    today = datetime.now(ZoneInfo("America/Sao_Paulo")).date()
    load_rows(db_url, {"faturamento_produto": [_line("9011", today - timedelta(days=6)), _line("9012", today - timedelta(days=2))]})
    dataset = build_dataset(tmp_path / "odoo", moves=1)
    runs = tmp_path / "runs"
    _sync(db_url, dataset, runs)
    assert _nfs(db_url) == []
    # As if the first run had been 4 days ago: the recorded day now lets 9012 in, not 9011.
    from faturamento_batch.db.connection import adbc_connect

    with adbc_connect(db_url) as conn, conn.cursor() as cur:
        cur.execute("UPDATE sync_state SET stock_since = $1", (today - timedelta(days=4),))
        conn.commit()
    _sync(db_url, dataset, runs)
    assert _nfs(db_url) == ["9012"]
