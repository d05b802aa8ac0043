"""`faturamento-batch demo`: the whole job on a fresh machine, end to end.

1. Generate a small realistic Odoo dataset (deterministic) and its next day.
2. Serve day 1 from the replay server (a small Odoo) on a free local port.
3. Sync it over JSON-RPC into a fresh `faturamento_demo` database of the
   embedded PostgreSQL (a full run: no cursor yet).
4. Switch the served data to day 2 (new NFs, cancellations, a reactivation,
   drift, edited partners/products) and run an incremental sync.
Both summaries go to stderr; the artifacts land in ./runs.
"""

from __future__ import annotations

import logging
import shutil
import sys
from dataclasses import replace
from pathlib import Path

from .db.connection import adbc_connect
from .db.embedded import create_database, embedded_url
from .settings import Settings

log = logging.getLogger("faturamento_batch")

DEMO_DB = "faturamento_demo"
DEMO_LINES = 3_000
DEMO_SEED = 7


def _fresh_database(settings: Settings) -> str:
    admin = embedded_url(settings.pgdata)
    with adbc_connect(admin, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{DEMO_DB}" WITH (FORCE)')  # constant name
    create_database(admin, DEMO_DB)
    return embedded_url(settings.pgdata, DEMO_DB)


def _copy_dataset(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for file in src.glob("*.json"):
        shutil.copyfile(file, dst / file.name)


def run_demo(settings: Settings) -> int:
    from .commands import summary_text
    from .generate import generate_dataset, generate_next_day
    from .odoo.dataset import read_meta
    from .odoo.replay import ReplayServer
    from .pipeline import run_sync

    root = settings.state_dir / "demo"
    day1, day2, served = root / "day1", root / "day2", root / "served"
    if not (day1 / "meta.json").exists():
        log.info("generating the demo dataset (%d lines) in %s", DEMO_LINES, day1)
        generate_dataset(day1, DEMO_LINES, seed=DEMO_SEED)
    if not (day2 / "meta.json").exists():
        generate_next_day(day1, day2, seed=DEMO_SEED)
    _copy_dataset(day1, served)
    url = _fresh_database(settings)
    log.info("demo database: `%s` in the embedded PostgreSQL at %s", DEMO_DB, settings.pgdata.resolve())
    meta = read_meta(day1)
    with ReplayServer(served) as odoo:
        log.info("replay Odoo serving %s at %s", served, odoo.url)
        run = replace(
            settings, database_url=url, source=None, odoo_url=odoo.url, odoo_db=meta["db"],
            odoo_user=meta["login"], odoo_password=meta["password"], odoo_transport="jsonrpc",
            state_dir=root / "state",
        )  # fmt: skip
        shutil.rmtree(root / "state" / "cache", ignore_errors=True)
        print("\n== day 1: first run (full) over JSON-RPC ==", file=sys.stderr)
        print(summary_text(run_sync(run)), file=sys.stderr)

        _copy_dataset(day2, served)
        odoo.reload()
        print("\n== day 2: incremental run after new NFs, cancellations, a reactivation and edits ==", file=sys.stderr)
        print(summary_text(run_sync(run)), file=sys.stderr)
    print(
        f"\nInspect with: faturamento-batch runs list --database-url '{url}'\n"
        "or open notebooks/sync_diff_analysis.ipynb (it reads ./runs).",
        file=sys.stderr,
    )
    return 0
