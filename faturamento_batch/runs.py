"""`runs list` and `runs show`: the run history from `sync_runs`, and a run's manifest.

Failed runs write nothing to the database (their transaction is rolled back),
so they appear only in their artifacts; `runs list` adds them from there.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl

from . import artifacts
from .db.connection import database_url
from .errors import ConfigError
from .settings import Settings


def _db_runs(settings: Settings, limit: int) -> pl.DataFrame:
    import connectorx as cx


    url = database_url(settings)
    query = (
        "SELECT run_id, job, mode, status, started_at, finished_at, cursor_from, cursor_to, "
        "counts::text AS counts, artifacts_dir FROM sync_runs ORDER BY started_at DESC, id DESC LIMIT "
        + str(int(limit))
    )
    try:
        return cx.read_sql(url, query, return_type="polars")
    except Exception as exc:
        raise ConfigError(f"cannot read `sync_runs` (run `faturamento-batch init-db` first?): {exc}") from exc


def _artifact_runs(settings: Settings) -> list[dict]:
    root = settings.artifacts_dir
    if not root.is_dir():
        return []
    found = []
    for run_dir in root.iterdir():
        try:
            found.append({**artifacts.read_manifest(run_dir), "artifacts_dir": str(run_dir)})
        except (OSError, ValueError):
            continue
    return found


def run_rows(settings: Settings, limit: int = 20) -> list[dict]:
    """Recent runs, newest first: committed ones from the database, failed ones from artifacts."""
    rows = []
    committed = set()
    frame = _db_runs(settings, limit)
    for r in frame.to_dicts():  # at most `limit` rows of history, not data
        counts = json.loads(r["counts"]) if r["counts"] else {}
        committed.add(r["run_id"])
        seconds = (r["finished_at"] - r["started_at"]).total_seconds() if r["finished_at"] else None
        rows.append({**r, "counts": counts, "seconds": seconds})
    for m in _artifact_runs(settings):
        if m.get("run_id") in committed or m.get("status") == "success":
            continue
        rows.append({
            "run_id": m.get("run_id"), "job": m.get("job"), "mode": m.get("mode"), "status": m.get("status"),
            "started_at": m.get("started_at"), "finished_at": m.get("finished_at"), "counts": m.get("counts", {}),
            "seconds": m.get("timings", {}).get("total"), "artifacts_dir": m.get("artifacts_dir"),
            "error": m.get("error"),
        })  # fmt: skip
    rows.sort(key=lambda r: str(r.get("started_at") or ""), reverse=True)
    return rows[:limit]


def list_runs(settings: Settings, limit: int = 20, as_json: bool = False) -> int:
    rows = run_rows(settings, limit)
    if as_json:
        print(json.dumps(rows, default=str, indent=2))
        return 0
    if not rows:
        print("no runs yet", file=sys.stderr)
        return 0
    header = f"{'started (UTC)':19}  {'run id':24}  {'mode':11}  {'status':8}  {'ins':>7}  {'status':>6}  {'cancel':>6}  {'drift':>6}  {'rej':>5}  {'secs':>7}"
    print(header)
    for r in rows:
        c = r.get("counts") or {}
        secs = f"{r['seconds']:.2f}" if r.get("seconds") is not None else "-"
        print(
            f"{str(r.get('started_at'))[:19]:19}  {str(r.get('run_id')):24}  {str(r.get('mode')):11}  {str(r.get('status')):8}  "
            f"{c.get('inserts', 0):>7}  {c.get('status_changes', 0):>6}  {c.get('cancellations', 0):>6}  "
            f"{c.get('drift', 0):>6}  {c.get('rejected', 0):>5}  {secs:>7}"
        )
    return 0


def find_run_dir(settings: Settings, run: str | None) -> Path:
    root = settings.artifacts_dir
    if not root.is_dir():
        raise ConfigError(f"no runs under `{root}` (pass `--artifacts-dir`)")
    dirs = [d for d in root.iterdir() if (d / artifacts.MANIFEST).is_file()]
    if run:
        dirs = [d for d in dirs if d.name == run or d.name.startswith(run)]
    if not dirs:
        raise ConfigError(f"no run `{run}` under `{root}`" if run else f"no runs under `{root}`")
    return max(dirs, key=lambda d: d.name)


def show_run(settings: Settings, run: str | None, as_json: bool = False) -> int:
    run_dir = find_run_dir(settings, run)
    manifest = artifacts.read_manifest(run_dir)
    if as_json:
        print(json.dumps(manifest, indent=2, ensure_ascii=False))
        return 0
    from .commands import summary_text
    from .pipeline import RunResult

    print(summary_text(RunResult(manifest["run_id"], run_dir, manifest)))
    if manifest.get("error"):
        print(f"  error: {manifest['error']}")
    if manifest.get("downstream"):
        for key, values in manifest["downstream"].items():
            shown = ", ".join(values[:10]) + (f" … (+{len(values) - 10})" if len(values) > 10 else "")
            print(f"  {key}: {shown or '-'}")
    print("  parts: " + ", ".join(f"{p} ({f})" for p, f in manifest.get("artifacts", {}).items()))
    return 0
