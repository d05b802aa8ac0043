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


def stock_line(s: dict) -> str:
    """One line for the stock stage, from the manifest's `stock` section."""
    c = s.get("counts") or {}
    left = sum((s.get("left_alone") or {}).values())
    return (
        f"  stock: {s.get('nfs_processed', 0):,} NFs ({s.get('nfs_with_lot', 0):,} with a lot, "
        f"{s.get('nfs_without_lot', 0):,} without; {s.get('nfs_linked', 0):,} linked, {s.get('nfs_divergent', 0):,} divergent)"
        f" · movements +{c.get('movements_created', 0):,} completed {c.get('movements_completed', 0):,}"
        f" · items {c.get('items_linked', 0):,} · separations {c.get('separations_synced', 0):,}"
        f" · status {c.get('status_changes', 0):,} · inconsistencies +{c.get('inconsistencies_opened', 0):,}"
        f" resolved {c.get('inconsistencies_resolved', 0):,} · justifications {c.get('justifications', 0):,}"
        + (f" · left alone {left:,}" if "left_alone" in s else "")
    )


def quarantine_line(m: dict) -> str:
    """One line for the quarantine (DESIGN §12): NFs this run left out, released, still open."""
    q = m.get("quarantine") or {}
    left = m.get("quarantined_nfs") or []
    shown = ", ".join(left[:10]) + (" …" if len(left) > 10 else "")
    return (
        f"  quarantine: {len(left):,} NF(s) refused and left out" + (f" ({shown})" if left else "")
        + f" · {len(m.get('released_nfs') or []):,} released · {q.get('open', 0):,} open"
        + (f" · {q.get('probes', 0)} bisection probes" if q.get("probes") else "")
        + (" — see `faturamento-batch quarantine list`" if q.get("open") else "")
    )  # fmt: skip


def events_line(e: dict, written: bool) -> str:
    """One line for the downstream events (DESIGN §11): per kind, and the consumers' backlog."""
    kinds = " · ".join(f"{k} {n:,}" for k, n in (e.get("kinds") or {}).items() if n) or "none"
    consumers = e.get("consumers") or {}
    backlog = ", ".join(f"{name} {b.get('pending', 0):,} pending" for name, b in sorted(consumers.items()))
    return (f"  events{'' if written else ' (not written)'}: {kinds}"
            + (f" · consumers: {backlog}" if backlog else ""))  # fmt: skip


def summary_text(m: dict, run_dir: Path | str) -> str:
    """A short human summary of the run whose manifest is `m` and artifacts are in `run_dir`."""
    c = m.get("counts", {})
    cursor = m.get("cursor", {})
    lines = [f"run {m['run_id']}  {m.get('mode', '?')}  {m['status']}  ({m.get('source', 'no Odoo')})"]
    if m.get("mode") != "stock":
        lines += [
            f"  Odoo lines {c.get('odoo_lines', 0):,} → {c.get('lines', 0):,} invoice lines "
            f"({c.get('merged_lines', 0):,} merged, {c.get('rejected', 0):,} rejected = {m.get('reject_ratio', 0):.2%})",
            "  " + " · ".join(f"{label} {c.get(part, 0):,}" for part, label in PARTS_SHOWN)
            + ("" if m.get("apply_drift") else "  (drift reported, not written)"),
        ]
    if m.get("stock"):
        lines.append(stock_line(m["stock"]))
    if m.get("quarantined_nfs") or m.get("released_nfs") or (m.get("quarantine") or {}).get("open"):
        lines.append(quarantine_line(m))
    if m.get("events"):
        lines.append(events_line(m["events"], written=m["status"] == "success"))
    if m["status"] == "success":
        lines.append(
            "  nothing changed" if not m.get("rows_to_write") else f"  rows written: {json.dumps(m.get('written', {}))}"
        )
    if m.get("mode") != "stock":
        lines.append(f"  cursor {cursor.get('stored')} → {cursor.get('new')}  (read since {cursor.get('since') or 'the beginning'})")
    t = m.get("timings", {})
    lines.append("  seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in t.items()))
    lines.append(
        f"  SQL statements {m.get('sql_statements', {}).get('total', 0)} · Odoo calls "
        f"{m.get('odoo', {}).get('total_calls', 0)} · peak memory {m.get('peak_memory_mb', 0):.0f} MB"
    )
    lines.append(f"  artifacts: {run_dir}")
    return "\n".join(lines)
