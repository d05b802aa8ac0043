"""Every connection form × (init-db, a sync of a fixture scenario, runs list), through the CLI,
against the embedded server; a schema other than `public`; a least-privilege role.

Each test gets its own empty database (and role); the checks are on the database's
contents, not just exit codes, and no password may appear in any output, manifest or
`sync_runs` row.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from pathlib import Path
from urllib.parse import quote

import polars as pl
import pytest

from faturamento_batch.artifacts import read_manifest
from faturamento_batch.cli import main
from faturamento_batch.db.connection import adbc_connect, conninfo, connectorx_url, with_session_options
from faturamento_batch.db.embedded import create_database
from faturamento_batch.db.privileges import grants
from faturamento_batch.db.read import read_frame
from faturamento_batch.db.write import Writer
from faturamento_batch.errors import PermissionDenied

from .conftest import FIXTURES, ROOT, clone_template, drop_database
from .dbutil import load_rows, read_table, snapshot

SCENARIO = FIXTURES / "cancellation_cascade"
SPEC = json.loads((SCENARIO / "scenario.json").read_text())
SCENARIO_ARGS = SPEC["runs"][0].get("args", [])  # the scenario predates the stock stage: --no-stock
PW = "p@ss:w/o?r#d% x"  # `@ : / ? # %` and a space
_ids = itertools.count()


def admin(pg_admin_url: str, database: str, *statements: str) -> None:
    """Run `statements` as the superuser in `database` (names come from the test itself)."""
    with adbc_connect(conninfo(pg_admin_url).replace(dbname=database), autocommit=True) as conn, conn.cursor() as cur:
        for sql in statements:
            cur.execute(sql)


def admin_rows(pg_admin_url: str, database: str, sql: str) -> list[tuple]:
    with adbc_connect(conninfo(pg_admin_url).replace(dbname=database), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


@pytest.fixture
def empty_db(pg_admin_url):
    """The name of a fresh database without the schema."""
    name = f"fb_forms_{os.getpid()}_{next(_ids)}"
    create_database(pg_admin_url, name)
    yield name
    admin(pg_admin_url, "postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def role(pg_admin_url):
    """A fresh login role (cluster-wide, so dropped after the test's database)."""
    name = f"fb_role_{os.getpid()}_{next(_ids)}"
    admin(pg_admin_url, "postgres", f"CREATE ROLE {name} LOGIN PASSWORD '{PW}'")
    yield name
    admin(pg_admin_url, "postgres", f"DROP ROLE IF EXISTS {name}")


def _socket(pg_admin_url: str) -> str:
    return conninfo(pg_admin_url).params["host"]


# name → (form template, environment, schema the tables live in). {sock} the embedded server's
# socket directory, {db} the database, {pw} the role's password encoded for where it goes.
FORMS = {
    "pgserver's own URL": ("postgresql://postgres:@/{db}?host={sock}", {}, "public"),
    "postgres:// with ?host=": ("postgres://postgres@localhost/{db}?host={sock}", {}, "public"),
    "SQLAlchemy postgresql+psycopg://": ("postgresql+psycopg://postgres@/{db}?host={sock_q}", {}, "public"),
    "socket directory percent-encoded as host": ("postgresql://postgres@{sock_pct}/{db}", {}, "public"),
    "key/value": ("host={sock} dbname={db} user=postgres", {}, "public"),
    "key/value quoted, password with a quote": (
        r"host='{sock}' dbname='{db}' user='postgres' password='a b\'c' application_name='fb test'", {}, "public"),
    "postgresql:///db + PGHOST/PGUSER": ("postgresql:///{db}", {"PGHOST": "{sock}", "PGUSER": "postgres"}, "public"),
    "dbname only + PGHOST PGPORT PGUSER PGPASSWORD": (
        "dbname={db}", {"PGHOST": "{sock}", "PGPORT": "5432", "PGUSER": "postgres", "PGPASSWORD": "env-pw-Secret"}, "public"),
    "PGDATABASE fills an empty URL": ("postgresql://postgres@/?host={sock}", {"PGDATABASE": "{db}"}, "public"),
    "role with @:/?#% and a space in its password": ("postgresql://{role}:{pw_url}@/{db}?host={sock}", {}, "public"),
    "options=-csearch_path (schema logistica)": (
        "postgresql://postgres@/{db}?host={sock}&options=-csearch_path%3Dlogistica&connect_timeout=5", {}, "logistica"),
    "PGOPTIONS search_path (schema logistica)": (
        "host={sock} dbname={db} user=postgres application_name=custom", {"PGOPTIONS": "-c search_path=logistica"}, "logistica"),
}  # fmt: skip


def _fill(template: str, **values: str) -> str:
    return template.format(**values)


def _secrets(form: str, env: dict[str, str]) -> list[str]:
    found = [PW, quote(PW, safe=""), "env-pw-Secret"]
    if "a b" in form:
        found.append("a b'c")
    return [s for s in found if s in form or s in env.values()]


def _leaks(secrets: list[str], output: str, runs: Path, sync_runs: str) -> list[str]:
    blobs = [output, sync_runs, *(p.read_text(errors="replace") for p in runs.rglob("*.json"))]
    return [s for s in secrets for b in blobs if s in b]


def check_scenario_tables(url: str) -> None:
    """The database holds what the scenario expects after its run."""
    for table, spec in SPEC["runs"][0]["tables"].items():
        got = sorted(
            read_table(url, table, spec["columns"]).select(pl.all().cast(pl.String)).rows(),
            key=lambda r: tuple("" if v is None else v for v in r),
        )
        want = sorted((tuple(r) for r in spec["rows"]), key=lambda r: tuple("" if v is None else v for v in r))
        assert got == want, f"table `{table}`"


def run_forms_case(form: str, env: dict[str, str], schema: str, admin_url: str, database: str, tmp_path: Path,
                   monkeypatch, capsys) -> None:  # fmt: skip
    """init-db, load the scenario's rows, sync it, `runs list`: check the database and the output."""
    for var in ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGOPTIONS", "PGSSLMODE", "PGSSLROOTCERT"):
        monkeypatch.delenv(var, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    runs = tmp_path / "runs"
    assert main(["init-db", "--database-url", form]) == 0
    assert admin_rows(admin_url, database, "SELECT table_schema::text FROM information_schema.tables "
                      "WHERE table_name = 'faturamento_produto'") == [(schema,)]  # fmt: skip
    load_rows(form, SPEC["before"])
    code = main(["sync", "--source", str(SCENARIO / "odoo"), *SCENARIO_ARGS, "--database-url", form, "--artifacts-dir", str(runs)])
    run_dir = next(runs.iterdir())
    assert code == 0, read_manifest(run_dir).get("error")
    check_scenario_tables(connectorx_url(form))
    capsys.readouterr()
    assert main(["runs", "list", "--json", "--database-url", form, "--artifacts-dir", str(runs)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["run_id"], r["status"]) for r in listed] == [(run_dir.name, "success")]
    assert listed[0]["counts"]["cancellations"] == 1 and listed[0]["counts"]["status_changes"] == 2
    # `runs show` finds the run through `sync_runs` when it is not under --artifacts-dir.
    assert main(["runs", "show", run_dir.name, "--json", "--database-url", form, "--artifacts-dir", str(tmp_path / "elsewhere")]) == 0
    assert json.loads(capsys.readouterr().out)["run_id"] == run_dir.name


@pytest.mark.parametrize("name", FORMS)
def test_each_form_runs_init_db_sync_and_runs_list(name, pg_admin_url, role, empty_db, tmp_path, monkeypatch, capsys):
    template, env_template, schema = FORMS[name]
    sock = _socket(pg_admin_url)
    values = dict(sock=sock, sock_q=quote(sock), sock_pct=quote(sock, safe=""), db=empty_db, role=role, pw_url=quote(PW, safe=""))
    form = _fill(template, **values)
    env = {k: _fill(v, **values) for k, v in env_template.items()}
    if schema != "public":
        admin(pg_admin_url, empty_db, f"CREATE SCHEMA {schema}")
    if "{role}" in template:  # the role owns its database's tables, as an application role would
        admin(pg_admin_url, empty_db, f"GRANT CREATE ON SCHEMA public TO {role}")
    run_forms_case(form, env, schema, pg_admin_url, empty_db, tmp_path, monkeypatch, capsys)
    if schema != "public":  # nothing landed in public
        assert admin_rows(pg_admin_url, empty_db, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") == [(0,)]
    out = capsys.readouterr()
    sync_runs = str(admin_rows(pg_admin_url, empty_db, f"SELECT r::text FROM {schema}.sync_runs r"))
    assert not _leaks(_secrets(form, env), out.out + out.err, tmp_path / "runs", sync_runs)


def test_both_drivers_get_the_same_session(pg_admin_url, empty_db, monkeypatch):
    """User, database, search_path, application_name and statement_timeout, as ADBC and connectorx see them."""
    admin(pg_admin_url, empty_db, "CREATE SCHEMA logistica")
    sql = ("SELECT current_user::text AS u, current_database()::text AS d, current_setting('search_path') AS sp, "
           "current_setting('application_name') AS app, current_setting('statement_timeout') AS st")  # fmt: skip
    sock = _socket(pg_admin_url)
    cases = {
        f"host={sock} dbname={empty_db} user=postgres options='-csearch_path=logistica'": ("logistica", "faturamento_batch"),
        f"postgresql://postgres@/{empty_db}?host={quote(sock)}&application_name=mine": ('"$user", public', "mine"),
        # The keywords connectorx takes besides those: both drivers accept them.
        f"postgresql://postgres@/{empty_db}?host={quote(sock)}&keepalives=1&keepalives_idle=30&target_session_attrs=read-write"
        "&connect_timeout=5&fallback_application_name=other": ('"$user", public', "faturamento_batch"),
    }
    for form, (search_path, app) in cases.items():
        session = with_session_options(form, 12.5)
        with adbc_connect(session, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(sql)
            via_adbc = cur.fetchone()
        via_cx = read_frame(session, sql, "the session").row(0)
        assert via_adbc == via_cx == ("postgres", empty_db, search_path, app, "12500ms"), form


# Forms first tried without a test, then kept: where each one lands.
def test_forms_found_while_trying(pg_admin_url, empty_db, tmp_path, monkeypatch, capsys):
    sock = _socket(pg_admin_url)
    monkeypatch.delenv("PGDATABASE", raising=False)
    monkeypatch.delenv("PGUSER", raising=False)
    # A key/value string with only host=/dir: libpq's default database is the OS user's name.
    code = main(["runs", "list", "--database-url", f"host={sock}", "--artifacts-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and "does not exist" in err and "Traceback" not in err
    # The same with PGUSER/PGDATABASE: reaches the database.
    monkeypatch.setenv("PGUSER", "postgres")
    monkeypatch.setenv("PGDATABASE", empty_db)
    assert main(["init-db", "--database-url", f"host={sock}"]) == 0
    # A socket directory percent-encoded in the host, nothing else: user from PGUSER.
    assert main(["runs", "list", "--database-url", f"postgresql://{quote(sock, safe='')}/{empty_db}", "--artifacts-dir", str(tmp_path)]) == 0
    # `postgres://u:pw@localhost:PORT` with nothing listening: a clean exit 75 (retry later) naming the server,
    # the database from PGDATABASE, password masked.
    code = main(["runs", "list", "--database-url", f"postgres://u:{quote(PW, safe='')}@localhost:1", "--artifacts-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 75 and f"postgresql://u:***@localhost:1/{empty_db}" in err and PW not in err and "Traceback" not in err


@pytest.mark.parametrize(
    "form",
    ["mysql://u:{pw}@h/d", "postgresql://u:{pw}@h1,h2/d", "postgresql://u:{pw}@/d?host={sock}&service=x",
     "host={sock} password='{raw}' gssencmode=disable", "postgresql://u:{pw}@localhost/d?sslmode=verify-full"],
)  # fmt: skip
def test_refused_forms_exit_2_naming_them_without_the_password(form, pg_admin_url, tmp_path, capsys):
    form = form.format(pw=quote(PW, safe=""), raw=PW, sock=_socket(pg_admin_url))
    for argv in (["init-db"], ["sync", "--source", str(SCENARIO / "odoo"), "--artifacts-dir", str(tmp_path / "runs")],
                 ["runs", "list", "--artifacts-dir", str(tmp_path / "runs")]):  # fmt: skip
        assert main([*argv, "--database-url", form]) == 2, argv
        err = capsys.readouterr().err
        assert "FATURAMENTO_DATABASE_URL" in err and "Traceback" not in err
        assert PW not in err and quote(PW, safe="") not in err
    for path in (tmp_path / "runs").rglob("*.json"):
        assert PW not in path.read_text() and quote(PW, safe="") not in path.read_text()


# -- least privilege ----------------------------------------------------------------------
README = (ROOT / "README.md").read_text(encoding="utf-8")


def readme_grants(block: str) -> list[str]:
    """The SQL statements of the README's ```sql block following `<!-- grants:{block} -->`."""
    m = re.search(rf"<!-- grants:{block} -->\s*```sql\n(.*?)```", README, re.S)
    assert m, f"README has no `grants:{block}` block"
    lines = [line.split("--")[0].strip() for line in m.group(1).splitlines()]
    return [s.strip() for s in " ".join(lines).split(";") if s.strip()]


def test_the_readme_grants_are_the_grant_map():
    granted: dict[str, set[str]] = {}
    for sql in readme_grants("import") + readme_grants("stock"):
        m = re.match(r"GRANT ([A-Z, ]+) ON (?!SCHEMA|DATABASE|SEQUENCE)(.+) TO", sql)
        if m:
            for table in m.group(2).split(","):
                granted.setdefault(table.strip(), set()).update(p.strip() for p in m.group(1).split(","))
    assert granted == {t: set(p) for t, p in grants().items()}


def _existing_only(pg_admin_url: str, database: str, schema: str, sql: str) -> str | None:
    """`sql` (a GRANT) with the tables/sequences that do not exist yet left out; None if none is left."""
    m = re.match(r"(GRANT [A-Z, ]+ ON (?:SEQUENCE )?)(?!SCHEMA|DATABASE)(.+?)( TO .+)", sql)
    if not m:
        return sql
    names = [n.strip() for n in m.group(2).split(",")]
    exists = admin_rows(pg_admin_url, database, "SELECT " + ", ".join(f"to_regclass('{schema}.{n}') IS NOT NULL" for n in names))[0]
    kept = [n for n, ok in zip(names, exists) if ok]
    return f"{m.group(1)}{', '.join(kept)}{m.group(3)}" if kept else None


def _least_privilege(pg_admin_url: str, db_url: str, role: str, schema: str = "public") -> str:
    """`role` gets exactly the README's grants (the stock stage's on the tables that exist) on
    the database of `db_url`; returns a URL connecting as it."""
    database = conninfo(db_url).params["dbname"]
    statements = [
        s.replace("faturamento_sync", role).replace("<database>", database).replace(" public", f" {schema}")
        for s in readme_grants("import") + readme_grants("stock")
        if not s.startswith("CREATE ROLE")  # the fixture made it
    ]
    statements = [x for x in (_existing_only(pg_admin_url, database, schema, s) for s in statements) if x]
    admin(pg_admin_url, database, f"SET search_path = {schema}", *statements)
    return f"postgresql://{role}:{quote(PW, safe='')}@/{database}?host={quote(_socket(pg_admin_url))}" + (
        f"&options=-csearch_path%3D{schema}" if schema != "public" else ""
    )


def _sync(url: str, tmp_path: Path) -> tuple[int, dict]:
    runs = tmp_path / "runs"
    code = main(["sync", "--source", str(SCENARIO / "odoo"), *SCENARIO_ARGS, "--database-url", url, "--artifacts-dir", str(runs)])
    return code, read_manifest(max(runs.iterdir(), key=lambda p: p.stat().st_mtime_ns))


@pytest.fixture
def fresh_db(pg_admin_url, template_url):
    url = clone_template(pg_admin_url)
    yield url
    drop_database(pg_admin_url, url)


def test_sync_works_with_only_the_readme_grants(pg_admin_url, role, fresh_db, tmp_path, capsys):
    load_rows(fresh_db, SPEC["before"])
    url = _least_privilege(pg_admin_url, fresh_db, role)
    database = conninfo(fresh_db).params["dbname"]
    # No DDL right anywhere: no CREATE on the schema or the database.
    assert admin_rows(pg_admin_url, database, f"SELECT has_schema_privilege('{role}', 'public', 'CREATE'), "
                      f"has_database_privilege('{role}', current_database(), 'CREATE')") == [(False, False)]  # fmt: skip
    code, manifest = _sync(url, tmp_path)
    assert code == 0, manifest.get("error")
    check_scenario_tables(fresh_db)
    assert admin_rows(pg_admin_url, database, "SELECT count(*), min(status) FROM sync_runs") == [(1, "success")]
    assert PW not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("revoke", "named"),
    [
        ("REVOKE UPDATE ON separacao FROM {role}", ("`separacao`", "UPDATE")),
        ("REVOKE TEMP ON DATABASE {db} FROM PUBLIC; REVOKE TEMP ON DATABASE {db} FROM {role}", ("TEMP on the database",)),
        ("REVOKE USAGE ON SEQUENCE sync_runs_id_seq FROM {role}", ("USAGE", "`sync_runs`")),
        ("REVOKE INSERT ON faturamento_produto FROM {role}", ("INSERT", "`faturamento_produto`")),
    ],
)
def test_a_missing_grant_fails_the_run_naming_table_and_privilege(revoke, named, pg_admin_url, role, fresh_db, tmp_path, capsys):
    load_rows(fresh_db, SPEC["before"])
    url = _least_privilege(pg_admin_url, fresh_db, role)
    database = conninfo(fresh_db).params["dbname"]
    admin(pg_admin_url, database, *revoke.format(role=role, db=database).split("; "))
    before = snapshot(fresh_db)
    code, manifest = _sync(url, tmp_path)
    err = capsys.readouterr().err
    assert code == 1
    for fragment in named:
        assert fragment in manifest["error"] and fragment in err
    assert "Traceback" not in err and PW not in err and PW not in json.dumps(manifest)
    assert snapshot(fresh_db) == before  # nothing written, no run recorded


def test_postgres_own_permission_denied_names_the_table(pg_admin_url, role, fresh_db):
    url = _least_privilege(pg_admin_url, fresh_db, role)
    admin(pg_admin_url, conninfo(fresh_db).params["dbname"], f"REVOKE UPDATE ON separacao FROM {role}")
    writer = Writer(adbc_connect(url))
    writer.role = role
    try:
        with pytest.raises(PermissionDenied, match=r"permission denied for table `separacao` \(`sync` needs SELECT, UPDATE"):
            writer.execute("UPDATE separacao SET sincronizado_nf = false WHERE false")
    finally:
        writer.rollback()
        writer.close()
    # connectorx's reads are named the same way.
    admin(pg_admin_url, conninfo(fresh_db).params["dbname"], f"REVOKE SELECT ON cadastro_palletizacao FROM {role}")
    with pytest.raises(PermissionDenied, match="`cadastro_palletizacao`"):
        read_frame(url, "SELECT cod_produto FROM cadastro_palletizacao", "products")


def test_least_privilege_in_a_schema_other_than_public(pg_admin_url, role, empty_db, tmp_path, monkeypatch, capsys):
    admin(pg_admin_url, empty_db, "CREATE SCHEMA logistica")
    owner = f"postgresql://postgres@/{empty_db}?host={quote(_socket(pg_admin_url))}&options=-csearch_path%3Dlogistica"
    assert main(["init-db", "--database-url", owner]) == 0
    load_rows(owner, SPEC["before"])
    url = _least_privilege(pg_admin_url, owner, role, schema="logistica")
    code, manifest = _sync(url, tmp_path)
    assert code == 0, manifest.get("error")
    check_scenario_tables(connectorx_url(owner))
    capsys.readouterr()
    assert main(["runs", "list", "--json", "--database-url", url, "--artifacts-dir", str(tmp_path / "runs")]) == 0
    assert [r["status"] for r in json.loads(capsys.readouterr().out)] == ["success"]
