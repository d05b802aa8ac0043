"""Soak (slow, not in .ci/run): 200 incremental runs against a replay Odoo whose data
changes every run, with random injected faults. Run with `pytest -m slow tests/test_soak.py -s`.

Checks that the end state equals a clean full sync of the final data (for everything
an incremental run can see: keys, statuses, amounts, the cascade), that no row was
lost, and that memory does not grow from run to run.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest

from faturamento_batch.cli import main
from faturamento_batch.generator import generate_dataset, generate_next_day

from .dbutil import read_table, scalar

RUNS = int(os.environ.get("FB_SOAK_RUNS", "200"))
FAULTS = [
    {}, {}, {},
    {"fail_next": 2}, {"fail_next": 8}, {"reset_next": 2}, {"truncate_next": 1}, {"short_page_next": 2},
    {"timeout_next": 1, "hang_seconds": 3.0},
]  # fmt: skip
VISIBLE = ["numero_nf", "cod_produto", "status_nf", "qtd_produto_faturado", "preco_produto_faturado", "valor_produto_faturado"]


def _visible_state(url: str) -> dict:
    return {
        "lines": sorted(read_table(url, "faturamento_produto", VISIBLE).rows()),
        "consolidation": sorted(read_table(url, "relatorio_faturamento_importado", ["numero_nf", "ativo"]).rows()),
        "products": sorted(read_table(url, "cadastro_palletizacao", ["cod_produto"]).rows()),
    }


class _ReplayProcess:
    """The replay Odoo in its own process, so its memory is not the job's."""

    def __init__(self, dataset):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "faturamento_batch.cli", "odoo-replay", str(dataset),
                                      "--port", str(self.port)], stderr=subprocess.DEVNULL)  # fmt: skip
        self.meta = json.loads((dataset / "meta.json").read_text())
        for _ in range(100):
            try:
                urllib.request.urlopen(self.url + "/replay/stats", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("replay server did not start")

    def post(self, path: str, body: dict | None = None) -> None:
        req = urllib.request.Request(self.url + path, data=json.dumps(body or {}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
        urllib.request.urlopen(req, timeout=10).read()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.mark.slow
def test_soak(db_url, second_db, tmp_path, monkeypatch):
    rng = random.Random(11)
    days = tmp_path / "days"
    served = tmp_path / "served"
    generate_dataset(days / "0", 2_000, seed=3)
    shutil.copytree(days / "0", served)
    runs = tmp_path / "runs"
    outcomes = {"ok": 0, "failed": 0, "faults": 0}
    rss = []
    odoo = _ReplayProcess(served)
    try:
        monkeypatch.setenv("ODOO_PASSWORD", odoo.meta["password"])
        args = ["sync", "--odoo-url", odoo.url, "--odoo-db", odoo.meta["db"], "--odoo-user", odoo.meta["login"],
                "--database-url", db_url, "--artifacts-dir", str(runs), "--state-dir", str(tmp_path / "state"),
                "--apply-drift", "--page-size", "500"]  # fmt: skip
        for i in range(1, RUNS + 1):
            generate_next_day(days / str(i - 1), days / str(i), seed=i)
            shutil.rmtree(days / str(i - 1))
            for f in (days / str(i)).glob("*.json"):
                shutil.copyfile(f, served / f.name)
            odoo.post("/replay/reload")
            fault = rng.choice(FAULTS)
            outcomes["faults"] += bool(fault)
            odoo.post("/replay/faults", fault)
            code = main(args)
            outcomes["ok" if code == 0 else "failed"] += 1
            assert code in (0, 1, 75), code  # the injected faults are transient: 75 expected
            shutil.rmtree(runs, ignore_errors=True)  # keep the disk flat over 200 runs
            rss.append(psutil.Process().memory_info().rss)
        odoo.post("/replay/faults", {})
        assert main(args) == 0  # a last clean incremental catches up on a failed final run
    finally:
        odoo.stop()
    final = days / str(RUNS)
    assert main(["sync", "--source", str(final), "--database-url", second_db, "--artifacts-dir", str(tmp_path / "ref")]) == 0
    assert _visible_state(db_url) == _visible_state(second_db)
    growth_mb = (rss[-1] - rss[len(rss) // 10]) / 1e6
    print(f"soak: {RUNS} runs, {outcomes}, rss after run {len(rss) // 10}: {rss[len(rss) // 10] / 1e6:.0f} MB, "
          f"after run {RUNS}: {rss[-1] / 1e6:.0f} MB (growth {growth_mb:.1f} MB), "
          f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB, "
          f"lines {scalar(db_url, 'SELECT count(*) FROM faturamento_produto')}")  # fmt: skip
    assert growth_mb < 60
