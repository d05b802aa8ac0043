"""The short human summary of a run, from its manifest: what `sync` prints and `runs show` repeats."""

from __future__ import annotations

import json
from pathlib import Path

PARTS_SHOWN = (
    ("inserts", "inserts"),
    ("status_changes", "status changes"),
    ("cancellations", "cancelled NFs"),
    ("reactivations", "reactivated NFs"),
    ("drift", "drift"),
    ("new_products", "new products"),
    ("consolidation", "NF consolidations"),
    ("orphans", "orphans"),
    ("rejected", "rejected"),
)


def summary_text(m: dict, run_dir: Path | str) -> str:
    """A short human summary of the run whose manifest is `m` and artifacts are in `run_dir`."""
    c = m.get("counts", {})
    cursor = m.get("cursor", {})
    lines = [
        f"run {m['run_id']}  {m.get('mode', '?')}  {m['status']}  ({m.get('source', '')})",
        f"  Odoo lines {c.get('odoo_lines', 0):,} → {c.get('lines', 0):,} invoice lines "
        f"({c.get('merged_lines', 0):,} merged, {c.get('rejected', 0):,} rejected = {m.get('reject_ratio', 0):.2%})",
        "  " + " · ".join(f"{label} {c.get(part, 0):,}" for part, label in PARTS_SHOWN)
        + ("" if m.get("apply_drift") else "  (drift reported, not written)"),
    ]
    if m["status"] == "success":
        lines.append(
            "  nothing changed" if not m.get("rows_to_write") else f"  rows written: {json.dumps(m.get('written', {}))}"
        )
    lines.append(f"  cursor {cursor.get('stored')} → {cursor.get('new')}  (read since {cursor.get('since') or 'the beginning'})")
    t = m.get("timings", {})
    lines.append("  seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in t.items()))
    lines.append(
        f"  SQL statements {m.get('sql_statements', {}).get('total', 0)} · Odoo calls "
        f"{m.get('odoo', {}).get('total_calls', 0)} · peak memory {m.get('peak_memory_mb', 0):.0f} MB"
    )
    lines.append(f"  artifacts: {run_dir}")
    return "\n".join(lines)
