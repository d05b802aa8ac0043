"""`runs list` and `runs show`: the run history from `sync_runs`, and a run's manifest.

Failed runs and dry runs write nothing to the database (their transaction is
rolled back), so they appear only in their artifacts; `runs list` adds them
from there.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import polars as pl

from .. import artifacts
from ..analysis.loading import CHANGESET_PARTS, STOCK_PARTS, run_dirs
from ..db.connection import database_url
from ..db.features import Features
from ..errors import ConfigError, FaturamentoError
from ..settings import Settings
from ..summary import summary_text

# Columns of `runs list`: (count key, header).
LISTED_COUNTS = (
    ("inserts", "inserts"),
    ("status_changes", "changed"),
    ("cancellations", "cancelled"),
    ("reactivations", "reactivated"),
    ("drift", "drift"),
    ("new_products", "products"),
    ("rejected", "rejected"),
)


def _db_runs(settings: Settings, limit: int) -> pl.DataFrame:
    import connectorx as cx

    from ..db.connection import APPLICATION_NAME, adbc_connect, conninfo

    url = conninfo(database_url(settings)).with_session(APPLICATION_NAME)
    # connectorx's pool retries a dead server for ~30 s; libpq fails at once with a clear message
    # (and verifies the server's host name under `sslmode=verify-full`, which connectorx cannot).
    adbc_connect(url, autocommit=True).close()
    # connectorx takes no bound parameters; the only value here is an int.
    query = (
        "SELECT run_id, job, mode, status, started_at, finished_at, cursor_from, cursor_to, "
        "counts::text AS counts, artifacts_dir FROM sync_runs ORDER BY started_at DESC, id DESC LIMIT "
        + str(int(limit))
    )
    try:
        return cx.read_sql(url.connectorx(), query, return_type="polars")
    except Exception as exc:
        raise ConfigError(f"cannot read `sync_runs` (run `faturamento-batch init-db` first?): {settings.scrub(str(exc))}") from exc


def _when(value) -> datetime | None:
    """A manifest's ISO text or the database's datetime → datetime (None stays None)."""
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def _artifact_runs(settings: Settings) -> list[dict]:
    found = []
    for run_dir in run_dirs(settings.artifacts_dir):
        try:
            found.append({**artifacts.read_manifest(run_dir), "artifacts_dir": str(run_dir)})
        except (OSError, ValueError):  # removed or rewritten since it was listed
            continue
    return found


def run_rows(settings: Settings, limit: int = 20) -> list[dict]:
    """Recent runs, newest first: committed ones from `sync_runs`, failed and dry runs from the artifacts.

    Each row: run_id, job, mode, status, started_at, finished_at (datetimes),
    cursor_from, cursor_to, counts (dict), seconds, artifacts_dir, error.
    """
    rows = []
    committed = set()
    for r in _db_runs(settings, limit).to_dicts():  # at most `limit` rows of history, not data
        committed.add(r["run_id"])
        seconds = (r["finished_at"] - r["started_at"]).total_seconds() if r["finished_at"] else None
        rows.append({**r, "counts": json.loads(r["counts"]) if r["counts"] else {}, "seconds": seconds, "error": None})
    for m in _artifact_runs(settings):
        # A successful run's artifacts without its `sync_runs` row belong to another database.
        if m.get("run_id") in committed or m.get("status") == "success":
            continue
        cursor = m.get("cursor") or {}
        rows.append({
            "run_id": m.get("run_id"), "job": m.get("job"), "mode": m.get("mode"), "status": m.get("status"),
            "started_at": _when(m.get("started_at")), "finished_at": _when(m.get("finished_at")),
            "cursor_from": _when(cursor.get("since")), "cursor_to": _when(cursor.get("new")),
            "counts": m.get("counts") or {}, "seconds": (m.get("timings") or {}).get("total"),
            "artifacts_dir": m.get("artifacts_dir"), "error": m.get("error"),
        })  # fmt: skip
    rows.sort(key=lambda r: r["started_at"] or datetime.min, reverse=True)
    return rows[:limit]


def _json_default(value):
    return value.isoformat() if isinstance(value, datetime) else str(value)


def list_runs(settings: Settings, limit: int = 20, as_json: bool = False) -> int:
    """Print recent runs as a table (or JSON rows with `as_json`); returns the exit code."""
    rows = run_rows(settings, limit)
    if as_json:
        print(json.dumps(rows, default=_json_default, indent=2, ensure_ascii=False))
        return 0
    if not rows:
        print("no runs yet", file=sys.stderr)
        return 0
    counts_header = "  ".join(f"{label:>{max(len(label), 6)}}" for _, label in LISTED_COUNTS)
    print(f"{'started (UTC)':19}  {'run id':24}  {'mode':11}  {'status':8}  {counts_header}  {'seconds':>7}")
    for r in rows:
        c = r.get("counts") or {}
        started = r["started_at"].strftime("%Y-%m-%d %H:%M:%S") if r.get("started_at") else "-"
        secs = f"{r['seconds']:.2f}" if r.get("seconds") is not None else "-"
        counts = "  ".join(f"{c.get(key, 0):>{max(len(label), 6)},}" for key, label in LISTED_COUNTS)
        print(f"{started:19}  {str(r.get('run_id')):24}  {str(r.get('mode') or '-'):11}  {str(r.get('status')):8}  {counts}  {secs:>7}")
    return 0


def _recorded_dir(settings: Settings, run: str) -> Path | None:
    """The artifacts directory `sync_runs` recorded for run id `run`, if it still exists.

    Asked only of a configured database or an embedded one that already
    exists: `runs show` must not start a new server in whatever directory it runs.
    """
    if not settings.database_url and not settings.pgdata.is_dir():
        return None
    from ..db.connection import adbc_connect

    try:
        conn = adbc_connect(database_url(settings), autocommit=True)
    except FaturamentoError:
        return None
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT artifacts_dir FROM sync_runs WHERE run_id = $1", (run,))
            found = cur.fetchone()
    except Exception:  # no sync_runs table: nothing recorded there
        return None
    finally:
        conn.close()
    path = Path(found[0]) if found and found[0] else None
    return path if path is not None and (path / artifacts.MANIFEST).is_file() else None


def find_run_dir(settings: Settings, run: str | None) -> Path:
    """The directory of run `run`: a run directory path, a run id or a unique prefix of one; the latest when None.

    Looks under `settings.artifacts_dir`, then where `sync_runs` says the run's artifacts went.
    """
    if run and (Path(run) / artifacts.MANIFEST).is_file():
        return Path(run)
    root = settings.artifacts_dir
    dirs = run_dirs(root)
    if not run:
        if not dirs:
            raise ConfigError(f"no runs under `{root}` (pass `--artifacts-dir`)")
        return dirs[-1]
    matches = [d for d in dirs if d.name == run] or [d for d in dirs if d.name.startswith(run)]
    if len(matches) > 1:
        names = ", ".join(d.name for d in matches[:5]) + (" …" if len(matches) > 5 else "")
        raise ConfigError(f"`{run}` matches {len(matches)} runs under `{root}` ({names}): give more of the id")
    if matches:
        return matches[0]
    recorded = _recorded_dir(settings, run)
    if recorded is not None:
        return recorded
    raise ConfigError(f"no run `{run}` under `{root}` (pass `--artifacts-dir`)")


def _part_rows(run_dir: Path, name: str, counts: dict) -> int | None:
    if name in counts:
        return counts[name]
    file = run_dir / f"{name}.parquet"
    return pl.scan_parquet(file).select(pl.len()).collect().item() if file.is_file() else None


def show_run(settings: Settings, run: str | None, as_json: bool = False) -> int:
    """Print a run's manifest for people (or as JSON with `as_json`, plus `run_dir`); returns the exit code."""
    run_dir = find_run_dir(settings, run).resolve()
    manifest = artifacts.read_manifest(run_dir)
    if as_json:
        print(json.dumps({**manifest, "run_dir": str(run_dir)}, indent=2, ensure_ascii=False))
        return 0
    print(summary_text(manifest, run_dir))
    print(f"  started {manifest.get('started_at', '-')} · finished {manifest.get('finished_at', '-')} (UTC)")
    if manifest.get("error"):
        print(f"  error: {manifest['error']}")
    if manifest.get("features"):  # the schema's optional parts the run found (DESIGN §10)
        print("  schema features: " + Features.from_json(json.dumps(manifest["features"])).describe())
    cascade = {k.removesuffix(".cancel"): v for k, v in (manifest.get("written") or {}).items() if k.endswith(".cancel")}
    if cascade:
        print("  cancellation cascade: " + " · ".join(f"{table} {rows:,}" for table, rows in cascade.items()))
    written = manifest.get("written") or {}
    if written.get("faturamento_produto.revertida_spared"):  # §10: reversed NFs, lines Cancelado only
        print(f"  reversed NFs left out of the cascade (revertida): {written['faturamento_produto.revertida_spared']:,}")
    if "carteira_principal.balance" in written:
        print(f"  order balance (carteira_principal) rows recomputed: {written['carteira_principal.balance']:,}")
    revalidated = {k.removeprefix("embarque_itens.revalidate_"): v for k, v in written.items()
                   if k.startswith("embarque_itens.revalidate_") and v}  # fmt: skip
    if revalidated:
        print("  shipment items re-validated: " + " · ".join(f"{k} {v:,}" for k, v in revalidated.items()))
    stock = manifest.get("stock") or {}
    if stock.get("written"):
        print("  stock stage wrote: " + " · ".join(f"{k} {v:,}" for k, v in stock["written"].items()))
    if stock.get("left_alone"):
        # Rows the plan wanted but the logistics application had changed since the stage read them.
        print("  stock stage left alone: " + " · ".join(f"{t} {n:,}" for t, n in stock["left_alone"].items()))
    for key, (count, first) in _downstream(run_dir, manifest).items():
        shown = ", ".join(first) + (f" … (+{count - len(first)})" if count > len(first) else "")
        print(f"  {key}: {shown or '-'}")
    files = manifest.get("artifacts") or {}
    if files:
        print(f"  parts in {run_dir}:")
        counts = manifest.get("counts") or {}
        known = (*CHANGESET_PARTS, *STOCK_PARTS)
        for name in [*(p for p in known if p in files), *(p for p in files if p not in known)]:
            rows = _part_rows(run_dir, name, counts)
            print(f"    {name:20} {'-' if rows is None else format(rows, ','):>9} rows  {files[name]}")
    print(f"  notebook: set FATURAMENTO_RUN_DIR={run_dir} and open notebooks/sync_diff_analysis.ipynb")
    return 0


def _downstream(run_dir: Path, manifest: dict) -> dict[str, tuple[int, list[str]]]:
    """Per downstream kind: how many NFs, and the first ten — from the run's `downstream` part
    (read lazily, ten per kind), or from the lists of manifests written before it."""
    file = Path(run_dir) / "downstream.parquet"
    if not file.exists():
        old = {k: v for k, v in (manifest.get("downstream") or {}).items() if isinstance(v, list)}
        return {k: (len(v), v[:10]) for k, v in old.items()}
    kinds = (
        pl.scan_parquet(file).group_by("kind")
        .agg(pl.col("numero_nf").n_unique().alias("n"), pl.col("numero_nf").unique().sort().head(10).alias("first"))
        .sort("kind").collect()
    )  # fmt: skip
    return {k: (n, first) for k, n, first in zip(kinds["kind"].to_list(), kinds["n"].to_list(), kinds["first"].to_list())}
