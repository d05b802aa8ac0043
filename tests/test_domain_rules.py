"""Production's Odoo domain (DESIGN §10) through the replay server: the five invoice types,
company 5 excluded, NFs without an order rejected as `no_origin` outside the reject ratio."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faturamento_batch.artifacts import read_manifest, read_part
from faturamento_batch.cli import main
from faturamento_batch.odoo.dataset import DatasetSource
from faturamento_batch.odoo.extract import OdooSource
from faturamento_batch.odoo.fields import LINE, MOVE
from faturamento_batch.odoo.transport import Credentials, make_transport
from faturamento_batch.replay import ReplayServer

from .builders import build_dataset
from .dbutil import scalar

FIRST_NF = 100_000
# move id → what the rules make of it
TYPES = {1: "venda", 2: "bonificacao", 3: "industrializacao", 4: "exportacao", 5: "venda-industrializacao"}
OUTSIDE_TYPE = 6  # "compra": not read
COMPANY_5 = 7  # a venda of the excluded company: not read
NO_COMPANY = 8  # no company_id at all (an older dataset): read
NO_ORIGIN = {9: False, 10: "", 11: "false", 12: "  "}  # read, rejected as no_origin


def _dataset(path: Path) -> Path:
    build_dataset(path, moves=12, lines_per_move=2, first_nf=FIRST_NF)
    moves = json.loads((path / f"{MOVE}.json").read_text())
    for move in moves:
        mid = move["id"]
        move["l10n_br_tipo_pedido"] = TYPES.get(mid, "compra" if mid == OUTSIDE_TYPE else "venda")
        move["company_id"] = [5, "Intercompany"] if mid == COMPANY_5 else [1, "Nacom"]
        if mid == NO_COMPANY:
            del move["company_id"]
        if mid in NO_ORIGIN:
            move["invoice_origin"] = NO_ORIGIN[mid]
    (path / f"{MOVE}.json").write_text(json.dumps(moves))
    return path


def _nf(mid: int) -> str:
    return str(FIRST_NF + mid)


IMPORTED = sorted(_nf(m) for m in (*TYPES, NO_COMPANY))
REJECTED = sorted(_nf(m) for m in NO_ORIGIN)


def _sync(odoo: ReplayServer, url: str, runs: Path, monkeypatch, *args: str) -> tuple[int, dict, Path]:
    monkeypatch.setenv("ODOO_PASSWORD", odoo.meta["password"])
    code = main(["sync", "--odoo-url", odoo.url, "--odoo-db", odoo.meta["db"], "--odoo-user", odoo.meta["login"],
                 "--database-url", url, "--artifacts-dir", str(runs), "--state-dir", str(runs.parent / "state"),
                 "--no-stock", *args])  # fmt: skip
    latest = max(runs.iterdir(), key=lambda p: p.stat().st_mtime_ns)
    return code, read_manifest(latest), latest


def _stored_nfs(url: str) -> list[str]:
    text = scalar(url, "SELECT coalesce(string_agg(DISTINCT numero_nf, ',' ORDER BY numero_nf), '') FROM faturamento_produto")
    return [nf for nf in text.split(",") if nf]


@pytest.mark.parametrize("chunk_size", ["0", "3"])  # one piece, and chunked full runs
def test_the_domain_rules_over_the_wire(db_url, tmp_path, monkeypatch, chunk_size):
    ds = _dataset(tmp_path / "odoo")
    with ReplayServer(ds) as odoo:
        # 4 of 9 read NFs (8 of 18 lines) have no order: far above 5 %, and the run is not aborted.
        code, manifest, run_dir = _sync(odoo, db_url, tmp_path / "runs", monkeypatch, "--chunk-size", chunk_size)
    assert code == 0, manifest.get("error")
    assert _stored_nfs(db_url) == IMPORTED
    rejected = read_part(run_dir, "rejected")
    assert sorted(rejected.get_column("numero_nf").unique().to_list()) == REJECTED
    assert set(rejected.get_column("reason")) == {"no_origin"} and rejected.height == 2 * len(NO_ORIGIN)
    assert manifest["counts"]["policy_rejected"] == 2 * len(NO_ORIGIN)
    assert manifest["counts"]["odoo_lines"] == 2 * (len(IMPORTED) + len(REJECTED))  # company 5 and compra never read
    assert manifest["reject_ratio"] == 0
    assert manifest["rules"]["excluded_companies"] == [5]


@pytest.mark.parametrize("chunk_size", ["0", "40000"])  # the one-piece and the chunked full run
def test_bad_data_still_trips_the_ratio_beside_policy_rejections(db_url, tmp_path, monkeypatch, chunk_size):
    ds = _dataset(tmp_path / "odoo")
    lines = json.loads((ds / f"{LINE}.json").read_text())
    lines[0]["quantity"] = 0.0  # 1 bad line of the 12 importable ones: 8.3 % (with the 8 no_origin: 45 %)
    (ds / f"{LINE}.json").write_text(json.dumps(lines))
    with ReplayServer(ds) as odoo:
        code, manifest, _ = _sync(odoo, db_url, tmp_path / "runs", monkeypatch, "--max-reject-ratio", "0.08", "--chunk-size", chunk_size)
        assert code == 1 and manifest["error_type"] == "RejectRatioExceeded"
        assert "no_origin" not in manifest["error"]
        code, manifest, _ = _sync(odoo, db_url, tmp_path / "runs2", monkeypatch, "--max-reject-ratio", "0.09", "--chunk-size", chunk_size)
    assert code == 0 and manifest["reject_ratio"] == pytest.approx(1 / 12, abs=1e-6)


def test_the_rules_change_the_domain(tmp_path):
    ds = _dataset(tmp_path / "odoo")
    with ReplayServer(ds) as odoo:
        creds = Credentials(odoo.url, odoo.meta["db"], odoo.meta["login"], odoo.meta["password"], None)
        from faturamento_batch.config import Rules

        rules = Rules(invoice_types=("venda", "compra"), excluded_companies=())
        wire = OdooSource(make_transport("jsonrpc", creds), rules=rules).extract(None)
    local = DatasetSource(ds, rules).extract(None)
    expected = sorted({m for m in range(1, 13) if m not in (2, 3, 4, 5)})  # the other types out, company 5 in
    for batch in (wire, local):
        assert sorted(batch.frames[LINE].get_column("move_id").unique().to_list()) == expected


def test_the_replay_serves_company_id_as_odoo_does(tmp_path):
    from faturamento_batch.replay.data import ReplayData

    data = ReplayData(_dataset(tmp_path / "odoo"))
    assert data.execute(MOVE, "fields_get", [], {"attributes": ["type", "relation"]})["company_id"] == {
        "type": "many2one", "relation": "res.company"}  # fmt: skip
    rows = data.execute(MOVE, "search_read", [[("company_id", "not in", [5])]], {"fields": ["company_id"]})
    # a move without the field reads as false and is kept by `not in`, as Odoo keeps a null
    assert {r["id"]: r["company_id"] for r in rows if r["id"] in (COMPANY_5, NO_COMPANY)} == {NO_COMPANY: False}
