"""Living beside the logistics application: `lock_timeout` bounds every wait for its rows, and
a lock timeout in the write transaction rolls back and retries the whole transaction (state
re-read, diff recomputed, Odoo not read again), then exits 75 with nothing written."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import pytest

from faturamento_batch.artifacts import read_manifest
from faturamento_batch.cli import main
from faturamento_batch.db.connection import adbc_connect, with_session_options

from .builders import build_dataset
from .dbutil import load_cascade_rows, read_table, scalar, snapshot

DAY2 = "2026-01-06 10:00:00"
CANCELLED = ["100001", "100002"]
# A row the day-2 run must update, per table: a cancelled NF's shipment item (the cascade)
# and one of its invoice lines (the status change).
HOLD = {
    "embarque_itens": "SELECT id FROM embarque_itens WHERE nota_fiscal = $1 FOR UPDATE",
    "faturamento_produto": "SELECT id FROM faturamento_produto WHERE numero_nf = $1 FOR UPDATE",
}
COMMON = ["--lock-timeout", "0.3"]


@pytest.fixture
def day2(db_url, tmp_path) -> Path:
    day1 = build_dataset(tmp_path / "day1", moves=10)
    assert main(["sync", "--source", str(day1), "--database-url", db_url, "--artifacts-dir", str(tmp_path / "runs"), *COMMON]) == 0
    load_cascade_rows(db_url, CANCELLED)
    return build_dataset(tmp_path / "day2", moves=10, cancelled={1, 2}, write_date=DAY2)


def _sync(db_url: str, tmp_path: Path, ds: Path, *extra: str) -> tuple[int, dict]:
    code = main(["sync", "--source", str(ds), "--database-url", db_url, "--artifacts-dir", str(tmp_path / "runs"), *COMMON, *extra])
    latest = max((tmp_path / "runs").iterdir(), key=lambda p: p.stat().st_mtime_ns)
    return code, read_manifest(latest)


def _with_options(url: str, options: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=urlencode({**dict(parse_qsl(parts.query)), "options": options}, quote_via=quote)))


class Watcher:
    """One autocommit connection polling whether the job waits for a lock (a new connection per
    poll is too slow on a loaded machine: ADBC's connect alone can outlast a lock timeout)."""

    def __init__(self, db_url: str):
        self.conn = adbc_connect(db_url, autocommit=True)
        self.cur = self.conn.cursor()

    def job_waits_for_a_lock(self) -> bool:
        self.cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'faturamento_batch' "
                         "AND wait_event_type = 'Lock' AND datname = current_database()")  # fmt: skip
        return self.cur.fetchone()[0] > 0

    def close(self) -> None:
        self.cur.close()
        self.conn.close()


class Holder:
    """A second connection (the logistics application) holding a row lock in an open transaction."""

    def __init__(self, db_url: str, table: str):
        self.conn = adbc_connect(db_url)
        self.cur = self.conn.cursor()
        self.cur.execute(HOLD[table], (CANCELLED[0],))
        assert self.cur.fetchall(), "the row to hold exists"

    def release(self) -> None:
        self.conn.rollback()

    def close(self) -> None:
        self.cur.close()
        self.conn.close()


@pytest.mark.parametrize("table", sorted(HOLD))
def test_lock_released_after_the_first_timeout_the_retry_succeeds(table, day2, db_url, tmp_path):
    holder, watcher = Holder(db_url, table), Watcher(db_url)  # --lock-timeout 1 below overrides COMMON's 0.3
    seen = {"waited": False, "waited_seconds": None}

    def release_after_the_first_timeout():
        deadline = time.monotonic() + 60
        while not watcher.job_waits_for_a_lock() and time.monotonic() < deadline:
            time.sleep(0.01)
        seen["waited"] = time.monotonic() < deadline
        started = time.monotonic()
        while watcher.job_waits_for_a_lock() and time.monotonic() < deadline:
            time.sleep(0.01)  # the job gives up after --lock-timeout and rolls back
        seen["waited_seconds"] = time.monotonic() - started
        holder.release()  # before the retry: the backoff is at least 0.25 s

    thread = threading.Thread(target=release_after_the_first_timeout)
    thread.start()
    try:
        code, manifest = _sync(db_url, tmp_path, day2, "--lock-timeout", "1")
    finally:
        thread.join()
        holder.close()
        watcher.close()
    assert code == 0 and manifest["status"] == "success"
    assert seen["waited"] and seen["waited_seconds"] < 1 + 0.5  # never waited much past --lock-timeout
    assert manifest["write_attempts"] == 2
    assert [(r["attempt"], r["sqlstate"]) for r in manifest["write_retries"]] == [(1, "55P03")]
    # The retry wrote everything: statuses, the cascade to the held row, one run record.
    assert scalar(db_url, "SELECT count(*) FROM faturamento_produto WHERE status_nf = 'Cancelado'") == 6
    items = read_table(db_url, "embarque_itens", ["nota_fiscal", "erro_validacao"])
    assert items["nota_fiscal"].null_count() == 2 and set(items["erro_validacao"]) == {"NF cancelada no Odoo"}
    assert scalar(db_url, "SELECT count(*) FROM sync_runs") == 2
    assert manifest["written"]["embarque_itens.cancel"] == 2


