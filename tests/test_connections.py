"""The database setting read like libpq reads it, and rendered for ADBC and connectorx (no server).

What each form means is libpq's (https://www.postgresql.org/docs/current/libpq-connect.html);
the servers in test_real_databases.py / test_tls.py check that both drivers then reach the
same place.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from faturamento_batch.db.privileges import IMPORT_GRANTS, STOCK_GRANTS, GrantCheck, grants, missing_grants_error, permission_message
from faturamento_batch.dsn import ConnInfo, parse_keyword_value, password_of, raw_keywords, resolve
from faturamento_batch.errors import ConfigError
from faturamento_batch.settings import Settings, redact

PW = "p@ss:w/o?r#d% x"  # every character a URL must encode, and a space
PW_URL = "p%40ss%3Aw%2Fo%3Fr%23d%25%20x"

# form → the keywords libpq reads from it (before the environment and defaults).
FORMS = {
    "postgresql://postgres:@/mydb?host=/run/pg": {"user": "postgres", "dbname": "mydb", "host": "/run/pg"},
    "postgres://u@localhost:5433/d": {"user": "u", "host": "localhost", "port": "5433", "dbname": "d"},
    "postgresql+psycopg://u:pw@h/d": {"user": "u", "password": "pw", "host": "h", "dbname": "d"},
    "postgresql+asyncpg://u@h/d?sslmode=require": {"user": "u", "host": "h", "dbname": "d", "sslmode": "require"},
    "postgresql:///d": {"dbname": "d"},
    "postgresql://": {},
    "postgresql://%2Ftmp%2Fdir/db": {"host": "/tmp/dir", "dbname": "db"},
    "postgresql://u@[::1]:6543/d": {"user": "u", "host": "::1", "port": "6543", "dbname": "d"},
    f"postgresql://us%40er:{PW_URL}@h/d": {"user": "us@er", "password": PW, "host": "h", "dbname": "d"},
    # libpq takes a raw `?`/`#` in the user info (it ends at the `@` before the first `/`).
    "postgresql://u:a?b#c@h/d": {"user": "u", "password": "a?b#c", "host": "h", "dbname": "d"},
    "postgresql://h/d?options=-csearch_path%3Dlogistica&connect_timeout=7&application_name=my%20app": {
        "host": "h", "dbname": "d", "options": "-csearch_path=logistica", "connect_timeout": "7", "application_name": "my app",
    },
    "postgresql://h/d?options=-c+x": {"host": "h", "dbname": "d", "options": "-c+x"},  # `+` is not a space to libpq
    "postgresql://h/d?ssl=true": {"host": "h", "dbname": "d", "sslmode": "require"},  # JDBC's spelling
    "postgresql://h/d?sslmode=verify-full&sslrootcert=/ca.crt": {"host": "h", "dbname": "d", "sslmode": "verify-full", "sslrootcert": "/ca.crt"},
    "host=/run/pg dbname=mydb user=postgres": {"host": "/run/pg", "dbname": "mydb", "user": "postgres"},
    "host = h  port= 5 dbname =d": {"host": "h", "port": "5", "dbname": "d"},
    r"host=h password='a b\'c' user=me": {"host": "h", "password": "a b'c", "user": "me"},
    r"password='\\back\\slash' dbname=''": {"password": r"\back\slash", "dbname": ""},
    r"password=un\ quoted dbname=d": {"password": "un quoted", "dbname": "d"},
    "host=h options='-c search_path=logistica -c work_mem=64MB'": {"host": "h", "options": "-c search_path=logistica -c work_mem=64MB"},
    "host=/dir": {"host": "/dir"},
}


@pytest.mark.parametrize("form", FORMS)
def test_each_form_reads_as_libpq_reads_it(form):
    assert raw_keywords(form) == FORMS[form]


NO_ENV: dict[str, str] = {"HOME": "/nonexistent"}


@pytest.mark.parametrize("form", [f for f in FORMS if "sslrootcert" not in f])
def test_both_renderings_carry_the_same_keywords(form):
    info = resolve(form, NO_ENV)
    # ADBC's key/value string reads back as exactly the resolved keywords, whatever the quoting.
    assert parse_keyword_value(info.libpq()) == info.params
    # connectorx's URL reads back (by libpq's rules) as the same place, user, password and options.
    back = raw_keywords(info.connectorx())
    for key in ("host", "port", "dbname", "user", "password", "options", "application_name", "connect_timeout"):
        assert back.get(key) == info.params.get(key), key
    if not info.is_socket:
        assert back.get("sslmode") == info.params.get("sslmode")


def test_defaults_and_environment_fill_only_the_gaps():
    env = {"PGHOST": "envhost", "PGPORT": "6000", "PGUSER": "envuser", "PGPASSWORD": "envpw", "PGDATABASE": "envdb",
           "PGSSLMODE": "require", "PGOPTIONS": "-csearch_path=logistica", "PGAPPNAME": "envapp", "HOME": "/nonexistent"}  # fmt: skip
    assert resolve("postgresql://", env).params == {
        "host": "envhost", "port": "6000", "dbname": "envdb", "user": "envuser", "password": "envpw",
        "sslmode": "require", "options": "-csearch_path=logistica", "application_name": "envapp",
    }  # fmt: skip
    # What the setting spells wins over the environment.
    got = resolve("postgresql://u:pw@h:7/d?sslmode=disable&options=-cx%3D1", env).params
    assert (got["user"], got["password"], got["host"], got["port"], got["dbname"], got["sslmode"], got["options"]) == (
        "u", "pw", "h", "7", "d", "disable", "-cx=1")
    # libpq's defaults: port 5432, dbname = user.
    got = resolve("host=h user=alice", {"HOME": "/nonexistent"}).params
    assert (got["port"], got["dbname"]) == ("5432", "alice")
    # An empty password (pgserver's `postgres:@`) leaves PGPASSWORD to fill it, as libpq does.
    assert resolve("postgresql://u:@h/d", {"PGPASSWORD": "x"}).password == "x"


def test_socket_directory_goes_percent_encoded_in_the_connectorx_host_without_tls():
    info = resolve("postgresql://postgres:@/mydb?host=/run/my%20pg&sslmode=require", NO_ENV)
    assert info.params["host"] == "/run/my pg"
    # No `host=` in the query (rust-postgres would add it as a *second* host), no TLS over a socket.
    assert info.connectorx() == "postgresql://postgres@%2Frun%2Fmy%20pg:5432/mydb"


def test_verify_modes_reach_connectorx_as_require_with_the_root_certificate(tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_text("x")
    for mode in ("verify-ca", "verify-full"):
        url = resolve(f"postgresql://u@db.example/d?sslmode={mode}&sslrootcert={ca}", NO_ENV).connectorx()
        assert f"sslmode=require&sslrootcert={str(ca).replace('/', '%2F')}" in url
    assert "sslmode=prefer" in resolve("postgresql://u@h/d?sslmode=allow", NO_ENV).connectorx()
    # libpq's default root certificate, named for both drivers when none is given.
    (tmp_path / ".postgresql").mkdir()
    (tmp_path / ".postgresql" / "root.crt").write_text("x")
    info = resolve("postgresql://u@h/d?sslmode=verify-full", {"HOME": str(tmp_path)})
    assert info.params["sslrootcert"] == str(tmp_path / ".postgresql" / "root.crt")


def test_session_options_merge_with_the_users():
    info = resolve("postgresql://u@h/d?options=-csearch_path%3Dlogistica", NO_ENV)
    merged = info.with_session("faturamento_batch", 900_000)
    assert merged.params["options"] == "-c statement_timeout=900000 -csearch_path=logistica"
    assert merged.params["application_name"] == "faturamento_batch"
    # The user's own application_name wins; their statement_timeout comes last, so it wins in PostgreSQL too.
    mine = resolve("host=h application_name=mine options='-c statement_timeout=5'", NO_ENV).with_session("faturamento_batch", 900_000)
    assert mine.params["application_name"] == "mine"
    assert mine.params["options"] == "-c statement_timeout=900000 -c statement_timeout=5"
    assert "options=-c%20statement_timeout%3D900000%20-c%20statement_timeout%3D5" in mine.connectorx()
    assert "options" not in resolve("host=h", NO_ENV).with_session("x", 0).params


# form → a fragment the message must contain (naming what cannot be honoured).
REFUSED = {
    f"mysql://u:{PW_URL}@h/d": "the scheme `mysql://`",
    f"jdbc:postgresql://u:{PW_URL}@h/d": "neither",
    "just-a-name": "neither a `postgresql://` URL",
    f"postgresql://u:{PW_URL}@h1,h2/d": "several hosts",
    f"postgresql://u:{PW_URL}@h/d?service=prod": "`service`",
    f"postgresql://u:{PW_URL}@h/d?hostaddr=10.0.0.1": "`hostaddr`",
    f"postgresql://u:{PW_URL}@h/d?client_encoding=latin1": "`client_encoding`",
    f"postgresql://u:{PW_URL}@h/d?foo=bar": "`foo` is not a libpq connection parameter",
    f"postgresql://u:{PW_URL}@h/d?sslmode=maybe": "`sslmode=maybe`",
    f"postgresql://u:{PW_URL}@h/d?sslmode=verify-full": "needs the server's CA",
    f"postgresql://u:{PW_URL}@h/d?sslmode=verify-ca&sslrootcert=/no/such/ca.crt": "`sslrootcert=/no/such/ca.crt` names no readable file",
    f"postgresql://u:{PW_URL}@h/d?sslrootcert=system": "`sslrootcert=system`",
    f"postgresql://u:{PW_URL}@h/d?sslcert=/c.crt": "both `sslcert` and `sslkey`",
    f"postgresql://u:{PW_URL}@h:port/d": "the port `port`",
    f"postgresql://u:{PW_URL}@h/d?connect_timeout=soon": "`connect_timeout=soon`",
    f"postgresql://u:{PW_URL}@h/d?target_session_attrs=standby": "`target_session_attrs=standby`",
    f"postgresql://u:{PW_URL}@h/d?sslmode": "`sslmode` has no value",
    f"host=h password='{PW}": "unterminated quote",
    f"host=h password {PW}": "`password` is missing `=`",
    f"host=h password='{PW}' gssencmode=require": "`gssencmode`",
}


@pytest.mark.parametrize("form", REFUSED)
def test_a_form_that_cannot_be_honoured_is_refused_by_name_without_the_password(form):
    with pytest.raises(ConfigError) as info:
        resolve(form, NO_ENV)
    message = str(info.value)
    assert REFUSED[form] in message
    assert "FATURAMENTO_DATABASE_URL" in message or "`PG" in message
    assert PW not in message and PW_URL not in message and "w/o?r" not in message
    assert info.value.exit_code == 2


def test_environment_libpq_would_honour_but_connectorx_cannot_is_refused():
    with pytest.raises(ConfigError, match="`PGSERVICE` is set"):
        resolve("host=h", {"PGSERVICE": "prod"})


@pytest.mark.parametrize(
    ("text", "password"),
    [
        (f"postgresql://u:{PW_URL}@h/d", PW),
        ("host=h user=u password='p@ss:w/o?r#d% x'", PW),
        ("host=h password=a-Secret-pw user=u", "a-Secret-pw"),
    ],
)
def test_the_password_is_a_secret_whatever_the_form(text, password, monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    settings = Settings(database_url=text)
    assert password_of(text, {}) == password
    encoded = quote(password, safe="")
    leaked = f"could not connect with {text} (password {password}, encoded {encoded})"
    scrubbed = settings.scrub(leaked)
    assert password not in scrubbed and encoded not in scrubbed and "w/o?r" not in scrubbed


def test_pgpassword_is_a_secret_too(monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "env-Secret-1")
    settings = Settings(database_url="host=/tmp dbname=d")
    assert "env-Secret-1" not in settings.scrub("auth failed for env-Secret-1")
    assert "env-Secret-1" in settings.secrets


def test_redact_masks_url_and_key_value_passwords():
    assert redact("at postgresql://u:s3cret@h/d") == "at postgresql://u:***@h/d"
    assert redact("at postgresql://:s3cret@h/d") == "at postgresql://:***@h/d"
    assert "s3 cret" not in redact(r"host=h password='s3 cret\'x' user=u")
    assert redact("host=h password=s3cret user=u") == "host=h password=*** user=u"


def test_describe_masks_the_password():
    info = resolve(f"postgresql://u:{PW_URL}@h/d", NO_ENV)
    assert info.describe() == "postgresql://u:***@h:5432/d"
    assert ConnInfo({"host": "h", "port": "1", "dbname": "d", "user": "u"}).describe() == "postgresql://u@h:1/d"


def test_grant_map_stock_group_can_be_left_out_and_dry_runs_only_read():
    full = grants()
    assert full["movimentacao_estoque"] == ("SELECT", "UPDATE", "INSERT")
    assert full["inconsistencia_faturamento"] == ("SELECT", "INSERT", "UPDATE")
    assert full["embarques"] == ("SELECT",)
    no_stock = grants(include_stock=False)
    assert set(no_stock) == set(IMPORT_GRANTS) and no_stock["movimentacao_estoque"] == ("SELECT", "UPDATE")
    assert set(grants(dry_run=True).values()) == {("SELECT",)}
    check = GrantCheck.build(include_stock=True)
    rows = set(zip(check.objects, check.privileges, check.kinds, check.optional))
    assert ("", "TEMP", "database", False) in rows
    assert ("sync_runs", "USAGE", "sequence", False) in rows  # it INSERTs: its serial needs USAGE
    assert ("faturamento_parcial_justificativa", "INSERT", "table", True) in rows  # stock tables: skipped if absent
    assert not any(kind == "database" for kind in GrantCheck.build(dry_run=True).kinds)
    assert set(STOCK_GRANTS) - set(IMPORT_GRANTS) == {"inconsistencia_faturamento", "faturamento_parcial_justificativa", "embarques"}


def test_missing_grants_become_one_message_naming_table_and_privilege():
    error = missing_grants_error('[{"objeto": "separacao", "privilegio": "UPDATE"}, {"objeto": "", "privilegio": "TEMP"}]', "fb_sync")
    assert error is not None and error.exit_code == 1
    assert "UPDATE on table `separacao`" in str(error) and "TEMP on the database" in str(error)
    assert "GRANT UPDATE ON separacao TO fb_sync;" in str(error)
    assert missing_grants_error("[]", "fb_sync") is None


def test_postgres_permission_denied_is_named():
    msg = permission_message('ERROR:  permission denied for table separacao. SQLSTATE: 42501', "fb_sync")
    assert msg is not None and "`separacao`" in msg and "SELECT, UPDATE, INSERT" not in msg and "UPDATE" in msg
    assert permission_message("ERROR: relation x does not exist", "r") is None


def test_no_statement_names_the_public_schema():
    package = Path(__file__).resolve().parent.parent / "faturamento_batch"
    offenders = [
        f"{path.name}:{n}"
        for path in package.rglob("*.py")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if any(s in line.lower() for s in ("public.", "'public'", '"public"', "schema public"))
    ]
    assert not offenders, offenders


def test_the_password_file_fills_a_missing_password_for_both_drivers(tmp_path):
    pgpass = tmp_path / "pgpass"
    pgpass.write_text("# comment\nother:5432:*:*:no\nlocalhost:5432:db:u:sock-pw\ndb.example:*:*:u:p\\:w\\\\d\n")
    pgpass.chmod(0o600)
    env = {"PGPASSFILE": str(pgpass), "HOME": "/nonexistent"}
    assert resolve("postgresql://u@db.example:6000/x", env).password == "p:w\\d"
    assert resolve("host=/run/pg dbname=db user=u", env).password == "sock-pw"  # a socket matches localhost
    assert resolve("postgresql://u:given@db.example/x", env).password == "given"  # the setting wins
    assert resolve("postgresql://nobody@db.example/x", env).password is None
    info = resolve(f"postgresql://u@db.example/x?passfile={pgpass}", {"HOME": "/nonexistent"})
    assert info.password == "p:w\\d" and "passfile" not in info.params  # consumed, so neither driver re-reads it
    assert "p%3Aw%5Cd@db.example" in info.connectorx()
    pgpass.chmod(0o644)  # libpq ignores a password file others can read
    assert resolve("postgresql://u@db.example/x", env).password is None
