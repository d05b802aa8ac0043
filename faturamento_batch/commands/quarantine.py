"""`quarantine list | retry NF… | drop NF…`: the NFs the runs left out (DESIGN §12).

`retry` makes quarantined NFs due now (the next sync fetches them from Odoo by id);
`drop` stops retrying them, and keeps them as `dropped`. Both touch only NFs still
`quarantined`, and say which of the listed ones were not.
"""

from __future__ import annotations

import argparse
import logging
import sys

import polars as pl

from ..db import quarantine as table
from ..db.connection import adbc_connect, session_target
from ..errors import ConfigError, database_error
from ..settings import Settings

log = logging.getLogger("faturamento_batch")


def cmd_quarantine(args: argparse.Namespace, settings: Settings) -> int:
    action = args.action or "list"
    nfs = [nf.strip() for nf in (getattr(args, "quarantine_nfs", None) or []) if nf.strip()]
    if action in ("retry", "drop") and not nfs:
        raise ConfigError(f"`quarantine {action}` needs the NFs: `quarantine {action} NF [NF …]`")
    try:
        conn = adbc_connect(session_target(settings), autocommit=True)
    except Exception as exc:
        raise database_error(f"cannot connect to PostgreSQL: {settings.scrub(str(exc))}", exc, connecting=True) from exc
    try:
        with conn.cursor() as cur:
            if action == "list":
                return _list(table.list_rows(cur, settings.job, getattr(args, "state", None) or "quarantined"), args.json)
            done = (table.retry if action == "retry" else table.drop)(cur, settings.job, nfs)
    except ConfigError:
        raise
    except Exception as exc:
        raise database_error(f"`quarantine {action}` failed: {settings.scrub(str(exc))}", exc) from exc
    finally:
        conn.close()
    what = "due now (the next sync retries them)" if action == "retry" else "dropped (no more retries)"
    if done:
        log.info("%d NF(s) %s: %s", len(done), what, ", ".join(done))
    missing = sorted(set(nfs) - set(done))
    if missing:
        raise ConfigError(f"not quarantined for job `{settings.job}` (see `quarantine list --state all`): {', '.join(missing)}")
    return 0


def _list(rows: pl.DataFrame, as_json: bool) -> int:
    if as_json:
        sys.stdout.write(rows.with_columns(pl.col(pl.Datetime).dt.to_string("%Y-%m-%d %H:%M:%S")).write_ndjson())
        return 0
    if rows.height == 0:
        print("no NF in quarantine", file=sys.stderr)
        return 0
    shown = rows.select("numero_nf", "state", "attempts", "sqlstate", pl.col("next_try").dt.to_string("%Y-%m-%d %H:%M"),
                        pl.col("first_seen").dt.to_string("%Y-%m-%d %H:%M"), pl.col("message").str.slice(0, 80))  # fmt: skip
    with pl.Config(tbl_rows=-1, tbl_width_chars=200, fmt_str_lengths=80, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True):  # fmt: skip
        print(shown)
    return 0
