"""A `sync` loads only what a run uses (issue 20: ~138 MB of an incremental run's peak was imports).

SQLAlchemy is for init-db's DDL; the replay server, the generator, the notebook's
analysis and plotting are other commands' tools. Each check runs in a fresh
interpreter and reads its `sys.modules`, so nothing a test imported before
counts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from faturamento_batch.generator import generate_dataset

REPO = Path(__file__).resolve().parent.parent
NEVER_IN_SYNC = ("sqlalchemy", "matplotlib", "dlt", "faturamento_batch.replay", "faturamento_batch.generator",
                 "faturamento_batch.analysis", "faturamento_batch.db.schema", "faturamento_batch.commands.demo")  # fmt: skip

_PROBE = """
import json, sys
from faturamento_batch.cli import main
code = main(sys.argv[1:])
print(json.dumps({"exit": code, "modules": sorted(sys.modules)}))
"""


def _modules_after(*argv: str) -> tuple[int, set[str]]:
    proc = subprocess.run([sys.executable, "-c", _PROBE, *argv], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["exit"], set(out["modules"])


def _loaded(modules: set[str], name: str) -> bool:
    return name in modules or any(m.startswith(name + ".") for m in modules)


def test_sync_help_loads_no_data_library():
    code, modules = _modules_after("sync", "--help")
    assert code == 0
    heavy = ("polars", "pyarrow", "connectorx", "adbc_driver_manager", "numpy", *NEVER_IN_SYNC)
    assert [m for m in heavy if _loaded(modules, m)] == []


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ds") / "dataset"
    generate_dataset(path, 400, seed=4)
    return path


@pytest.mark.parametrize("extra", [("--full",), ()], ids=["full", "incremental"])
def test_a_sync_run_does_not_load_other_commands_tools(db_url, tmp_path, dataset, extra):
    code, modules = _modules_after("sync", *extra, "--source", str(dataset), "--database-url", db_url,
                                   "--artifacts-dir", str(tmp_path / "runs"), "--state-dir", str(tmp_path / "state"))  # fmt: skip
    assert code == 0
    assert _loaded(modules, "faturamento_batch.pipeline")  # it really ran
    assert [m for m in NEVER_IN_SYNC if _loaded(modules, m)] == []
