"""`check`: the read-only preflight before the switch (DESIGN §10).

Run by the people planning the cut-over, on the production database, before the
first `sync`: is Odoo reachable with every field the job reads, is the database
reachable (its time zone, the grants for the features found, the schema features,
duplicate keys, missing indexes), which rules apply, and what the first run would
do — full or incremental, how many NFs, how many the stock catch-up would process
and from which date. Exit 0 ready, 1 with the blockers listed; `--json` for scripts.

Nothing is written: the database session is read-only (`SET SESSION CHARACTERISTICS
AS TRANSACTION READ ONLY`), and Odoo is asked only `fields_get` and `search_count`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta

from ..db.connection import adbc_connect, database_url, describe
from ..db.existing import DUPLICATES_SHOWN, missing_indexes, read_found_schema
from ..db.features import read_features
from ..db.privileges import CHECK_SQL, GrantCheck, grants, missing_grants_error
from ..db.read_stock import POSTED_WITHOUT_MOVEMENT
from ..db.schema import JOB_TABLES
from ..errors import FaturamentoError
from ..odoo.fields import MODELS, MOVE, MOVE_STATES, move_domain
from ..settings import Settings


@dataclass
class Finding:
    """One line of the report; a failed one with `blocker` stops the switch."""

    area: str  # odoo · database · schema · grants · data · rules · first_run
    ok: bool
    detail: str
    blocker: bool = True


@dataclass
class CheckReport:
    findings: list[Finding] = field(default_factory=list)
    facts: dict = field(default_factory=dict)  # what the JSON carries besides the findings

    def add(self, area: str, ok: bool, detail: str, blocker: bool = True) -> None:
        self.findings.append(Finding(area, ok, detail, blocker))

    @property
    def blockers(self) -> list[Finding]:
        return [f for f in self.findings if not f.ok and f.blocker]

    def as_dict(self) -> dict:
        return {"ready": not self.blockers, "blockers": [f.detail for f in self.blockers],
                "findings": [asdict(f) for f in self.findings], **self.facts}  # fmt: skip


def effective_rules(settings: Settings) -> dict:
    """The business rules the first run would apply: the config's `Rules` (file, environment and
    flags merged) and the run settings that shape what it reads and refuses."""
    return {
        **{k: _iso(v) for k, v in settings.rules.as_dict().items()},
        "move_states": list(MOVE_STATES),
        "max_reject_ratio": settings.max_reject_ratio,
        "overlap_minutes": settings.overlap.total_seconds() / 60,
        "stock_stage": settings.stock,
        "job": settings.job,
    }


def _iso(value) -> str | None:
    return value.isoformat() if isinstance(value, (date, datetime)) else value


# ------------------------------------------------------------------ Odoo


def check_odoo(settings: Settings, report: CheckReport, since: datetime | None) -> None:
    """Odoo reachable, every field of `odoo.fields.MODELS` present, and the NFs the first run reads."""
    from ..odoo.extract import CONTEXT, OdooSource

    if settings.source is not None:
        report.add("odoo", True, f"Odoo: the dataset `{settings.source}` (read in-process; no `fields_get` to ask)", False)
        return
    try:
        transport = OdooSource.from_settings(settings).transport
        transport.authenticate()
    except FaturamentoError as exc:
        report.add("odoo", False, f"Odoo not usable: {settings.scrub(str(exc))}")
        return
    report.add("odoo", True, f"Odoo reachable: {settings.odoo_url} db={settings.odoo_db} via {transport.name}")
    missing: dict[str, list[str]] = {}
    for model, wanted in MODELS.items():
        try:
            found = transport.call(model, "fields_get", [], {"attributes": ["type"]}, parse=transport.decode)
        except FaturamentoError as exc:
            report.add("odoo", False, f"Odoo `{model}`: {settings.scrub(str(exc))}")
            continue
        gone = [name for name in wanted if name != "id" and name not in (found or {})]
        if gone:
            missing[model] = gone
    for model, gone in missing.items():
        report.add("odoo", False, f"Odoo `{model}` lacks field(s) the job reads: {', '.join(f'`{g}`' for g in gone)}")
    if not missing:
        report.add("odoo", True, f"every field the job reads is present ({sum(len(f) for f in MODELS.values())} fields, "
                                 f"{len(MODELS)} models)")  # fmt: skip
    domain = move_domain(settings.rules) + ([("write_date", ">=", since.strftime("%Y-%m-%d %H:%M:%S"))] if since else [])
    try:
        count = int(transport.call(MOVE, "search_count", [domain], {"context": CONTEXT}, parse=transport.decode))
    except FaturamentoError as exc:
        report.add("odoo", False, f"Odoo `search_count` on `{MOVE}`: {settings.scrub(str(exc))}")
        return
    report.facts.setdefault("first_run", {})["odoo_nfs"] = count
    what = "in the run's domain" if since is None else f"changed since {since:%Y-%m-%d %H:%M} UTC"
    report.add("first_run", True, f"the first run would read {count:,} NF(s) {what} (posted or cancelled)", False)


# ------------------------------------------------------------------ database

_CATCH_UP = f"""
SELECT count(DISTINCT f.numero_nf), min(f.data_fatura),
       count(DISTINCT f.numero_nf) FILTER (WHERE f.data_fatura >= $1::date)
