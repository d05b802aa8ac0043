"""TLS against a real server (Debian's PostgreSQL with ssl=on, our own CA, scram passwords):
`sslmode=require` and `verify-full`/`verify-ca` with `sslrootcert`, for ADBC and connectorx,
through init-db, a sync of a fixture scenario and `runs list`; a wrong CA or host name fails
cleanly. Skipped, with the reason, where no server binary is installed (see `tls_server`).
"""

from __future__ import annotations

import itertools
import json
import os
from urllib.parse import quote

import pytest

from faturamento_batch.artifacts import read_manifest
from faturamento_batch.cli import main
from faturamento_batch.db.connection import adbc_connect, conninfo, connectorx_url, with_session_options
from faturamento_batch.db.read import read_frame

from .test_real_databases import SCENARIO, SCENARIO_ARGS, SPEC, check_scenario_tables
from .dbutil import load_rows
from .tls_server import CLIENT_CERT_DB, SUPERUSER_PASSWORD

_ids = itertools.count()
SSL_SQL = "SELECT ssl, version::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


@pytest.fixture
def tls_db(tls_server):
    name = f"fb_tls_{os.getpid()}_{next(_ids)}"
    with adbc_connect(tls_server.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    yield name
    with adbc_connect(tls_server.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _kv_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# name → (form, environment); {ca} the server's CA, {port}, {db}, {pw} percent-encoded, {kvpw} kv-quoted.
TLS_FORMS = {
    "sslmode=require": ("postgresql://postgres:{pw}@localhost:{port}/{db}?sslmode=require", {}),
    "verify-full + sslrootcert": ("postgresql://postgres:{pw}@localhost:{port}/{db}?sslmode=verify-full&sslrootcert={ca}", {}),
    "verify-ca on 127.0.0.1": ("postgresql://postgres:{pw}@127.0.0.1:{port}/{db}?sslmode=verify-ca&sslrootcert={ca}", {}),
    "key/value verify-full": ("host=localhost port={port} dbname={db} user=postgres password={kvpw} sslmode=verify-full sslrootcert='{ca}'", {}),
    "postgres://u@localhost:PORT + PGPASSWORD PGSSLMODE PGSSLROOTCERT": (
        "postgres://postgres@localhost:{port}/{db}",
        {"PGPASSWORD": SUPERUSER_PASSWORD, "PGSSLMODE": "verify-full", "PGSSLROOTCERT": "{ca}"},
    ),
}  # fmt: skip


def _values(tls_server, db: str) -> dict[str, str]:
    return dict(pw=quote(SUPERUSER_PASSWORD, safe=""), kvpw=_kv_quote(SUPERUSER_PASSWORD), port=str(tls_server.port),
                db=db, ca=str(tls_server.ca_cert), wrong_ca=str(tls_server.wrong_ca_cert))  # fmt: skip


def _env(monkeypatch, env: dict[str, str]) -> None:
    for var in ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGOPTIONS", "PGSSLMODE", "PGSSLROOTCERT"):
        monkeypatch.delenv(var, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)


@pytest.mark.parametrize("name", TLS_FORMS)
def test_tls_forms_run_init_db_sync_and_runs_list_over_tls_on_both_drivers(name, tls_server, tls_db, tmp_path, monkeypatch, capsys):
    values = _values(tls_server, tls_db)
    form = TLS_FORMS[name][0].format(**values)
    _env(monkeypatch, {k: v.format(**values) for k, v in TLS_FORMS[name][1].items()})
    # Both drivers really talk TLS (pg_hba also refuses plain TCP, so a silent fallback would fail).
    session = with_session_options(form, 60)
    with adbc_connect(session, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(SSL_SQL)
        assert cur.fetchone()[0] is True
    assert read_frame(session, SSL_SQL, "TLS status").row(0)[0] is True

    runs = tmp_path / "runs"
    assert main(["init-db", "--database-url", form]) == 0
    load_rows(form, SPEC["before"])
    code = main(["sync", "--source", str(SCENARIO / "odoo"), *SCENARIO_ARGS, "--database-url", form, "--artifacts-dir", str(runs)])
    run_dir = next(runs.iterdir())
    assert code == 0, read_manifest(run_dir).get("error")
    check_scenario_tables(connectorx_url(form))
    assert main(["runs", "list", "--json", "--database-url", form, "--artifacts-dir", str(runs)]) == 0
    out = capsys.readouterr()
    listed = json.loads(out.out)
    assert [(r["run_id"], r["status"]) for r in listed] == [(run_dir.name, "success")]
    # The password (with `@:/?#%`, a space, a quote and a backslash) appears nowhere.
    blobs = [out.err, out.out, *(p.read_text() for p in runs.rglob("*.json"))]
    with adbc_connect(tls_server.admin_url(tls_db), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT coalesce(string_agg(r::text, ' '), '') FROM sync_runs r")
        blobs.append(cur.fetchone()[0])
    for secret in (SUPERUSER_PASSWORD, quote(SUPERUSER_PASSWORD, safe=""), "s3cr@t"):
        assert not [b for b in blobs if secret in b]


# name → (form, what the message must say). Each must fail before anything is written.
TLS_FAILURES = {
    "verify-full, wrong CA": ("postgresql://postgres:{pw}@localhost:{port}/{db}?sslmode=verify-full&sslrootcert={wrong_ca}", "certificate verify failed"),
    "require + sslrootcert, wrong CA": ("postgresql://postgres:{pw}@localhost:{port}/{db}?sslmode=require&sslrootcert={wrong_ca}", "certificate verify failed"),
    "verify-full, wrong host name": ("postgresql://postgres:{pw}@127.0.0.1:{port}/{db}?sslmode=verify-full&sslrootcert={ca}", "does not match host name"),
    "sslmode=disable on a TLS-only server": ("postgresql://postgres:{pw}@localhost:{port}/{db}?sslmode=disable", "no encryption"),
    "wrong password": ("postgresql://postgres:not-it@localhost:{port}/{db}?sslmode=require", "password authentication failed"),
}  # fmt: skip


@pytest.mark.parametrize("name", TLS_FAILURES)
def test_tls_failures_are_clean(name, tls_server, tls_db, tmp_path, monkeypatch, capsys):
    values = _values(tls_server, tls_db)
    _env(monkeypatch, {})
    good = TLS_FORMS["verify-full + sslrootcert"][0].format(**values)
    assert main(["init-db", "--database-url", good]) == 0
    form, expected = TLS_FAILURES[name]
    form = form.format(**values)
    capsys.readouterr()
    runs = tmp_path / "runs"
    for argv in (["init-db"], ["sync", "--source", str(SCENARIO / "odoo"), "--artifacts-dir", str(runs)],
                 ["runs", "list", "--artifacts-dir", str(runs)]):  # fmt: skip
        code = main([*argv, "--database-url", form])
        err = capsys.readouterr().err
        assert code in (1, 2), argv
        assert expected in err and "Traceback" not in err, err
        assert SUPERUSER_PASSWORD not in err and quote(SUPERUSER_PASSWORD, safe="") not in err
    with adbc_connect(tls_server.admin_url(tls_db), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT (SELECT count(*) FROM sync_runs) + (SELECT count(*) FROM faturamento_produto)")
        assert cur.fetchone()[0] == 0


def test_connectorx_verifies_the_ca_itself(tls_server, tls_db):
    """Under verify-* connectorx gets `require` + the root certificate: with a wrong CA it refuses too."""
    values = _values(tls_server, tls_db)
    bad = conninfo("postgresql://postgres:{pw}@localhost:{port}/{db}?sslmode=verify-ca&sslrootcert={wrong_ca}&connect_timeout=3".format(**values))
    with pytest.raises(Exception, match="certificate verify failed"):
        read_frame(bad, "SELECT 1", "a probe")


def test_client_certificate_sslcert_sslkey_on_both_drivers(tls_server):
    """A database whose pg_hba line wants a client certificate (CN = user) besides the password."""
    with adbc_connect(tls_server.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{CLIENT_CERT_DB}"')
        cur.execute(f'CREATE DATABASE "{CLIENT_CERT_DB}"')
    try:
        values = _values(tls_server, CLIENT_CERT_DB)
        base = "postgresql://postgres:{pw}@localhost:{port}/{db}?sslmode=verify-full&sslrootcert={ca}".format(**values)
        cert, key = tls_server.client_cert, tls_server.client_cert.with_suffix(".key")
        with_cert = conninfo(f"{base}&sslcert={cert}&sslkey={key}")
        with adbc_connect(with_cert, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute("SELECT client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            assert cur.fetchone()[0] == "/CN=postgres"
        assert read_frame(with_cert, "SELECT client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()", "TLS status").row(0)[0] == "/CN=postgres"
        with pytest.raises(Exception, match="certificate"):
            adbc_connect(base, autocommit=True)
    finally:
        with adbc_connect(tls_server.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{CLIENT_CERT_DB}" WITH (FORCE)')


def test_password_file_is_read_for_both_drivers(tls_server, tls_db, tmp_path, monkeypatch):
    """No password in the URL: libpq would read ~/.pgpass, connectorx cannot; the job reads it for both."""
    pgpass = tmp_path / ".pgpass"
    escaped = SUPERUSER_PASSWORD.replace("\\", "\\\\").replace(":", "\\:")
    pgpass.write_text(f"localhost:{tls_server.port}:*:postgres:{escaped}\n")
    pgpass.chmod(0o600)
    _env(monkeypatch, {})
    monkeypatch.setenv("HOME", str(tmp_path))
    form = f"postgresql://postgres@localhost:{tls_server.port}/{tls_db}?sslmode=verify-full&sslrootcert={tls_server.ca_cert}"
    assert main(["init-db", "--database-url", form]) == 0
    assert read_frame(form, SSL_SQL, "TLS status").row(0)[0] is True
