"""The session time zone (DESIGN §10): audit columns in the configured zone whatever the
server's, the Odoo cursor (UTC) identical whatever the zone."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

from faturamento_batch.cli import main
from faturamento_batch.db.connection import adbc_connect, with_session_options
from faturamento_batch.dsn import resolve

from .builders import build_dataset
from .dbutil import scalar

WRITE_DATE = datetime(2026, 1, 5, 10, 0, 0)  # the dataset's write_date, UTC as Odoo sends it
SLACK = timedelta(seconds=5)


def _server_zone(pg_admin_url: str, url: str, zone: str) -> None:
    """The database's own default zone, as a DBA would set it."""
    name = urlsplit(url).path.lstrip("/")
    conn = adbc_connect(pg_admin_url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"ALTER DATABASE \"{name}\" SET timezone = '{zone}'")  # the test's own constants
    finally:
        conn.close()
    assert scalar(url, "SELECT current_setting('TimeZone')") == zone


def _wall(zone: str) -> datetime:
    return datetime.now(ZoneInfo(zone)).replace(tzinfo=None)


def _sync(url: str, dataset, tmp_path, *extra: str) -> None:
    assert main(["sync", "--source", str(dataset), "--database-url", url, "--artifacts-dir", str(tmp_path / "runs"),
                 *extra]) == 0  # fmt: skip


def _audit(url: str) -> dict:
    return {
        "cursor": scalar(url, "SELECT cursor FROM sync_state"),
        "cursor_to": scalar(url, "SELECT cursor_to FROM sync_runs"),
        "created_at": scalar(url, "SELECT min(created_at) FROM faturamento_produto"),
        "updated_at": scalar(url, "SELECT max(updated_at) FROM faturamento_produto"),
        "criado_em": scalar(url, "SELECT min(criado_em) FROM relatorio_faturamento_importado"),
        "run_started": scalar(url, "SELECT started_at FROM sync_runs"),
    }


@pytest.mark.parametrize("server_zone", ["UTC", "America/Sao_Paulo"])
def test_audit_columns_follow_the_configured_zone_and_the_cursor_does_not_move(
    pg_admin_url, db_url, tmp_path, server_zone
):
    _server_zone(pg_admin_url, db_url, server_zone)
    dataset = build_dataset(tmp_path / "odoo", moves=3, write_date=WRITE_DATE.strftime("%Y-%m-%d %H:%M:%S"))
    before = _wall("America/Sao_Paulo")
    _sync(db_url, dataset, tmp_path)  # the default rules: America/Sao_Paulo
    after = _wall("America/Sao_Paulo")
    got = _audit(db_url)
    assert got["cursor"] == got["cursor_to"] == WRITE_DATE  # UTC, as Odoo sent it, on both servers
    for column in ("created_at", "updated_at", "criado_em", "run_started"):
        assert before - SLACK <= got[column] <= after + SLACK, (column, got[column], before)
    # São Paulo is UTC−3 (no daylight saving since 2019): the stamps are not the server's UTC clock.
    utc_now = _wall("UTC")
    assert abs((utc_now - got["created_at"]) - timedelta(hours=3)) < timedelta(minutes=1)
    # An incremental run over the same data re-reads the overlap from the same cursor.
    _sync(db_url, dataset, tmp_path)
    assert scalar(db_url, "SELECT cursor FROM sync_state") == WRITE_DATE
    assert scalar(db_url, "SELECT count(*) FROM sync_runs WHERE mode = 'incremental'") == 1


def test_the_flag_sets_the_zone_and_the_urls_own_setting_wins(pg_admin_url, db_url, second_db, tmp_path):
    dataset = build_dataset(tmp_path / "odoo", moves=2, write_date=WRITE_DATE.strftime("%Y-%m-%d %H:%M:%S"))
    _server_zone(pg_admin_url, db_url, "America/Sao_Paulo")
    before = _wall("UTC")
    _sync(db_url, dataset, tmp_path, "--time-zone", "UTC")
    assert before - SLACK <= _audit(db_url)["created_at"] <= _wall("UTC") + SLACK
    # The URL's own TimeZone wins over the rules' (it comes after ours in `options`).
    own = second_db + ("&" if "?" in second_db else "?") + "options=-c%20TimeZone%3DAsia/Tokyo"
    before = _wall("Asia/Tokyo")
    _sync(own, dataset, tmp_path)
    got = _audit(second_db)
    assert before - SLACK <= got["created_at"] <= _wall("Asia/Tokyo") + SLACK
    assert got["cursor"] == WRITE_DATE


def test_both_drivers_get_the_zone_in_the_startup_options():
    info = with_session_options(resolve("postgresql://u@h/db", {}), 900, 10, "America/Sao_Paulo")
    assert "-c TimeZone=America/Sao_Paulo" in info.params["options"]
    assert "TimeZone%3DAmerica%2FSao_Paulo" in info.connectorx()
    theirs = with_session_options(resolve("postgresql://u@h/db?options=-c%20TimeZone%3DUTC", {}), 0, 0, "America/Sao_Paulo")
    assert theirs.params["options"].index("TimeZone=America/Sao_Paulo") < theirs.params["options"].index("TimeZone=UTC")
