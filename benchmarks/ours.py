"""faturamento_batch itself, through `run_sync` — exactly what `faturamento-batch sync` runs.

DB-side, incremental: the raw Odoo frames (one per model, as the extraction
returns them) are loaded before the clock starts and handed over by an in-memory
`Source`; the timed run is lock → cursor → transform → read state → diff →
artifacts → write → commit. DB-side, full: the same frames on local Parquet, read
chunk by chunk inside the timed run (`frames.ParquetSource`), so the input is not
held and the peak is the chunked run's own. `ours_nostock` is the same run with
the stock stage off (the peers do no stock work). End-to-end: `OdooSource` over JSON-RPC from the replay server (keyset
pages of 20,000 lines, related models in parallel, a cold related-record cache:
a fresh state directory per run).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from faturamento_batch.pipeline import run_sync
from faturamento_batch.settings import Settings

from .frames import MemorySource, ParquetSource, load_raw
from .frames import SINCE


def prepare(spec: dict):
    if spec["mode"] == "db" and spec["kind"] == "full":  # chunk by chunk: the input is not held
        return ParquetSource(Path(spec["raw"]))
    if spec["mode"] == "db":
        return MemorySource(load_raw(Path(spec["raw"])))
    return None


def run(source, spec: dict) -> dict:
    tmp = Path(spec["tmp"])
    odoo = spec.get("odoo") or {}
    settings = Settings(
        database_url=spec["url"],
        state_dir=tmp / "state",
        artifacts_dir=tmp / "runs",
        full=spec["kind"] == "full",
        since=SINCE if spec["kind"] == "incremental" else None,
        odoo_url=odoo.get("url"),
        odoo_db=odoo.get("db"),
        odoo_user=odoo.get("login"),
        odoo_password=odoo.get("password"),
        odoo_timeout=600.0,
    )
    if spec["contender"] == "ours_nostock":  # compare like with like: the peers do no stock work
        settings = replace(settings, stock=False)
    if spec.get("chunk_size") is not None:
        settings = replace(settings, chunk_size=int(spec["chunk_size"]))
    result = run_sync(settings, source=source)
    m = result.manifest
    counts = m.get("counts", {})
    return {
        "statements": m["sql_statements"]["total"],
        "odoo_calls": m.get("odoo", {}).get("total_calls", 0),
        "detail": {
            "timings": m["timings"],
            "sql_statements": m["sql_statements"],
            "manifest_peak_memory_mb": m["peak_memory_mb"],
            "chunks": m.get("chunks"),
            "stock": m.get("stock"),
            "counts": {k: counts.get(k) for k in ("lines", "inserts", "status_changes", "cancellations",
                                                  "new_products", "consolidation", "drift", "rejected")},
            "odoo_bytes": m.get("odoo", {}).get("bytes_received", 0),
        },
    }
