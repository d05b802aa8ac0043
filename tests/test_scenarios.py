"""Fixture scenarios: an Odoo dataset + the database before + the expected database after.

Each folder under data/fixtures/ with a `scenario.json` is one scenario:

    {"description": "...",
     "setup_sql": ["ALTER TABLE …", ...],                         # first: §10's optional columns/tables
     "before": {"<table>": [{"column": value, ...}, ...]},       # rows loaded first
     "runs": [{"load": {"<table>": [{...}, ...]},                 # rows loaded just before this run
               "sql": ["UPDATE …", ...],                          # statements run after `load`
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

Every scenario runs on two databases: `init-db`'s schema (the appendix) and one shaped like
production today (tests/prod_schema.py). Where the expectation legitimately differs on
production's schema, `_on_production` rewrites the scenario, and says what it changed.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import polars as pl
import pytest

from faturamento_batch.artifacts import read_manifest, read_part
from faturamento_batch.diff import downstream_lists
from faturamento_batch.cli import main

from .conftest import FIXTURES
from .dbutil import FIXED_TS_TEXT, execute, load_rows, read_table, snapshot

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


INCONSISTENCIES = "inconsistencia_faturamento"


def _on_production(spec: dict) -> tuple[dict, list[str]]:
    """The scenario as it must read on production's schema, and what was changed (DESIGN §10).

    Production dropped `inconsistencia_faturamento`: no inconsistency rows can be loaded before a
    run or expected after it, none is read (so none is resolved) and none is written; every
    other expectation — lots, movements, items, separations, statuses, justifications — holds as is.
    """
    spec = copy.deepcopy(spec)
    changed: list[str] = []

    def drop(where: dict, key: str, what: str) -> None:
        if key in where:
            del where[key]
            changed.append(what)

    # The optional columns and tables a scenario adds to init-db's schema are production's already:
    # its DDL is left out, its rows are kept.
    ddl = [q for q in spec.get("setup_sql", []) if q.lstrip().upper().startswith(("CREATE ", "ALTER "))]
    if ddl:
        spec["setup_sql"] = [q for q in spec["setup_sql"] if q not in ddl]
        changed.append(f"{len(ddl)} DDL statement(s) of setup_sql left out: production's schema has those parts")
    drop(spec.get("before", {}), INCONSISTENCIES, f"rows of `{INCONSISTENCIES}` loaded before")
    for i, run in enumerate(spec["runs"]):
        drop(run.get("load", {}), INCONSISTENCIES, f"run {i}: rows of `{INCONSISTENCIES}` loaded")
        drop(run.get("tables", {}), INCONSISTENCIES, f"run {i}: expected `{INCONSISTENCIES}` rows")
        for key in [k for k in run.get("written", {}) if k.startswith(INCONSISTENCIES)]:
            del run["written"][key]  # and no such key at all (checked after each run)
            changed.append(f"run {i}: no `{key}` written")
        stock = run.get("stock", {})
        for section in ("counts", "planned"):
            for key in [k for k in stock.get(section, {}) if k.startswith("inconsistencies_")]:
                stock[section][key] = 0  # none planned, none written: the reason per NF is in `stock_assignments`
                changed.append(f"run {i}: stock.{section}.{key} = 0")
    return spec, changed


@pytest.fixture(params=["init_db", "production"])
def schema_db(request) -> tuple[str, str]:
    """(schema name, URL of a fresh database with that schema)."""
    fixture = "db_url" if request.param == "init_db" else "prod_db_url"
    return request.param, request.getfixturevalue(fixture)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_scenario(scenario: Path, schema_db: tuple[str, str], tmp_path: Path) -> None:
    which, db_url = schema_db
    spec = json.loads((scenario / "scenario.json").read_text())
    if which == "production":
        spec, changed = _on_production(spec)
        if changed:
            print(f"{scenario.name} on production's schema: " + "; ".join(changed))
    execute(db_url, *spec.get("setup_sql", []))
    load_rows(db_url, spec.get("before", {}))
    runs_dir = tmp_path / "runs"
    for run in spec["runs"]:
        load_rows(db_url, run.get("load", {}))
        execute(db_url, *run.get("sql", []))
        code, run_dir = _sync(scenario, run, db_url, runs_dir)
        assert code == run.get("exit", 0), read_manifest(run_dir).get("error")
        _check_run(run, db_url, run_dir)
        if which == "production":  # the run found the schema as it is, and created nothing
            assert read_manifest(run_dir)["features"]["inconsistencia_faturamento"] is False
            assert INCONSISTENCIES not in snapshot(db_url)
            written = read_manifest(run_dir).get("written") or {}
            assert not [k for k in written if k.startswith(INCONSISTENCIES)], written

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
