"""What each CLI command does, in terms of the library. Output for people goes to stderr."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from .errors import ConfigError
from .pipeline import RunResult, run_sync
from .settings import Settings

log = logging.getLogger("faturamento_batch")

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


def summary_text(result: RunResult) -> str:
    """A short human summary of a run, from its manifest."""
    m = result.manifest
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
    lines.append(f"  artifacts: {result.run_dir}")
    return "\n".join(lines)


def cmd_init_db(settings: Settings) -> int:
    from .db.admin import init_db
    from .db.connection import database_url

    url = database_url(settings)
    n = init_db(url)
    where = "the embedded PostgreSQL in " + str(settings.pgdata.resolve()) if not settings.database_url else "the database"
    log.info("schema ready in %s (%d guarded CREATE statements; existing tables untouched)", where, n)
    return 0


def cmd_sync(settings: Settings) -> int:
    if not settings.database_url:
        log.info("using the embedded PostgreSQL in %s", settings.pgdata.resolve())
    result = run_sync(settings)
    print(summary_text(result), file=sys.stderr)
    return 0


def cmd_runs(args: argparse.Namespace, settings: Settings) -> int:
    from .runs import list_runs, show_run

    if args.action == "show":
        return show_run(settings, getattr(args, "run", None), as_json=args.json)
    return list_runs(settings, limit=args.limit, as_json=args.json)


def cmd_generate(args: argparse.Namespace) -> int:
    from .generate import generate_dataset, generate_next_day

    if args.next_day:
        summary = generate_next_day(args.next_day, args.dataset, seed=args.seed)
    else:
        summary = generate_dataset(args.dataset, args.lines, seed=args.seed)
    log.info(
        "wrote %s: %d lines, %d moves, %d partners, %d products in %.1fs",
        summary.path, summary.lines, summary.moves, summary.partners, summary.products, summary.seconds,
    )  # fmt: skip
    return 0


def cmd_record(args: argparse.Namespace, settings: Settings) -> int:
    from .odoo.extract import OdooSource
    from .odoo.record import record

    if args.until <= args.since:
        raise ConfigError("`--until` must be after `--since`")
    transport = OdooSource.from_settings(settings).transport
    summary = record(transport, args.dataset, args.since, args.until, anonymize=args.anonymize)
    log.info("recorded %s into %s with %d Odoo calls%s", json.dumps(summary.records), summary.path, summary.calls,
             " (anonymized)" if args.anonymize else "")  # fmt: skip
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from .odoo.replay import serve_forever

    if not args.dataset.is_dir():
        raise ConfigError(f"dataset `{args.dataset}` is not a directory")
    serve_forever(args.dataset, host=args.host, port=args.port, latency=args.latency)
    return 0


def cmd_demo(settings: Settings) -> int:
    from .demo import run_demo

    return run_demo(settings)


def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "init-db":
        return cmd_init_db(settings)
    if args.command == "sync":
        return cmd_sync(settings)
    if args.command == "runs":
        return cmd_runs(args, settings)
    if args.command == "record":
        return cmd_record(args, settings)
    if args.command == "generate":
        return cmd_generate(args)
    if args.command == "odoo-replay":
        return cmd_replay(args)
    if args.command == "demo":
        return cmd_demo(settings)
    raise ConfigError(f"unknown command `{args.command}`")
