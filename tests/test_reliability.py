"""Crashes and faults: a killed or failed run leaves the database exactly as before,
and the next run reaches the same end state as a run that never failed."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from faturamento_batch.cli import main
from faturamento_batch.db.connection import adbc_connect
from faturamento_batch.replay import ReplayServer

from .builders import build_dataset
from .dbutil import load_cascade_rows, scalar
from .test_sync_wire import _comparable

DAY1, DAY2 = "2026-01-05 10:00:00", "2026-01-06 10:00:00"


def _state(url: str) -> dict:
    out = _comparable(url)
    out["sync_state"] = scalar(url, "SELECT coalesce(max(cursor)::text, '') FROM sync_state")
    out["sync_runs"] = scalar(url, "SELECT count(*) FROM sync_runs")
    return out


def _cmd(ds: Path, url: str, runs: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "faturamento_batch.cli", "sync", "--source", str(ds), "--database-url", url,
            "--artifacts-dir", str(runs), *extra]  # fmt: skip


@pytest.fixture(scope="module")
def days(tmp_path_factory):
    root = tmp_path_factory.mktemp("days")
    day1 = build_dataset(root / "day1", moves=8_000, products=400, write_date=DAY1)
    # Day 2: 8,000 new NFs (24,000 lines) and 150 cancellations with stock/shipment/picking rows.
    day2 = build_dataset(root / "day2", moves=16_000, products=400, cancelled=set(range(1, 151)), write_date=DAY2)
    return day1, day2


def _prepare(url: str, day1: Path, runs: Path) -> None:
    assert main(["sync", "--source", str(day1), "--database-url", url, "--artifacts-dir", str(runs)]) == 0
    load_cascade_rows(url, [str(100_000 + m) for m in range(1, 151)])


def _kill_at(cmd: list[str], marker: str | None, delay: float) -> int:
    """Start `cmd`, SIGKILL it `delay` s after it logs `marker` (or after start); returns its exit status."""
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    if marker is None:
        time.sleep(delay)
    else:
        for line in proc.stderr:  # type: ignore[union-attr]
            if marker in line:
                time.sleep(delay)
                break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return proc.returncode


KILL_POINTS = [
    ("during extraction", "extract: reading Odoo", 0.05),
    ("during COPY", "write: COPY", 0.0),
    ("during the cascade", "write: cancellation cascade", 0.0),
    ("just before commit", "write: commit", 0.0),
]


def test_sigkill_anywhere_leaves_before_or_after_and_the_next_run_completes(days, db_url, second_db, tmp_path):
    day1, day2 = days
    # The reference: the same two days, never interrupted.
    _prepare(second_db, day1, tmp_path / "ref")
    assert main(["sync", "--source", str(day2), "--database-url", second_db, "--artifacts-dir", str(tmp_path / "ref")]) == 0
    after = _state(second_db)

    _prepare(db_url, day1, tmp_path / "runs")
    before = _state(db_url)
    rng = random.Random(int(os.environ.get("FB_CRASH_SEED", "7")))
    points = KILL_POINTS + [(f"random {i}", None, rng.uniform(0.3, 3.0)) for i in range(3)]
    outcomes = []
    for name, marker, delay in points:
        status = _kill_at(_cmd(day2, db_url, tmp_path / "runs"), marker, delay)
        state = _state(db_url)
        assert state in (before, after), f"half-written database after a kill {name}"
        outcomes.append((name, status, "after" if state == after else "before"))
        if state == after:
            break  # the kill came too late: the run had committed
    print("kill outcomes:", outcomes)
    assert any(o[2] == "before" and o[1] == -signal.SIGKILL for o in outcomes), outcomes
    # The next run completes and reaches the same end state as the uninterrupted one.
    assert main(["sync", "--source", str(day2), "--database-url", db_url, "--artifacts-dir", str(tmp_path / "runs")]) == 0
    final = _state(db_url)
    assert {k: v for k, v in final.items() if k != "sync_runs"} == {k: v for k, v in after.items() if k != "sync_runs"}


def test_terminated_backend_fails_the_run_cleanly(days, db_url, tmp_path):
    day1, day2 = days
    _prepare(db_url, day1, tmp_path / "runs")
    before = _state(db_url)
    proc = subprocess.Popen(_cmd(day2, db_url, tmp_path / "runs"), stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stderr:  # type: ignore[union-attr]
        lines.append(line)
        if "write: COPY" in line:
            scalar(db_url, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'faturamento_batch'")
            break
    lines += proc.stderr.read().splitlines()  # type: ignore[union-attr]
    assert proc.wait() == 75  # connection lost: retry later as it is
    text = "\n".join(lines)
    assert "Traceback" not in text and ("PostgreSQL" in text or "connection" in text), text[-2000:]
    assert _state(db_url) == before
    assert main(["sync", "--source", str(day2), "--database-url", db_url, "--artifacts-dir", str(tmp_path / "runs")]) == 0
    assert scalar(db_url, "SELECT count(*) FROM faturamento_produto WHERE status_nf = 'Cancelado'") == 450


def test_statement_timeout_fails_the_run_cleanly(days, db_url, tmp_path, capsys):
    day1, _ = days
    code = main(["sync", "--source", str(day1), "--database-url", db_url, "--artifacts-dir", str(tmp_path / "runs"),
                 "--statement-timeout", "0.001"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 75  # SQLSTATE 57014: retry later
    assert "statement timeout" in err and "Traceback" not in err
    assert scalar(db_url, "SELECT count(*) FROM faturamento_produto") == 0
    assert scalar(db_url, "SELECT count(*) FROM sync_state") == 0


def test_two_syncs_started_together_one_runs_one_exits_3(days, db_url, tmp_path):
    day1, _ = days
    procs = [subprocess.Popen(_cmd(day1, db_url, tmp_path / f"runs{i}"), stderr=subprocess.PIPE, text=True) for i in range(2)]
    codes = sorted(p.wait() for p in procs)
    assert codes == [0, 3]
    assert scalar(db_url, "SELECT count(*) FROM sync_runs") == 1
    waits = [subprocess.Popen(_cmd(day1, db_url, tmp_path / f"w{i}", "--wait", "60"), stderr=subprocess.PIPE, text=True) for i in range(2)]
    assert sorted(p.wait() for p in waits) == [0, 0]
    assert scalar(db_url, "SELECT count(*) FROM sync_runs") == 3


def test_server_down_then_restarted(tmp_path):
    """The server is gone between runs: exit 1 with a clear message; back up: the run succeeds."""
    import warnings

    import pgserver

    pgroot = Path(tmp_path_factory_dir := os.path.join("/tmp", f"fb-restart-{os.getpid()}"))
    pgroot.mkdir(exist_ok=True)
    pgroot.chmod(0o755)
    ds = build_dataset(tmp_path / "odoo", moves=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        srv = pgserver.get_server(pgroot / "pgdata", cleanup_mode="stop")
    url = f"postgresql://postgres@localhost/postgres?host={pgroot / 'pgdata'}"
    assert main(["init-db", "--database-url", url]) == 0
    assert main(["sync", "--source", str(ds), "--database-url", url, "--artifacts-dir", str(tmp_path / "runs")]) == 0
    srv.cleanup()  # stops the server
    code = main(["sync", "--source", str(ds), "--database-url", url, "--artifacts-dir", str(tmp_path / "runs"), "--full"])
    assert code == 75  # unreachable: retry later
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        srv = pgserver.get_server(pgroot / "pgdata", cleanup_mode="delete")
    try:
        code = main(["sync", "--source", str(ds), "--database-url", url, "--artifacts-dir", str(tmp_path / "runs"), "--full"])
        assert code == 0
        assert scalar(url, "SELECT count(*) FROM faturamento_produto") == 60
    finally:
        srv.cleanup()
    del tmp_path_factory_dir


@pytest.mark.parametrize("fault", [{"fail_next": 3}, {"reset_next": 2}, {"truncate_next": 2}, {"short_page_next": 2}])
def test_transient_odoo_faults_are_survived(fault, db_url, tmp_path, monkeypatch):
    ds = build_dataset(tmp_path / "odoo", moves=40)
    with ReplayServer(ds, **fault, fault_match="search_read") as odoo:
        monkeypatch.setenv("ODOO_PASSWORD", odoo.meta["password"])
        code = main(["sync", "--odoo-url", odoo.url, "--odoo-db", odoo.meta["db"], "--odoo-user", odoo.meta["login"],
                     "--page-size", "25", "--database-url", db_url, "--artifacts-dir", str(tmp_path / "runs")])  # fmt: skip
    assert code == 0
    assert scalar(db_url, "SELECT count(*) FROM faturamento_produto") == 120


def test_access_denied_exits_1_and_persistent_5xx_exits_75_with_actionable_messages(db_url, tmp_path, monkeypatch, capsys):
    ds = build_dataset(tmp_path / "odoo", moves=5)
    with ReplayServer(ds) as odoo:
        monkeypatch.setenv("ODOO_PASSWORD", "not-the-password")
        args = ["sync", "--odoo-url", odoo.url, "--odoo-db", odoo.meta["db"], "--odoo-user", odoo.meta["login"],
                "--database-url", db_url, "--artifacts-dir", str(tmp_path / "runs")]  # fmt: skip
        assert main(args) == 1
        err = capsys.readouterr().err
        assert "refused the login for `admin`" in err and "not-the-password" not in err
        monkeypatch.setenv("ODOO_PASSWORD", odoo.meta["password"])
        odoo.set_faults(fail_next=100, fault_match="search_read")
        assert main(args) == 75  # persistent 5xx: retry later
        err = capsys.readouterr().err
        assert "HTTP 503" in err and "gave up after" in err and "Traceback" not in err
    assert scalar(db_url, "SELECT count(*) FROM sync_state") == 0
    assert scalar(db_url, "SELECT count(*) FROM faturamento_produto") == 0


def test_secrets_never_leak(db_url, tmp_path, monkeypatch, capsys):
    ds = build_dataset(tmp_path / "odoo", moves=5)
    secret_pw, secret_key = "pw-Very-Secret-123", "key-Very-Secret-456"
    meta = json.loads((ds / "meta.json").read_text())
    meta.update(password=secret_pw, api_key=secret_key)
    (ds / "meta.json").write_text(json.dumps(meta))
    with ReplayServer(ds) as odoo:
        for transport, env in (("jsonrpc", {"ODOO_PASSWORD": secret_pw}), ("json2", {"ODOO_API_KEY": secret_key})):
            for k, v in env.items():
                monkeypatch.setenv(k, v)
            for extra in ([], ["--odoo-db", "wrong-db"]):  # a success and a failure
                main(["sync", "--odoo-url", odoo.url, "--odoo-db", meta["db"], "--odoo-user", meta["login"], "--transport",
                      transport, "--database-url", db_url, "--artifacts-dir", str(tmp_path / "runs"), "-v", *extra])  # fmt: skip
    seen = capsys.readouterr()
    blobs = [seen.err, seen.out]
    for path in (tmp_path / "runs").rglob("*"):
        if path.is_file():
            blobs.append(path.read_bytes().decode("utf-8", errors="replace"))
    conn = adbc_connect(db_url, autocommit=True)
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(string_agg(r::text, ' '), '') FROM sync_runs r")
        blobs.append(cur.fetchone()[0])
    conn.close()
    for blob in blobs:
        assert secret_pw not in blob and secret_key not in blob
