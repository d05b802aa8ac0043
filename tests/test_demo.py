"""The README's first command: `faturamento-batch demo` on a fresh directory."""

from __future__ import annotations

import tempfile
from pathlib import Path

from faturamento_batch.artifacts import read_manifest
from faturamento_batch.cli import main


def test_demo_runs_full_then_incremental(tmp_path, monkeypatch, capsys):
    # Outside pytest's 0700 tmp tree: as root, the embedded server runs as an unprivileged user.
    state = Path(tempfile.mkdtemp(prefix="fb-demo-"))
    state.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--state-dir", str(state)]) == 0
    err = capsys.readouterr().err
    assert "== day 1: first run (full) over JSON-RPC ==" in err and "== day 2: incremental run" in err
    # Both runs may start within the same second: order them by their start time.
    first, second = sorted((read_manifest(r) for r in (tmp_path / "runs").iterdir()), key=lambda m: m["started_at"])
    assert first["mode"] == "full" and first["status"] == "success" and first["counts"]["inserts"] > 1000
    assert second["mode"] == "incremental" and second["status"] == "success"
    c = second["counts"]
    assert c["inserts"] > 0 and c["cancellations"] > 0 and c["reactivations"] > 0 and c["drift"] > 0
    assert second["written"]["movimentacao_estoque.cancel"] > 0  # the cascade reached the seeded stock rows
    assert second["odoo"]["total_calls"] > 0 and second["counts"]["odoo_lines"] < first["counts"]["odoo_lines"]