@pytest.mark.parametrize("table", sorted(HOLD))
def test_lock_never_released_exits_75_with_nothing_written(table, day2, db_url, tmp_path, capsys):
    before = snapshot(db_url)
    holder = Holder(db_url, table)
    try:
        started = time.monotonic()
        code, manifest = _sync(db_url, tmp_path, day2, "--write-retries", "2")
        took = time.monotonic() - started
        assert snapshot(db_url) == before  # read while the lock is still held: nothing of the run is visible
    finally:
        holder.release()
        holder.close()
    err = capsys.readouterr().err
    assert code == 75
    assert manifest["status"] == "failed" and manifest["error_type"] == "DatabaseTransientError"
    assert manifest["sqlstate"] == "55P03" and manifest["exit_code"] == 75
    assert manifest["write_attempts"] == 3 and len(manifest["write_retries"]) == 3
    assert "lock timeout" in manifest["error"] and "gave up after 3 write attempts" in manifest["error"]
    assert "written" not in manifest and "Traceback" not in err
    assert took < 3 * 0.3 + (0.75 + 1.5) + 5  # three timeouts and two backoffs, not a hang
    # The application let go: the next run does the work.
    code, manifest = _sync(db_url, tmp_path, day2)
    assert code == 0 and manifest["write_attempts"] == 1
    assert scalar(db_url, "SELECT count(*) FROM faturamento_produto WHERE status_nf = 'Cancelado'") == 6


def test_lock_timeout_is_a_session_option_not_a_statement(db_url):
    url = with_session_options(db_url, statement_timeout_s=900, lock_timeout_s=10)
    conn = adbc_connect(url, autocommit=True)
    with conn.cursor() as cur:
        cur.execute("SELECT current_setting('lock_timeout'), current_setting('statement_timeout'), "
                    "current_setting('application_name')")  # fmt: skip
        assert cur.fetchone() == ("10s", "15min", "faturamento_batch")
    conn.close()
    assert "lock_timeout" not in with_session_options(db_url, lock_timeout_s=0).params.get("options", "")
    # Options the URL already has stay, after ours (so an explicit `-c` in the URL wins).
    conn = adbc_connect(with_session_options(_with_options(db_url, "-c lock_timeout=2s -c work_mem=8MB"), 900, 10), autocommit=True)
    with conn.cursor() as cur:
        cur.execute("SELECT current_setting('lock_timeout'), current_setting('statement_timeout'), current_setting('work_mem')")
        assert cur.fetchone() == ("2s", "15min", "8MB")
    conn.close()


def test_bad_retry_settings_are_usage_errors(db_url, tmp_path, capsys):
    ds = build_dataset(tmp_path / "odoo", moves=1)
    for flag, value in (("--write-retries", "-1"), ("--lock-timeout", "-2")):
        code = main(["sync", "--source", str(ds), "--database-url", db_url, "--artifacts-dir", str(tmp_path / "runs"), flag, value])
        assert code == 2
        assert f"`{flag}`" in capsys.readouterr().err


def test_a_real_deadlock_with_the_application_is_retried(day2, db_url, tmp_path):
    """The application locks a shipment item, the run updates the NF's lines and then waits for
    that item, the application then asks for one of those lines: PostgreSQL's deadlock detector
    aborts the run's transaction (it waited first, so its check runs first); the retry succeeds."""
    if not scalar(db_url, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
        pytest.skip("deadlock_timeout is a superuser setting; the test database user is not one")
    # Who is the victim depends on whose deadlock check runs first after the cycle closes:
    # the run checks after 3 s (time to close the cycle on a loaded machine), the application
    # after 60 s, so the run is the one aborted.
    holder = Holder(_with_options(db_url, "-c deadlock_timeout=60s"), "embarque_itens")
    watcher = Watcher(db_url)
    outcome: dict = {}

    def close_the_cycle():
        deadline = time.monotonic() + 60
        while not watcher.job_waits_for_a_lock() and time.monotonic() < deadline:
            time.sleep(0.01)
        try:  # blocks on the line the run updated, until the run is chosen as the victim
            holder.cur.execute(HOLD["faturamento_produto"], (CANCELLED[0],))
            outcome["holder_got"] = len(holder.cur.fetchall())
        except Exception as exc:  # had PostgreSQL picked the application instead
            outcome["holder_error"] = getattr(exc, "sqlstate", None)
        holder.release()

    thread = threading.Thread(target=close_the_cycle)
    thread.start()
    try:
        code, manifest = _sync(_with_options(db_url, "-c deadlock_timeout=3s"), tmp_path, day2, "--lock-timeout", "10")
    finally:
        thread.join()
        holder.close()
        watcher.close()
    assert outcome == {"holder_got": 3}  # the application's transaction went through
    assert code == 0 and manifest["write_attempts"] == 2
    assert [(r["attempt"], r["sqlstate"]) for r in manifest["write_retries"]] == [(1, "40P01")]
    assert scalar(db_url, "SELECT count(*) FROM faturamento_produto WHERE status_nf = 'Cancelado'") == 6
    assert read_table(db_url, "embarque_itens", ["nota_fiscal"])["nota_fiscal"].null_count() == 2
