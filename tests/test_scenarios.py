"""Fixture scenarios: an Odoo dataset + the database before + the expected database after.

Each folder under data/fixtures/ with a `scenario.json` is one scenario:

    {"description": "...",
     "before": {"<table>": [{"column": value, ...}, ...]},       # rows loaded first
     "runs": [{"load": {"<table>": [{...}, ...]},                 # rows loaded just before this run
               "command": "sync",                                 # or "stock" (no Odoo, no --source)
               "dataset": "odoo",                                 # folder with the Odoo JSON files
               "args": ["--apply-drift"],                         # extra arguments of the command
               "exit": 0,                                         # expected exit code
               "counts": {"inserts": 2, ...},                     # manifest counts that must match
               "stock": {"nfs_with_lot": 1, "counts": {...}},     # manifest `stock` values that must match
               "written": {"inconsistencia_faturamento.cancel": 1},   # manifest `written` values
               "downstream": {"nfs_to_reprocess": ["1001"]},     # `downstream` part lists that must match
               "rejected": [[line_id, "reason"], ...],           # the rejected part, exactly
               "tables": {"<table>": {"columns": [...], "rows": [[...], ...]}}}]}   # rows as text, any order

Table values are compared as text (numerics at their column scale, '3.000'; floats and
booleans as Polars prints them, '1.0', 'true'; timestamps as '2026-01-01 00:00:00.000000');
null is null. Where the run itself sets a value (a timestamp, a generated text) the
expected cell may be a token instead of a literal:
    "<set>"              not null, and not the timestamp the loader gives rows by default
                         (so an audit column the run should have written really was);
    "<contains:A|B|…>"   a text containing every one of A, B, …
`load` is what the logistics application did between two runs (a shipment created, …).
After the last run, the same run is repeated (`sync` as a full run) and must write nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from faturamento_batch.artifacts import read_manifest, read_part
from faturamento_batch.diff import downstream_lists
from faturamento_batch.cli import main

from .conftest import FIXTURES
from .dbutil import FIXED_TS_TEXT, load_rows, read_table, snapshot

SCENARIOS = sorted(p for p in FIXTURES.iterdir() if (p / "scenario.json").is_file()) if FIXTURES.is_dir() else []


def _latest_run(runs_dir: Path) -> Path:
    return max(runs_dir.iterdir(), key=lambda p: p.stat().st_mtime_ns)


def _sync(scenario: Path, run: dict, db_url: str, runs_dir: Path) -> tuple[int, Path]:
    command = run.get("command", "sync")
    source = ["--source", str(scenario / run.get("dataset", "odoo"))] if command == "sync" else []
    argv = [command, *source, "--database-url", db_url, "--artifacts-dir", str(runs_dir), *run.get("args", [])]
    code = main(argv)
    return code, _latest_run(runs_dir)


def _sort_key(row: tuple) -> tuple:
    return tuple("" if v is None else v for v in row)


def _as_text(frame: pl.DataFrame) -> list[tuple]:
    return sorted(frame.select(pl.all().cast(pl.String)).rows(), key=_sort_key)


def _token_matches(token: str, value: str | None) -> bool:
    if value is None:
        return False
    if token == "<set>":
        return value != FIXED_TS_TEXT
    if token.startswith("<contains:") and token.endswith(">"):
        return all(part in value for part in token[len("<contains:") : -1].split("|"))
    raise ValueError(f"unknown token `{token}` in a scenario")


def _is_token(value) -> bool:
    return isinstance(value, str) and value.startswith("<") and value.endswith(">")


def _masked(got: list[tuple], want: list[tuple]) -> list[tuple]:
    """`got` with each value of a token column replaced by the token it satisfies.

    A value that equals one of the column's literal expectations stays as it is, so a
    column may mix literals (rows the run left alone) and tokens (rows it wrote)."""
    columns = list(zip(*want)) if want else []
    out = [list(r) for r in got]
    for i, expected in enumerate(columns):
        tokens = sorted({v for v in expected if _is_token(v)})
        if not tokens:
            continue
        literals = {v for v in expected if not _is_token(v)}
        for row in out:
            if row[i] not in literals:
                row[i] = next((t for t in tokens if _token_matches(t, row[i])), row[i])
    return sorted((tuple(r) for r in out), key=_sort_key)


def _check_subset(got: dict, want: dict, where: str) -> None:
    """Every key of `want` (nested dicts key by key) has that value in `got`."""
    for key, expected in want.items():
        if isinstance(expected, dict):
            _check_subset(got.get(key) or {}, expected, f"{where}.{key}")
        else:
            assert got.get(key) == expected, f"manifest `{where}.{key}`: {got.get(key)} != {expected}"


def _check_run(run: dict, db_url: str, run_dir: Path) -> None:
    manifest = read_manifest(run_dir)
    for part, expected in run.get("counts", {}).items():
        assert manifest["counts"][part] == expected, f"count of `{part}`"
    _check_subset(manifest.get("stock") or {}, run.get("stock", {}), "stock")
    _check_subset(manifest.get("written") or {}, run.get("written", {}), "written")
    listed = downstream_lists(read_part(run_dir, "downstream")) if run.get("downstream") else {}
    for key, expected in run.get("downstream", {}).items():
        assert listed[key] == sorted(expected), f"downstream `{key}`"
        assert manifest["downstream"][key] == len(expected), f"downstream count `{key}`"
    if "rejected" in run:
        got = read_part(run_dir, "rejected").select("odoo_line_id", "reason").sort("odoo_line_id").rows()
        assert [list(r) for r in got] == sorted(run["rejected"])
    for table, spec in run.get("tables", {}).items():
        want = sorted((tuple(r) for r in spec["rows"]), key=_sort_key)
        got = _masked(_as_text(read_table(db_url, table, spec["columns"])), want)
        assert got == want, f"table `{table}`"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_scenario(scenario: Path, db_url: str, tmp_path: Path) -> None:
    spec = json.loads((scenario / "scenario.json").read_text())
    load_rows(db_url, spec.get("before", {}))
    runs_dir = tmp_path / "runs"
    for run in spec["runs"]:
        load_rows(db_url, run.get("load", {}))
        code, run_dir = _sync(scenario, run, db_url, runs_dir)
        assert code == run.get("exit", 0), read_manifest(run_dir).get("error")
        _check_run(run, db_url, run_dir)

    # Idempotency: the same run again finds the database already matching Odoo.
    last = spec["runs"][-1]
    if last.get("exit", 0) == 0:
        before = snapshot(db_url)
        full = ["--full"] if last.get("command", "sync") == "sync" else []
        code, run_dir = _sync(scenario, {**last, "args": [*last.get("args", []), *full]}, db_url, runs_dir)
        assert code == 0
        manifest = read_manifest(run_dir)
        assert manifest["rows_to_write"] == 0, manifest["counts"]
        after = snapshot(db_url)
        for table in before:
            if table not in ("sync_runs", "sync_state"):
                assert after[table] == before[table], f"table `{table}` changed on the repeated run"
