"""Hostile and dirty Odoo data through the whole pipeline, over the wire and in-process:
every line is loaded per the rules or rejected with a reason; the database keeps its
constraints; nothing else is lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faturamento_batch.artifacts import read_manifest, read_part
from faturamento_batch.cli import main
from faturamento_batch.replay import ReplayServer

from .builders import build_dataset
from .dbutil import read_table, scalar

HOSTILE = "'; DROP TABLE faturamento_produto; -- \" \\ $1 %_ 😀"


def _hostile_dataset(path: Path) -> Path:
    build_dataset(path, moves=12, lines_per_move=2)
    moves = json.loads((path / "account.move.json").read_text())
    lines = json.loads((path / "account.move.line.json").read_text())
    partners = json.loads((path / "res.partner.json").read_text())
    templates = json.loads((path / "product.template.json").read_text())
    by_id = {m["id"]: m for m in moves}
    by_id[1]["invoice_partner_display_name"] = HOSTILE
    by_id[1]["invoice_origin"] = HOSTILE
    by_id[2]["l10n_br_numero_nota_fiscal"] = "10\x000002"  # NUL inside the NF number
    by_id[3]["invoice_partner_display_name"] = "N" * 10_000
    by_id[4]["date"] = "2026-02-30"  # malformed: the line's date is used
    by_id[5]["date"] = False
    for ln in lines:
        if ln["move_id"][0] == 5:
            ln["date"] = "10000-01-01"  # out of range too: no invoice date at all
    by_id[6]["l10n_br_numero_nota_fiscal"] = by_id[7]["l10n_br_numero_nota_fiscal"]  # same NF on two moves
    lines[16]["quantity"] = float("nan")
    lines[17]["price_unit"] = float("inf")
    lines[18]["quantity"] = -3.0
    lines[19]["partner_id"] = [999, "Parceiro Sumido"]  # many2one to a missing record
    lines[20]["l10n_br_total_nfe"] = False
    lines.append(dict(lines[21]))  # the same line twice
    moves.append({**by_id[8], "state": "cancel"})  # the same move twice: the first wins
    partners[0]["name"] = "\udc80 broken utf-8 \udcff"  # what invalid UTF-8 decodes to with surrogateescape
    templates[0]["name"] = HOSTILE
    for model, records in (("account.move", moves), ("account.move.line", lines), ("res.partner", partners),
                           ("product.template", templates)):  # fmt: skip
        (path / f"{model}.json").write_text(json.dumps(records))
    return path


EXPECTED_REJECTED = {
    "no_invoice_date": 2, "nf_number_on_several_moves": 4, "quantity_not_positive": 2, "number_out_of_range": 1,
}  # fmt: skip


def _check(url: str, run_dir: Path) -> None:
    manifest = read_manifest(run_dir)
    rejected = read_part(run_dir, "rejected")
    reasons = dict(zip(*rejected.group_by("reason").len().sort("reason").to_dict(as_series=False).values()))
    assert reasons == dict(sorted(EXPECTED_REJECTED.items()))
    assert manifest["counts"]["odoo_lines"] == 24  # the repeated line counts once
    assert manifest["counts"]["inserts"] + sum(EXPECTED_REJECTED.values()) == 24
    rows = read_table(url, "faturamento_produto", ["numero_nf", "nome_cliente", "origem", "nome_produto", "status_nf", "data_fatura"])
    by_nf = {r[0]: r for r in rows.rows()}
    assert by_nf["100001"][1] == HOSTILE.strip() and by_nf["100001"][2] == HOSTILE[:20].rstrip()
    assert "100002" in by_nf  # NUL removed
    assert by_nf["100003"][1] == "N" * 255
    assert str(by_nf["100004"][5]) == "2026-01-05"  # the line's date
    assert by_nf["100008"][4] == "SEM_LOTE"  # posted (the first of the repeated moves); no shipment, so no lot
    # The hostile order number went through the stock stage's keys and COPY unchanged.
    hostile_order = (HOSTILE[:20].rstrip(),)
    assert scalar(url, "SELECT count(*) FROM movimentacao_estoque WHERE numero_nf = '100001' AND num_pedido = $1", hostile_order) > 0
    assert scalar(url, "SELECT count(*) FROM inconsistencia_faturamento WHERE num_pedido = $1", hostile_order) == 1
    assert scalar(url, "SELECT count(*) FROM faturamento_produto WHERE position(chr(1) in nome_cliente) > 0") == 0
    assert scalar(url, "SELECT count(*) FROM pg_tables WHERE tablename = 'faturamento_produto'") == 1


@pytest.mark.parametrize("transport", ["source", "jsonrpc", "xmlrpc", "json2"])
def test_hostile_data_through_the_pipeline(transport, db_url, tmp_path, monkeypatch):
    ds = _hostile_dataset(tmp_path / "odoo")
    runs = tmp_path / "runs"
    common = ["--database-url", db_url, "--artifacts-dir", str(runs), "--max-reject-ratio", "1"]
    if transport == "source":
        assert main(["sync", "--source", str(ds), *common]) == 0
    else:
        with ReplayServer(ds) as odoo:
            meta = odoo.meta
            monkeypatch.setenv("ODOO_PASSWORD", meta["password"])
            monkeypatch.setenv("ODOO_API_KEY", meta["api_key"] if transport == "json2" else "")
            code = main(["sync", "--odoo-url", odoo.url, "--odoo-db", meta["db"], "--odoo-user", meta["login"],
                         "--transport", transport, "--state-dir", str(tmp_path / "state"), *common])  # fmt: skip
            assert code == 0
    _check(db_url, max(runs.iterdir()))
