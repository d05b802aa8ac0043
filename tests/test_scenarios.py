"""Fixture scenarios: an Odoo dataset + the database before + the expected database after.

Each folder under data/fixtures/ with a `scenario.json` is one scenario:

    {"description": "...",
     "before": {"<table>": [{"column": value, ...}, ...]},       # rows loaded first
     "runs": [{"dataset": "odoo",                                 # folder with the Odoo JSON files
               "args": ["--apply-drift"],                         # extra `sync` arguments
               "exit": 0,                                         # expected exit code
               "counts": {"inserts": 2, ...},                     # manifest counts that must match
               "downstream": {"nfs_to_reprocess": ["1001"]},     # manifest lists that must match
               "rejected": [[line_id, "reason"], ...],           # the rejected part, exactly
               "tables": {"<table>": {"columns": [...], "rows": [[...], ...]}}}]}   # rows as text, any order

Table values are compared as text (numerics at their column scale, '3.000'; floats and
booleans as Polars prints them, '1.0', 'true');
null is null. After the last run, the same run is repeated and must write nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from faturamento_batch.artifacts import read_manifest, read_part
from faturamento_batch.cli import main

from .conftest import FIXTURES
from .dbutil import load_rows, read_table, snapshot

SCENARIOS = sorted(p for p in FIXTURES.iterdir() if (p / "scenario.json").is_file()) if FIXTURES.is_dir() else []


def _latest_run(runs_dir: Path) -> Path:
    return max(runs_dir.iterdir(), key=lambda p: p.stat().st_mtime_ns)


def _sync(scenario: Path, run: dict, db_url: str, runs_dir: Path) -> tuple[int, Path]:
    argv = [
        "sync", "--source", str(scenario / run.get("dataset", "odoo")), "--database-url", db_url,
        "--artifacts-dir", str(runs_dir), *run.get("args", []),
    ]  # fmt: skip
    code = main(argv)
    return code, _latest_run(runs_dir)


def _as_text(frame: pl.DataFrame) -> list[tuple]:
    return sorted(
        frame.select(pl.all().cast(pl.String)).rows(), key=lambda r: tuple("" if v is None else v for v in r)
    )


def _check_run(run: dict, db_url: str, run_dir: Path) -> None:
    manifest = read_manifest(run_dir)
    for part, expected in run.get("counts", {}).items():
        assert manifest["counts"][part] == expected, f"count of `{part}`"
    for key, expected in run.get("downstream", {}).items():
        assert manifest["downstream"][key] == sorted(expected), f"downstream `{key}`"
    if "rejected" in run:
        got = read_part(run_dir, "rejected").select("odoo_line_id", "reason").sort("odoo_line_id").rows()
        assert [list(r) for r in got] == sorted(run["rejected"])
    for table, spec in run.get("tables", {}).items():
        got = _as_text(read_table(db_url, table, spec["columns"]))
        want = sorted((tuple(r) for r in spec["rows"]), key=lambda r: tuple("" if v is None else v for v in r))
        assert got == want, f"table `{table}`"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_scenario(scenario: Path, db_url: str, tmp_path: Path) -> None:
    spec = json.loads((scenario / "scenario.json").read_text())
    load_rows(db_url, spec.get("before", {}))
    runs_dir = tmp_path / "runs"
    for run in spec["runs"]:
        code, run_dir = _sync(scenario, run, db_url, runs_dir)
        assert code == run.get("exit", 0), read_manifest(run_dir).get("error")
        _check_run(run, db_url, run_dir)

    # Idempotency: the same run again finds the database already matching Odoo.
    last = spec["runs"][-1]
    if last.get("exit", 0) == 0:
        before = snapshot(db_url)
        code, run_dir = _sync(scenario, {**last, "args": [*last.get("args", []), "--full"]}, db_url, runs_dir)
        assert code == 0
        manifest = read_manifest(run_dir)
        assert manifest["rows_to_write"] == 0, manifest["counts"]
        after = snapshot(db_url)
        for table in before:
            if table not in ("sync_runs", "sync_state"):
                assert after[table] == before[table], f"table `{table}` changed on the repeated run"
