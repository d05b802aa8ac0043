"""What each CLI command does, in terms of the library. Output for people goes to stderr.

    __init__  init-db, sync, stock, generate, record, odoo-replay
    history   `runs list` / `runs show`: the run history and one run's manifest
    check     `check`: the read-only preflight before the switch (DESIGN §10)
    quarantine `quarantine list | retry | drop`: the NFs the runs left out (DESIGN §12)
    demo      `demo`: replay server + a full sync, then the next day incrementally
    events    `events consumers|claim|ack|list`: the downstream events' consumers
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from ..errors import ConfigError
from ..settings import Settings
from ..summary import summary_text

log = logging.getLogger("faturamento_batch")

def cmd_init_db(settings: Settings) -> int:
    from ..db.admin import init_db
    from ..db.connection import database_url

    url = database_url(settings)
    done = init_db(url)
    where = "the embedded PostgreSQL in " + str(settings.pgdata.resolve()) if not settings.database_url else "the database"
    kind = "a database holding the logistics tables" if done.existing else "an empty database"
    log.info("schema ready in %s (%s): created tables %s; indexes %s", where, kind,
             ", ".join(done.tables) or "none", ", ".join(done.indexes) or "none")  # fmt: skip
    if done.not_created:
        log.info("not created (absent from this database, the job adapts): %s", ", ".join(done.not_created))
    for ours, theirs in done.covered.items():
        log.info("index %s not created: the existing index %s is the same", ours, theirs)
    return 0


def cmd_sync(settings: Settings) -> int:
    if not settings.database_url:
        log.info("using the embedded PostgreSQL in %s", settings.pgdata.resolve())
    try:
        from ..pipeline import run_sync  # the data libraries load only when a run starts (`--help` stays light)

        result = run_sync(settings)
    except Exception as exc:
        _write_metrics(settings, getattr(exc, "manifest", None))
        raise
    _write_metrics(settings, result.manifest)
    print(summary_text(result.manifest, result.run_dir), file=sys.stderr)
    return 0


def _write_metrics(settings: Settings, manifest: dict | None) -> None:
    """The metrics file, when one is configured; failing to write it does not change the
    run's outcome (the stale file's last-success time raises the alert instead)."""
    if settings.metrics_file is None or manifest is None:
        return
    from ..metrics import write_metrics_file

    try:
        write_metrics_file(settings.metrics_file, manifest)
    except OSError as exc:
        log.error("could not write the metrics file `%s`: %s", settings.metrics_file, exc)


def cmd_stock(settings: Settings) -> int:
    if not settings.database_url:
        log.info("using the embedded PostgreSQL in %s", settings.pgdata.resolve())
    from ..pipeline import run_stock

    result = run_stock(settings)
    print(summary_text(result.manifest, result.run_dir), file=sys.stderr)
    return 0


def cmd_runs(args: argparse.Namespace, settings: Settings) -> int:
    from .history import list_runs, show_run

    if args.action == "show":
        return show_run(settings, getattr(args, "run", None), as_json=args.json)
    return list_runs(settings, limit=args.limit, as_json=args.json)


def cmd_generate(args: argparse.Namespace) -> int:
    from ..generator import generate_dataset, generate_next_day

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
    from ..odoo.extract import OdooSource
    from ..odoo.record import record

    if args.until <= args.since:
        raise ConfigError("`--until` must be after `--since`")
    transport = OdooSource.from_settings(settings).transport
    summary = record(transport, args.dataset, args.since, args.until, anonymize=args.anonymize)
    log.info("recorded %s into %s with %d Odoo calls%s", json.dumps(summary.records), summary.path, summary.calls,
             " (anonymized)" if args.anonymize else "")  # fmt: skip
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from ..replay import serve_forever

    if not args.dataset.is_dir():
        raise ConfigError(f"dataset `{args.dataset}` is not a directory")
    serve_forever(args.dataset, host=args.host, port=args.port, latency=args.latency,
                  missing_error=args.read_missing == "error")
    return 0


def cmd_demo(settings: Settings) -> int:
    from .demo import run_demo

    return run_demo(settings)


def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "init-db":
        return cmd_init_db(settings)
    if args.command == "sync":
        return cmd_sync(settings)
    if args.command == "check":
        from .check import cmd_check

        return cmd_check(args, settings)
    if args.command == "stock":
        return cmd_stock(settings)
    if args.command == "runs":
        return cmd_runs(args, settings)
    if args.command == "quarantine":
        from .quarantine import cmd_quarantine

        return cmd_quarantine(args, settings)
    if args.command == "record":
        return cmd_record(args, settings)
    if args.command == "generate":
        return cmd_generate(args)
    if args.command == "odoo-replay":
        return cmd_replay(args)
    if args.command == "demo":
        return cmd_demo(settings)
    if args.command == "events":
        from .events import cmd_events

        return cmd_events(args, settings)
    raise ConfigError(f"unknown command `{args.command}`")