FROM faturamento_produto f
WHERE {POSTED_WITHOUT_MOVEMENT}
"""


def check_database(settings: Settings, report: CheckReport) -> datetime | None:
    """Everything on the database side; returns the window start of the first run (None: full)."""
    url = database_url(settings)
    try:
        conn = adbc_connect(url, autocommit=True)
    except FaturamentoError as exc:
        report.add("database", False, f"database not reachable: {settings.scrub(str(exc))}")
        return None
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            return _database_checks(settings, report, cur, describe(url))
    except FaturamentoError as exc:
        report.add("database", False, settings.scrub(str(exc)))
        return None
    except Exception as exc:  # the driver's own errors: a finding, never a traceback
        report.add("database", False, f"the database refused a check: {settings.scrub(str(exc))[:400]}")
        return None
    finally:
        conn.close()


def _database_checks(settings: Settings, report: CheckReport, cur, where: str) -> datetime | None:
    cur.execute("SELECT current_setting('TimeZone'), current_user::text, current_setting('server_version')")
    zone, role, version = cur.fetchone()
    report.facts["database"] = {"where": where, "time_zone": zone, "role": role, "server_version": version}
    report.add("database", True, f"database reachable: {where} as `{role}` (PostgreSQL {version}), time zone `{zone}`")

    features = read_features(cur)
    report.facts["features"] = features.as_dict()
    report.add("schema", True, f"schema features: {features.describe()}", False)

    found = read_found_schema(cur)
    own_missing = [t.name for t in JOB_TABLES if t.name not in found.tables]
    if own_missing:
        report.add("schema", False, f"the job's own table(s) {', '.join(f'`{t}`' for t in own_missing)} are missing: "
                                    "run `faturamento-batch init-db` (it creates only those and the indexes the job needs)")  # fmt: skip
    absent = [t for t in ("faturamento_produto", "movimentacao_estoque") if t not in found.tables]
    if absent:
        report.add("schema", False, f"logistics table(s) {', '.join(f'`{t}`' for t in absent)} do not exist here")
    missing = missing_indexes(found)
    report.facts["indexes_missing"] = [n.index.name for n in missing]
    if missing:
        report.add("schema", False, "index(es) the job needs are missing: "
                   + "; ".join(f"`{n.index.name}` on {n.describe()}" for n in missing)
                   + " — `init-db` creates them (after the duplicates below are merged)")  # fmt: skip
    else:
        report.add("schema", True, "every index the job needs exists (under its name or the application's)", False)

    for need in missing:  # a unique index over duplicate rows cannot be created
        if need.index.unique and need.table in found.tables:
            cur.execute(need.duplicates_sql())
            rows = cur.fetchall()
            report.facts.setdefault("duplicates", {})[need.index.name] = len(rows) and int(rows[0][-1])
            if rows:
                shown = "; ".join(str(tuple(r[: len(need.columns)])) for r in rows[:DUPLICATES_SHOWN])
                report.add("data", False, f"{int(rows[0][-1])} duplicate key(s) in `{need.table}` ({', '.join(need.columns)}): "
                                          f"{shown} — merge them first; all of them: {need.duplicates_sql(limit=False)}")  # fmt: skip

    report.facts["grants_needed"] = grants(settings.stock, features=features)  # what `sync` will ask for here
    check = GrantCheck.build(include_stock=settings.stock)
    cur.execute(f"SELECT $1::text, $2::text, {CHECK_SQL.strip()}", ("", "", *check.params()))
    denied = missing_grants_error(cur.fetchone()[2], role)
    if denied is not None:
        report.add("grants", False, str(denied))
    else:
        report.add("grants", True, f"`{role}` holds every grant `sync` needs on the tables this database has", False)

    cursor = recorded = None
    if "sync_state" in found.tables:
        # to_jsonb: a `sync_state` an older init-db made has no `stock_since` column yet
        cur.execute("SELECT cursor, (to_jsonb(s) ->> 'stock_since')::date FROM sync_state s WHERE job = $1", (settings.job,))
        row = cur.fetchone()
        cursor, recorded = row if row else (None, None)
    since = None if cursor is None else cursor - settings.overlap
    run = report.facts.setdefault("first_run", {})
    run["mode"] = "full" if cursor is None else "incremental"
    run["cursor"] = _iso(cursor)
    report.add("first_run", True, "the first run would be " + ("a full run (no cursor stored for job "
               f"`{settings.job}`)" if cursor is None else f"incremental from the cursor {cursor:%Y-%m-%d %H:%M:%S} UTC"), False)  # fmt: skip
    if settings.stock and not absent:
        _catch_up(settings, report, cur, recorded)
    return since


def _catch_up(settings: Settings, report: CheckReport, cur, recorded: date | None) -> None:
    """How many posted NFs without a FATURAMENTO movement the stock catch-up would process, from when:
    the config's bounds (`stock_catch_up_days`; `stock_since`, else the date the job's first run
    recorded, else today — the first run records it)."""
    rules = settings.rules
    stock_since = rules.stock_since or recorded or date.today()
    start = max(date.today() - timedelta(days=int(rules.stock_catch_up_days)), stock_since)
    cur.execute(_CATCH_UP, (start.isoformat(),))
    unbounded, oldest, bounded = cur.fetchone()
    report.facts.setdefault("first_run", {})["stock_catch_up"] = {
        "from": start.isoformat(), "nfs": int(bounded or 0), "without_bound": int(unbounded or 0), "oldest": _iso(oldest),
    }  # fmt: skip
    report.add("first_run", True, f"the stock catch-up would process {int(bounded or 0):,} NF(s) invoiced on or after "
                                  f"{start.isoformat()} ({int(unbounded or 0):,} posted NF(s) have no FATURAMENTO movement"
                                  + (f", the oldest of {_iso(oldest)})" if oldest else ")"), False)  # fmt: skip


# ------------------------------------------------------------------ the command


def run_check(settings: Settings) -> CheckReport:
    """Every check (read-only); the report says what blocks the switch."""
    report = CheckReport()
    report.facts["rules"] = effective_rules(settings)
    since = check_database(settings, report)
    check_odoo(settings, report, since)
    return report


def print_check(report: CheckReport, as_json: bool = False) -> int:
    """Print `report` (people: one line per finding, then the blockers; or JSON); the exit code."""
    if as_json:
        print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False, default=str))
        return 0 if not report.blockers else 1
    for f in report.findings:
        mark = "ok  " if f.ok else ("FAIL" if f.blocker else "warn")
        print(f"[{mark}] {f.area:9} {f.detail}")
    print("rules: " + ", ".join(f"{k}={v}" for k, v in report.facts.get("rules", {}).items()))
    if report.blockers:
        print(f"NOT READY: {len(report.blockers)} blocker(s):")
        for f in report.blockers:
            print(f"  - {f.detail}")
        return 1
    print("READY: nothing blocks the first run")
    return 0


def cmd_check(args, settings: Settings) -> int:
    return print_check(run_check(settings), as_json=getattr(args, "json", False))
