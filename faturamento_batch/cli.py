"""The `faturamento-batch` command: parses arguments, calls the library, maps errors to exit codes.

Exit codes: 0 done (also "nothing changed"), 1 run failed and nothing was
written (fix something first), 2 usage/configuration error, 3 another run holds
the lock, 75 (EX_TEMPFAIL) run failed, nothing was written, retry later as it is
(Odoo or PostgreSQL unreachable, deadlock, lock or statement timeout).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import datetime, timedelta
from pathlib import Path

from . import progress
from .config import load_rules
from .errors import FaturamentoError
from .settings import Settings, env_settings, parse_nfs, redact

log = logging.getLogger("faturamento_batch")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        return json.dumps(entry, default=str, ensure_ascii=False)


def _setup_logging(fmt: str, verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("urllib3", "asyncio", "pgserver"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    progress.configure(progress.wants_bar(fmt))  # a bar for people at a terminal, log records otherwise


def _timestamp(text: str) -> datetime:
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            pass
    raise argparse.ArgumentTypeError(f"`{text}` is not a timestamp (use 'YYYY-MM-DD HH:MM:SS', UTC)")


def _date(text: str):
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a date (use YYYY-MM-DD)") from None


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database-url", help="PostgreSQL URL (default: FATURAMENTO_DATABASE_URL, else the embedded server)")
    p.add_argument("--state-dir", type=Path, help="where the embedded server and the Odoo cache live (default .faturamento)")
    p.add_argument("--log-format", choices=("text", "json"), default="text")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--config", type=Path, metavar="PATH",
                   help="TOML file of business rules (default FATURAMENTO_CONFIG; see the README's Configuration)")


def _texts(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _ints(text: str) -> list[int]:
    try:
        return [int(part) for part in _texts(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a list of whole numbers separated by commas") from None


def _rules_options(p: argparse.ArgumentParser) -> None:
    """Flags over the config file's rules (DESIGN §10); each wins over the file and the environment."""
    p.add_argument("--invoice-types", type=_texts, metavar="T,T…", help="l10n_br_tipo_pedido values imported")
    p.add_argument("--excluded-companies", type=_ints, metavar="ID,ID…", help="Odoo company ids never imported (default 5)")
    p.add_argument("--pallet-codes", type=_texts, metavar="CODE,CODE…", help="product codes without a FATURAMENTO movement")
    p.add_argument("--time-zone", metavar="ZONE", help="session time zone of every connection (default America/Sao_Paulo)")
    p.add_argument("--stock-catch-up-days", type=int, metavar="DAYS", help="stock catch-up window (default 7)")
    p.add_argument("--stock-since", type=_date, metavar="YYYY-MM-DD",
                   help="the stock catch-up never looks before this date (default: the first run's day, recorded)")


