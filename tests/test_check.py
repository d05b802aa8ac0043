"""`faturamento-batch check`: the read-only preflight (DESIGN §10), against the replay server,
on the production-shaped database with and without a blocker, and on an empty database."""

from __future__ import annotations

import json

import pytest

from faturamento_batch.cli import main
from faturamento_batch.replay import ReplayServer

from .conftest import FIXTURES
from .dbutil import existing_tables, load_rows, scalar, snapshot
from .test_real_databases import _least_privilege, admin, conninfo, role  # noqa: F401  (`role` is a fixture)

DATASET = FIXTURES / "smoke_mixed" / "odoo"


@pytest.fixture(scope="module")
def odoo():
    with ReplayServer(DATASET) as server:
        yield server


def _moves_in_domain() -> int:
    moves = json.loads((DATASET / "account.move.json").read_text())
    return sum(1 for m in moves if m["l10n_br_tipo_pedido"] in ("venda", "bonificacao") and m["state"] in ("posted", "cancel"))


def _check(url: str, odoo: ReplayServer, monkeypatch, capsys, *extra: str) -> tuple[int, dict, str]:
    monkeypatch.setenv("ODOO_PASSWORD", odoo.meta["password"])
    base = ["check", "--database-url", url, "--odoo-url", odoo.url, "--odoo-db", odoo.meta["db"],
            "--odoo-user", odoo.meta["login"], *extra]  # fmt: skip
    capsys.readouterr()
    code = main(base)
    human = capsys.readouterr().out
    assert main([*base, "--json"]) == code
    return code, json.loads(capsys.readouterr().out), human


def test_check_on_production_ready(prod_db_url, odoo, monkeypatch, capsys):
    load_rows(prod_db_url, {"faturamento_produto": [
        {"numero_nf": nf, "data_fatura": day, "cnpj_cliente": "1", "nome_cliente": "c", "cod_produto": "A",
         "nome_produto": "a", "qtd_produto_faturado": 1, "preco_produto_faturado": 1, "valor_produto_faturado": 1,
         "status_nf": "Lançado"} for nf, day in (("1", "2019-03-01"), ("2", "2023-05-01"), ("3", "2099-01-01"))]})  # fmt: skip
    before = snapshot(prod_db_url)
    code, report, human = _check(prod_db_url, odoo, monkeypatch, capsys)
    assert code == 0, report["blockers"]
    assert report["ready"] and report["blockers"] == []
    assert report["features"]["inconsistencia_faturamento"] is False and report["features"]["revertida"] is True
    assert report["database"]["time_zone"] and report["indexes_missing"] == []
    assert "inconsistencia_faturamento" not in report["grants_needed"]  # the table production dropped is not asked for
    assert report["grants_needed"]["faturamento_parcial_justificativa"] == ["SELECT", "INSERT"]
    run = report["first_run"]
    assert run["mode"] == "full" and run["odoo_nfs"] == _moves_in_domain()
    # Three posted NFs without a movement; only the one inside the catch-up bound would be processed.
    assert run["stock_catch_up"]["without_bound"] == 3 and run["stock_catch_up"]["nfs"] == 1
    assert run["stock_catch_up"]["oldest"] == "2019-03-01"
    assert report["rules"]["invoice_types"] and report["rules"]["stock_catch_up_days"] == 7
    assert "READY" in human and "schema features: on: revertida" in human and "off: inconsistencia_faturamento" in human
    assert snapshot(prod_db_url) == before  # read-only


def test_check_lists_duplicate_keys_and_the_missing_index(prod_db_url, odoo, monkeypatch, capsys):
    admin_url = prod_db_url
    from faturamento_batch.db.connection import adbc_connect

    with adbc_connect(admin_url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("DROP INDEX uq_faturamento_produto_nf_produto")  # as production is before `init-db`
    row = {"numero_nf": "700", "data_fatura": "2026-05-01", "cnpj_cliente": "1", "nome_cliente": "c", "cod_produto": "A",
           "nome_produto": "a", "qtd_produto_faturado": 1, "preco_produto_faturado": 1, "valor_produto_faturado": 1,
           "status_nf": "Lançado"}  # fmt: skip
    load_rows(admin_url, {"faturamento_produto": [row, row, {**row, "cod_produto": "B"}]})
    code, report, human = _check(admin_url, odoo, monkeypatch, capsys)
    assert code == 1 and not report["ready"]
    assert report["indexes_missing"] == ["uq_faturamento_produto_nf_produto"]
    assert report["duplicates"] == {"uq_faturamento_produto_nf_produto": 1}
    assert any("1 duplicate key(s)" in b and "('700', 'A')" in b and "HAVING count(*) > 1" in b for b in report["blockers"])
    assert "NOT READY" in human and "('700', 'A')" in human
    assert scalar(admin_url, "SELECT count(*) FROM faturamento_produto") == 3  # nothing changed


def test_check_names_a_missing_grant(pg_admin_url, role, prod_db_url, odoo, monkeypatch, capsys):  # noqa: F811
    url = _least_privilege(pg_admin_url, prod_db_url, role)
    code, report, _ = _check(url, odoo, monkeypatch, capsys)
    assert code == 0, report["blockers"]  # the README's grants are enough on production's schema
    admin(pg_admin_url, conninfo(prod_db_url).params["dbname"], f"REVOKE UPDATE ON separacao FROM {role}")
    code, report, _ = _check(url, odoo, monkeypatch, capsys)
    assert code == 1
    assert any("UPDATE on table `separacao`" in b for b in report["blockers"]), report["blockers"]


def test_check_on_an_empty_database(empty_db_url, odoo, monkeypatch, capsys):
    code, report, human = _check(empty_db_url, odoo, monkeypatch, capsys)
    assert code == 1
    assert any("`sync_state`" in b and "init-db" in b for b in report["blockers"])
    assert any("`faturamento_produto`" in b for b in report["blockers"])
    assert report["first_run"]["mode"] == "full" and report["first_run"]["odoo_nfs"] == _moves_in_domain()
    assert existing_tables(empty_db_url) == set()  # check created nothing


def test_check_when_odoo_is_unreachable(prod_db_url, monkeypatch, capsys):
    monkeypatch.setenv("ODOO_PASSWORD", "x")
    code = main(["check", "--database-url", prod_db_url, "--odoo-url", "http://127.0.0.1:9", "--odoo-db", "d",
                 "--odoo-user", "u", "--json"])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and any(b.startswith("Odoo not usable") for b in report["blockers"])
