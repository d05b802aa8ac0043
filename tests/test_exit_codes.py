"""Every exit code a scheduler acts on, produced through the CLI against a real PostgreSQL and
a real replay server: 75 (retry later, nothing written) versus 1 (fix something first)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from faturamento_batch.artifacts import read_manifest
from faturamento_batch.cli import main
from faturamento_batch.db.connection import adbc_connect
from faturamento_batch.errors import (
    EX_TEMPFAIL,
    DatabasePermanentError,
    DatabaseTransientError,
    database_error,
)
from faturamento_batch.replay import ReplayServer

from .builders import build_dataset
from .dbutil import scalar


def stopped_port() -> int:
    """A local TCP port nobody listens on (bound once, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def latest_manifest(runs: Path) -> dict:
    return read_manifest(max(runs.iterdir(), key=lambda p: p.stat().st_mtime_ns))


def sync(db_url: str, runs: Path, *args: str) -> int:
    return main(["sync", "--database-url", db_url, "--artifacts-dir", str(runs), *args])


def nothing_written(db_url: str) -> bool:
    return scalar(db_url, "SELECT (SELECT count(*) FROM faturamento_produto) + (SELECT count(*) FROM sync_state)") == 0


def odoo_args(odoo: ReplayServer) -> list[str]:
    return ["--odoo-url", odoo.url, "--odoo-db", odoo.meta["db"], "--odoo-user", odoo.meta["login"]]


def test_odoo_unreachable_exits_75(db_url, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ODOO_PASSWORD", "x")
    url = f"http://127.0.0.1:{stopped_port()}"
    code = sync(db_url, tmp_path / "runs", "--odoo-url", url, "--odoo-db", "d", "--odoo-user", "u")
    err = capsys.readouterr().err
    assert code == EX_TEMPFAIL
    assert "gave up after" in err and "Traceback" not in err
    manifest = latest_manifest(tmp_path / "runs")
    assert manifest["status"] == "failed" and manifest["error_type"] == "OdooTransientError"
    assert manifest["exit_code"] == EX_TEMPFAIL
    assert nothing_written(db_url)


def test_odoo_unknown_field_exits_1(db_url, tmp_path, monkeypatch, capsys):
    ds = build_dataset(tmp_path / "odoo", moves=3)
    with ReplayServer(ds) as odoo:
        # An Odoo without the Brazilian localization's CNPJ field on partners.
        odoo._data.tables["res.partner"].fields.pop("l10n_br_cnpj")
        monkeypatch.setenv("ODOO_PASSWORD", odoo.meta["password"])
        code = sync(db_url, tmp_path / "runs", *odoo_args(odoo))
        partner_calls = {k: n for k, n in odoo.stats()["calls"].items() if "res.partner" in k}
    err = capsys.readouterr().err
    assert code == 1
    assert "l10n_br_cnpj" in err and "l10n_br" in err
    assert partner_calls and all(n == 1 for n in partner_calls.values()), partner_calls  # not retried
    assert latest_manifest(tmp_path / "runs")["error_type"] == "OdooPermanentError"
    assert nothing_written(db_url)


def test_database_unreachable_exits_75(tmp_path, capsys):
    ds = build_dataset(tmp_path / "odoo", moves=1)
    url = f"postgresql://fb:pw-not-shown@127.0.0.1:{stopped_port()}/faturamento"
    code = sync(url, tmp_path / "runs", "--source", str(ds))
    err = capsys.readouterr().err
    assert code == EX_TEMPFAIL
    assert "cannot connect to PostgreSQL" in err and "pw-not-shown" not in err
    assert latest_manifest(tmp_path / "runs")["error_type"] == "DatabaseTransientError"


def test_unknown_database_exits_1(pg_admin_url, tmp_path, capsys):
    ds = build_dataset(tmp_path / "odoo", moves=1)
    base, _, query = pg_admin_url.partition("?")
    url = base.rsplit("/", 1)[0] + "/fb_no_such_database" + (f"?{query}" if query else "")
    code = sync(url, tmp_path / "runs", "--source", str(ds))
    err = capsys.readouterr().err
    assert code == 1
    assert "fb_no_such_database" in err and "does not exist" in err
    assert latest_manifest(tmp_path / "runs")["error_type"] == "DatabasePermanentError"


# PostgreSQL raising the code itself (a trigger on the run record, the run's last write):
# the driver hands the real SQLSTATE to the classification, as a real deadlock would.
RAISED = [
    ("40P01", EX_TEMPFAIL, "DatabaseTransientError"),  # deadlock_detected
    ("40001", EX_TEMPFAIL, "DatabaseTransientError"),  # serialization_failure
    ("57014", EX_TEMPFAIL, "DatabaseTransientError"),  # query_canceled
    ("23505", 1, "DatabasePermanentError"),  # unique_violation
    ("23514", 1, "DatabasePermanentError"),  # check_violation
    ("42501", 1, "DatabasePermanentError"),  # insufficient_privilege
]


def raise_on_run_record(db_url: str, sqlstate: str) -> None:
    assert sqlstate.isalnum()  # test constant pasted into DDL, which takes no parameters
    conn = adbc_connect(db_url)
    with conn.cursor() as cur:
        cur.execute(
            "CREATE FUNCTION fb_fail() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION 'injected %', '{sqlstate}' USING ERRCODE = '{sqlstate}'; END $$"
        )
        cur.execute("CREATE TRIGGER fb_fail BEFORE INSERT ON sync_runs FOR EACH ROW EXECUTE FUNCTION fb_fail()")
    conn.commit()
    conn.close()


@pytest.mark.parametrize(("sqlstate", "exit_code", "error_type"), RAISED)
def test_sqlstate_decides_the_exit_code(sqlstate, exit_code, error_type, db_url, tmp_path, capsys):
    ds = build_dataset(tmp_path / "odoo", moves=4)
    raise_on_run_record(db_url, sqlstate)
    code = sync(db_url, tmp_path / "runs", "--source", str(ds), "--log-format", "json", "--write-retries", "1")
    assert code == exit_code
    manifest = latest_manifest(tmp_path / "runs")
    assert manifest["status"] == "failed" and manifest["error_type"] == error_type
    # Deadlocks and serialization failures are retried in the run (then 75); the rest are not.
    assert manifest["write_attempts"] == (2 if sqlstate in ("40P01", "40001") else 1)
    assert manifest["sqlstate"] == sqlstate and manifest["exit_code"] == exit_code
    assert manifest["counts"]["inserts"] == 12  # there was work; none of it committed
    assert nothing_written(db_url)
    errors = [json.loads(line) for line in capsys.readouterr().err.splitlines() if '"level": "error"' in line]
    assert errors[-1]["exit_code"] == exit_code and errors[-1]["sqlstate"] == sqlstate


class _DriverError(Exception):
    """Stands for an ADBC exception: what `database_error` reads is `sqlstate` and `status_code`."""

    def __init__(self, text: str, sqlstate: str | None = None, status: str | None = None):
        super().__init__(text)
        self.sqlstate = sqlstate
        self.status_code = type("Status", (), {"name": status})() if status else None


@pytest.mark.parametrize(
    ("cause", "connecting", "expected"),
    [
        (_DriverError("x", "08006"), False, DatabaseTransientError),
        (_DriverError("x", "57P01"), False, DatabaseTransientError),
        (_DriverError("x", "55P03"), False, DatabaseTransientError),
        (_DriverError("x", "42P01"), False, DatabasePermanentError),
        (_DriverError("server closed the connection unexpectedly", None, "IO"), False, DatabaseTransientError),
        (_DriverError("Connection refused", None, "IO"), True, DatabaseTransientError),
        (_DriverError('FATAL:  role "bob" does not exist', None, "IO"), True, DatabasePermanentError),
        (_DriverError("FATAL:  password authentication failed for user", None, "IO"), True, DatabasePermanentError),
        (_DriverError('Failed to connect: invalid port number: "99999"', None, "IO"), True, DatabasePermanentError),
        (_DriverError('invalid URI query parameter: "foo"', None, "IO"), True, DatabasePermanentError),
        (_DriverError('could not translate host name "db" to address', None, "IO"), True, DatabaseTransientError),
        (_DriverError("bad value", None, "INVALID_ARGUMENT"), False, DatabasePermanentError),
    ],
)
def test_classification_table(cause, connecting, expected):
    error = database_error("m", cause, connecting=connecting)
    assert type(error) is expected
    assert error.exit_code == (EX_TEMPFAIL if expected is DatabaseTransientError else 1)


def test_malformed_database_url_exits_2_not_75(tmp_path, capsys):
    """libpq would report a bad URL with the same IO status as an unreachable server; the job reads
    the setting itself first and refuses it as a configuration error: retrying it is useless."""
    ds = build_dataset(tmp_path / "odoo", moves=1)
    code = sync("postgresql://fb@127.0.0.1:99999/faturamento", tmp_path / "runs", "--source", str(ds))
    assert code == 2
    assert "the port `99999` is not a port number" in capsys.readouterr().err
    assert latest_manifest(tmp_path / "runs")["error_type"] == "ConfigError"