def _runs_options(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--artifacts-dir", type=Path)


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", type=float, metavar="SECONDS", help="wait this long for a running sync instead of exiting 3")
    p.add_argument("--job", help="job name: its own cursor and lock (default faturamento)")
    p.add_argument("--statement-timeout", type=float, metavar="SECONDS",
                   help="cancel any single SQL statement running longer (default 900; 0 = no limit)")
    p.add_argument("--lock-timeout", type=float, metavar="SECONDS",
                   help="give up a row or table lock the logistics application holds after this long (default 10; 0 = wait)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faturamento-batch", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init-db", help="create the tables and indexes that are missing")
    _common(p)

    p = sub.add_parser("sync", help="sync Odoo invoice lines into PostgreSQL")
    _common(p)
    p.add_argument("--full", action="store_true", help="read every line, not only what changed since the cursor")
    p.add_argument("--since", type=_timestamp, help="read what changed since this UTC time (overrides the cursor)")
    p.add_argument("--dry-run", action="store_true", help="compute and report the changes, write nothing")
    p.add_argument("--apply-drift", action="store_true", help="also write changed values of existing lines")
    p.add_argument("--artifacts-dir", type=Path, help="where runs/<run-id>/ go (default ./runs)")
    p.add_argument("--source", type=Path, help="read a dataset directory in-process instead of an Odoo")
    p.add_argument("--odoo-url", help="Odoo base URL (default ODOO_URL)")
    p.add_argument("--odoo-db", help="default ODOO_DB")
    p.add_argument("--odoo-user", help="default ODOO_USER")
    p.add_argument("--transport", choices=("jsonrpc", "xmlrpc", "json2"), help="Odoo protocol (default jsonrpc)")
    p.add_argument("--page-size", type=int, help="lines per Odoo call (default 20000)")
    p.add_argument("--chunk-size", type=int, metavar="LINES",
                   help="full runs: lines per chunk, which sets the peak memory (default 40000, "
                        "FATURAMENTO_CHUNK_SIZE; 0 = in one piece)")
    p.add_argument("--no-cache", action="store_true", help="do not use the on-disk related-record cache")
    p.add_argument("--overlap-minutes", type=float, help="re-read this much before the cursor (default 10)")
    p.add_argument("--max-reject-ratio", type=float, help="abort when more lines than this are rejected (default 0.05)")
    _run_options(p)
    p.add_argument("--write-retries", type=int, metavar="N",
                   help="retry the write transaction this often after a lock timeout, deadlock or serialization "
                        "failure, then exit 75 (default 3)")
    p.add_argument("--metrics-file", type=Path, metavar="PATH",
                   help="after every run (also a failed one) write Prometheus metrics here, for node_exporter's "
                        "textfile collector (default FATURAMENTO_METRICS_FILE)")
    p.add_argument("--no-stock", action="store_true",
                   help="skip the stock stage (a database without the stock module)")
    _rules_options(p)

    p = sub.add_parser("check", help="read-only preflight before the switch: Odoo, database, grants, schema, "
                                      "duplicates, indexes, rules, and what the first run would do")
    _common(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--source", type=Path, help="a dataset directory instead of an Odoo")
    p.add_argument("--odoo-url", help="Odoo base URL (default ODOO_URL)")
    p.add_argument("--odoo-db", help="default ODOO_DB")
    p.add_argument("--odoo-user", help="default ODOO_USER")
    p.add_argument("--transport", choices=("jsonrpc", "xmlrpc", "json2"), help="Odoo protocol (default jsonrpc)")
    p.add_argument("--job", help="job name: its own cursor (default faturamento)")
    p.add_argument("--no-stock", action="store_true", help="the runs will skip the stock stage")

    p = sub.add_parser("stock", help="the stock stage alone, without Odoo: the pending NFs, or the listed ones")
    _common(p)
    p.add_argument("--nfs", metavar="NF,NF…", help="process these NFs (as the database holds them) instead of the pending ones")
    p.add_argument("--dry-run", action="store_true", help="compute and report what the stage would write, write nothing")
    p.add_argument("--artifacts-dir", type=Path, help="where runs/<run-id>/ go (default ./runs)")
    _run_options(p)
    _rules_options(p)

    p = sub.add_parser("runs", help="recent runs and their manifests")
    _runs_options(p)  # `runs` alone is `runs list`
    actions = p.add_subparsers(dest="action")
    _runs_options(actions.add_parser("list", help="a table of recent runs"))
    show = actions.add_parser("show", help="one run's manifest and where its artifacts are")
    _runs_options(show)
    show.add_argument("run", nargs="?", help="run id, id prefix or path (default: the latest)")

    p = sub.add_parser("quarantine", help="NFs PostgreSQL refused and the runs left out: list, retry now, drop")
    _common(p)
    p.add_argument("--job", help="job name (default faturamento)")
    p.add_argument("--json", action="store_true", help="`list`: one JSON object per line")
    p.add_argument("--state", choices=("quarantined", "released", "dropped", "all"), default=None,
                   help="`list`: which NFs (default quarantined)")
    actions = p.add_subparsers(dest="action")
    for name, text in (("list", "the job's quarantined NFs"), ("retry", "make NFs due now"),
                       ("drop", "stop retrying NFs (kept as dropped)")):  # fmt: skip
        a = actions.add_parser(name, help=text)
        _common(a)
        a.add_argument("--job", help="job name (default faturamento)")
        a.add_argument("--json", action="store_true")
        a.add_argument("--state", choices=("quarantined", "released", "dropped", "all"), default=None)
        if name != "list":
            a.add_argument("quarantine_nfs", nargs="+", metavar="NF")

    p = sub.add_parser("odoo-replay", help="serve a dataset directory over Odoo's protocols")
    _common(p)
    p.add_argument("dataset", type=Path)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8069)
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every call")
    p.add_argument("--read-missing", choices=("error", "skip"), default="error",
                   help="`read` of ids not in the dataset: Odoo's MissingError (default) or skip them as Odoo 17's ORM does")

    p = sub.add_parser("record", help="capture a real Odoo's payloads for a date range into a dataset")
    _common(p)
    p.add_argument("dataset", type=Path)
    p.add_argument("--since", type=_date, required=True, help="first invoice date (YYYY-MM-DD)")
    p.add_argument("--until", type=_date, required=True, help="day after the last invoice date (YYYY-MM-DD)")
    p.add_argument("--anonymize", action="store_true", help="replace CNPJs, names and e-mails consistently")
    p.add_argument("--odoo-url")
    p.add_argument("--odoo-db")
    p.add_argument("--odoo-user")
    p.add_argument("--transport", choices=("jsonrpc", "xmlrpc", "json2"))

    p = sub.add_parser("generate", help="write a realistic synthetic dataset")
    _common(p)
    p.add_argument("dataset", type=Path)
    p.add_argument("--lines", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--next-day", type=Path, metavar="OF", help="write the day after the dataset OF instead")

    from .commands.events import add_parser as add_events_parser

    add_events_parser(sub, _common)

    p = sub.add_parser("demo", help="sync the bundled demo dataset into the embedded PostgreSQL")
    _common(p)
    p.add_argument("--artifacts-dir", type=Path)
    return parser


def _settings(args: argparse.Namespace, **extra) -> Settings:
    get = lambda name: getattr(args, name, None)  # noqa: E731
    overlap = get("overlap_minutes")
    rules = load_rules(get("config"), flags={
        key: get(key) for key in ("invoice_types", "excluded_companies", "pallet_codes", "time_zone",
                                  "stock_catch_up_days", "stock_since")
    })  # fmt: skip
    return env_settings(
        rules=rules,
        database_url=get("database_url"),
        state_dir=get("state_dir"),
        artifacts_dir=get("artifacts_dir"),
        source=get("source"),
        odoo_url=get("odoo_url"),
        odoo_db=get("odoo_db"),
        odoo_user=get("odoo_user"),
        odoo_transport=get("transport"),
        page_size=get("page_size"),
        use_cache=False if get("no_cache") else None,
        full=get("full") or None,
        since=get("since") if args.command == "sync" else None,
        overlap=timedelta(minutes=overlap) if overlap is not None else None,
        dry_run=get("dry_run") or None,
        apply_drift=get("apply_drift") or None,
        max_reject_ratio=get("max_reject_ratio"),
        wait_seconds=get("wait"),
        job=get("job"),
        statement_timeout=get("statement_timeout"),
        lock_timeout=get("lock_timeout"),
        write_retries=get("write_retries"),
        metrics_file=get("metrics_file"),
        chunk_size=get("chunk_size"),
        stock=False if get("no_stock") else None,
        stock_nfs=tuple(parse_nfs(get("nfs"))) if get("nfs") is not None else None,
        **extra,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    _setup_logging(args.log_format, args.verbose)
    settings = None
    try:
        settings = _settings(args)
        from . import commands

        return commands.dispatch(args, settings)
    except FaturamentoError as exc:
        message = settings.scrub(str(exc)) if settings else redact(str(exc))
        fields = {"error_type": type(exc).__name__, "exit_code": exc.exit_code}
        if getattr(exc, "sqlstate", None):
            fields["sqlstate"] = exc.sqlstate
        log.error("%s", message, extra={"fields": fields})
        return exc.exit_code
    except KeyboardInterrupt:
        log.error("interrupted; nothing was committed by this run")
        return 1
    except Exception as exc:  # a bug: say so plainly, keep the traceback for --verbose
        message = settings.scrub(f"{type(exc).__name__}: {exc}") if settings else redact(str(exc))
        log.error("internal error, nothing was committed: %s (run with -v for the traceback)", message)
        log.debug("traceback", exc_info=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
