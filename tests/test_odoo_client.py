"""The Odoo client against the replay server over real HTTP: all three transports,
keyset paging, parallel related fetch, retries, timeouts, and equality with the
in-process dataset source."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from polars.testing import assert_frame_equal

from faturamento_batch.errors import OdooPermanentError, OdooTransientError
from faturamento_batch.odoo.dataset import DatasetSource
from faturamento_batch.odoo.extract import OdooClient, OdooSource
from faturamento_batch.odoo.fields import LINE, LINE_DOMAIN, MODELS
from faturamento_batch.replay import ReplayServer
from faturamento_batch.odoo.source import ExtractStats
from faturamento_batch.odoo.transport import Credentials, make_transport

from .builders import META, build_dataset

TRANSPORTS = ("jsonrpc", "xmlrpc", "json2")


def _transport(server: ReplayServer, name: str, *, password=META["password"], timeout=10.0, retries=3, backoff=0.01):
    # JSON-2 authenticates with the API key; the RPC protocols with the password.
    api_key = META["api_key"] if name == "json2" and password == META["password"] else None
    creds = Credentials(server.url, META["db"], META["login"], password, api_key)
    return make_transport(name, creds, timeout=timeout, retries=retries, backoff=backoff)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return build_dataset(tmp_path_factory.mktemp("odoo") / "ds", moves=40, lines_per_move=3, cancelled={3})


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_wire_extraction_equals_the_in_process_source(dataset, transport, tmp_path):
    expected = DatasetSource(dataset).extract(None)
    with ReplayServer(dataset) as odoo:
        batch = OdooSource(_transport(odoo, transport), page_size=7, cache_dir=tmp_path / "cache").extract(None)
        calls = odoo.stats()["calls"]
    for model in MODELS:
        assert_frame_equal(batch.frames[model].sort("id"), expected.frames[model].sort("id"), check_row_order=False)
    # 120 lines in pages of 7 → 18 pages with rows, then an empty one (a short page does not end the read).
    assert calls[f"{LINE}.search_read"] == 19
    assert batch.stats.calls[f"{LINE}.search_read"] == 19
    assert batch.stats.bytes_received > 0
    assert batch.max_write_date == datetime(2026, 1, 5, 10, 0, 0)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_retry_on_5xx_then_success(dataset, transport):
    with ReplayServer(dataset, fail_next=2, fail_status=503, fault_match="search_read") as odoo:
        client = OdooClient(_transport(odoo, transport, retries=3), ExtractStats())
        client.login()
        frame = client.search_read(LINE, LINE_DOMAIN, ["id"], limit=5)
        assert odoo.stats()["requests"] >= 4  # login + 2 failures + success
    assert frame.get_column("id").to_list() == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_access_denied_is_not_retried(dataset, transport):
    with ReplayServer(dataset) as odoo:
        t = _transport(odoo, transport, password="wrong-password", retries=5)
        with pytest.raises(OdooPermanentError, match="refused the login for `admin`"):
            OdooClient(t, ExtractStats()).login()
        assert odoo.stats()["requests"] == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unknown_field_is_an_actionable_error_not_retried(dataset, transport):
    with ReplayServer(dataset) as odoo:
        client = OdooClient(_transport(odoo, transport), ExtractStats())
        client.login()
        before = odoo.stats()["requests"]
        with pytest.raises(OdooPermanentError, match="l10n_br"):
            client.search_read(LINE, [], ["id", "no_such_field"])
        assert odoo.stats()["requests"] == before + 1


def test_timeout_is_retried_then_gives_up_with_a_clear_error(dataset):
    with ReplayServer(dataset, timeout_next=10, hang_seconds=3) as odoo:
        t = _transport(odoo, "jsonrpc", timeout=0.3, retries=1)
        started = time.monotonic()
        with pytest.raises(OdooTransientError, match="gave up after 2 attempts"):
            OdooClient(t, ExtractStats()).login()
        assert time.monotonic() - started < 3


@pytest.mark.parametrize("fault", ["reset_next", "truncate_next"])
def test_reset_and_truncated_answers_are_retried(dataset, fault):
    with ReplayServer(dataset, **{fault: 1, "fault_match": "search_read"}) as odoo:
        client = OdooClient(_transport(odoo, "jsonrpc"), ExtractStats())
        client.login()
        frame = client.search_read(LINE, LINE_DOMAIN, ["id", "move_id"], limit=50)
    assert frame.height == 50


def test_short_page_does_not_lose_rows(dataset):
    with ReplayServer(dataset, short_page_next=3) as odoo:
        client = OdooClient(_transport(odoo, "jsonrpc"), ExtractStats())
        client.login()
        frame = client.keyset(LINE, LINE_DOMAIN, ["id"], page_size=10)
    assert frame.get_column("id").to_list() == list(range(1, 121))


def test_related_models_are_fetched_in_parallel(dataset, tmp_path):
    # With 0.2 s per call, 3 models in a wave cost ~0.2 s in parallel, ~0.6 s one by one.
    with ReplayServer(dataset, latency=0.2) as odoo:
        source = OdooSource(_transport(odoo, "jsonrpc"), page_size=1000, workers=3)
        started = time.monotonic()
        batch = source.extract(None)
        elapsed = time.monotonic() - started
    sequential_calls = batch.stats.total_calls
    assert sequential_calls == 1 + 2 + 6  # login, 2 line pages, 6 related models
    assert elapsed < 0.2 * (sequential_calls - 2), elapsed


def test_incremental_window_reads_only_changed_moves(dataset, tmp_path):
    # Day 2: move 5 cancelled (move write_date only), a new move 41; lines of other moves untouched.
    import json

    day2 = tmp_path / "day2"
    build_dataset(day2, moves=41, lines_per_move=3, cancelled={3})
    moves = json.loads((day2 / "account.move.json").read_text())
    lines = json.loads((day2 / "account.move.line.json").read_text())
    for m in moves:
        if m["id"] in (5, 41):
            m["write_date"] = "2026-01-06 09:00:00"
        if m["id"] == 5:
            m["state"] = "cancel"
    (day2 / "account.move.json").write_text(json.dumps(moves))
    for ln in lines:
        if ln["move_id"][0] == 41:
            ln["write_date"] = "2026-01-06 09:00:00"
    (day2 / "account.move.line.json").write_text(json.dumps(lines))
    since = datetime(2026, 1, 6, 0, 0, 0)
    expected = DatasetSource(day2).extract(since)
    with ReplayServer(day2) as odoo:
        batch = OdooSource(_transport(odoo, "jsonrpc"), page_size=100).extract(since)
    assert sorted(batch.frames["account.move"].get_column("id").to_list()) == [5, 41]
    assert batch.frames[LINE].height == 6
    for model in MODELS:
        assert_frame_equal(batch.frames[model].sort("id"), expected.frames[model].sort("id"))


def test_cache_serves_unchanged_related_records(dataset, tmp_path):
    with ReplayServer(dataset) as odoo:
        source = OdooSource(_transport(odoo, "jsonrpc"), page_size=1000, cache_dir=tmp_path / "cache")
        first = source.extract(None)
        odoo.reset_stats()
        second = source.extract(None)
        calls = odoo.stats()["calls"]
    # Cached models are only revalidated (one light call each, nothing changed); moves are always re-read.
    assert second.stats.records == first.stats.records
    assert sum(second.stats.cache_hits.values()) == sum(first.frames[m].height for m in first.frames if m not in (LINE, "account.move"))
    for model in MODELS:
        assert_frame_equal(second.frames[model].sort("id"), first.frames[model].sort("id"))
    assert calls.get("res.partner.search_read") == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_chunked_wire_extraction_keeps_nfs_whole_and_equals_the_in_process_source(dataset, transport, tmp_path):
    import polars as pl

    expected = DatasetSource(dataset).extract(None)
    with ReplayServer(dataset) as odoo:
        extraction = OdooSource(_transport(odoo, transport), page_size=7, cache_dir=tmp_path / "cache").extract_chunks(20)
        chunks = list(extraction.chunks)
        calls = odoo.stats()["calls"]
    assert extraction.n_chunks == len(chunks) == 6  # 40 moves of 3 lines, ~20 lines a chunk
    lines = pl.concat([c.frames[LINE] for c in chunks])
    assert_frame_equal(lines.sort("id"), expected.frames[LINE].sort("id"))
    moves_per_chunk = [set(c.frames[LINE].get_column("move_id").to_list()) for c in chunks]
    assert all(a.isdisjoint(b) for i, a in enumerate(moves_per_chunk) for b in moves_per_chunk[i + 1 :])  # no NF split
    for model in MODELS:
        if model == LINE:
            continue
        got = pl.concat([c.frames[model] for c in chunks]).unique("id").sort("id")
        assert_frame_equal(got, expected.frames[model].sort("id"), check_row_order=False)
    # Each related record is fetched once per run, whatever the chunk that first needs it.
    assert calls["res.partner.search_read"] <= len(chunks)
    assert extraction.moves_index.height == 40
    assert extraction.stats.records[LINE] == 120
