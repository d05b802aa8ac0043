"""record → replay round trip: a recorded dataset reproduces the same database."""

from __future__ import annotations

import json
import re

from faturamento_batch.cli import main
from faturamento_batch.replay import ReplayServer

from .builders import build_dataset
from .test_sync_wire import _comparable


def _record(odoo: ReplayServer, dest, monkeypatch, *extra: str) -> int:
    meta = odoo.meta
    monkeypatch.setenv("ODOO_PASSWORD", meta["password"])
    return main(["record", str(dest), "--since", "2026-01-01", "--until", "2026-02-01", "--odoo-url", odoo.url,
                 "--odoo-db", meta["db"], "--odoo-user", meta["login"], *extra])  # fmt: skip


def test_record_then_sync_gives_the_same_database(db_url, second_db, tmp_path, monkeypatch):
    original = build_dataset(tmp_path / "orig", moves=25, cancelled={4})
    with ReplayServer(original) as odoo:
        assert _record(odoo, tmp_path / "rec", monkeypatch) == 0
    recorded = json.loads((tmp_path / "rec" / "account.move.line.json").read_text())
    assert len(recorded) == 75
    assert json.loads((tmp_path / "rec" / "meta.json").read_text())["password"] != "admin-secret-pw"
    for ds, url in ((original, db_url), (tmp_path / "rec", second_db)):
        assert main(["sync", "--source", str(ds), "--database-url", url, "--artifacts-dir", str(tmp_path / "runs")]) == 0
    assert _comparable(db_url) == _comparable(second_db)


def test_anonymized_recording_keeps_structure_and_hides_identities(tmp_path, monkeypatch):
    original = build_dataset(tmp_path / "orig", moves=10)
    partners = json.loads((original / "res.partner.json").read_text())
    partners[0]["name"] = "Fulano <fulano@empresa.com.br>"
    (original / "res.partner.json").write_text(json.dumps(partners))
    with ReplayServer(original) as odoo:
        assert _record(odoo, tmp_path / "anon", monkeypatch, "--anonymize") == 0
    text = (tmp_path / "anon" / "res.partner.json").read_text() + (tmp_path / "anon" / "account.move.line.json").read_text()
    assert "fulano@empresa.com.br" not in text
    anon_partners = json.loads((tmp_path / "anon" / "res.partner.json").read_text())
    originals = {p["name"] for p in partners} | {p["l10n_br_cnpj"] for p in partners}
    assert not originals & ({p["name"] for p in anon_partners} | {p["l10n_br_cnpj"] for p in anon_partners})
    lines = json.loads((tmp_path / "anon" / "account.move.line.json").read_text())
    names = {p["id"]: p["name"] for p in anon_partners}
    # Consistent: a line's partner display name is the partner's new name.
    assert all(ln["partner_id"][1] == names[ln["partner_id"][0]] for ln in lines)
    for p in anon_partners:
        digits = [int(c) for c in re.sub(r"\D", "", p["l10n_br_cnpj"])]
        assert len(digits) == 14 and _cnpj_ok(digits), p["l10n_br_cnpj"]


def _cnpj_ok(d: list[int]) -> bool:
    for n, weights in ((12, [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]), (13, [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2])):
        rest = sum(x * w for x, w in zip(d[:n], weights)) % 11
        if d[n] != (0 if rest < 2 else 11 - rest):
            return False
    return True
