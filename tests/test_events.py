"""Downstream events, the run's side (DESIGN §11), against a real PostgreSQL: each kind from the
scenario that causes it, nothing on a rerun / dry run / failed or killed run, NOTIFY at commit."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import polars as pl
import psycopg

from faturamento_batch.artifacts import read_part
from faturamento_batch.cli import main
from faturamento_batch.consumer import CHANNEL

from .builders import build_dataset
from .dbutil import read_table, scalar
from .test_stock_io import _budget_day2, _budget_shipments, _run

NF = lambda m: str(100_000 + m)  # noqa: E731  (build_dataset's NF numbers)


def _events(url: str, run_id: str | None = None) -> pl.DataFrame:
    frame = read_table(url, "sync_events", order="id")
    return frame.filter(pl.col("run_id") == run_id) if run_id else frame


def _by_kind(frame: pl.DataFrame) -> dict[str, set[str]]:
    grouped = frame.group_by("kind").agg(pl.col("numero_nf"))
    return {k: set(v) for k, v in zip(grouped["kind"].to_list(), grouped["numero_nf"].to_list())}


def _reactivation_day(path: Path, old: int, new: int) -> Path:
    """Day 2's data with day-1 NF `old-1` posted again (`old` stays cancelled)."""
    _budget_day2(path, old, new)
    moves = json.loads((path / "account.move.json").read_text())
    for mv in moves:
        if mv["id"] == old - 1:
            mv["state"] = "posted"
            mv["write_date"] = "2026-01-07 10:00:00"
    (path / "account.move.json").write_text(json.dumps(moves))
    lines = json.loads((path / "account.move.line.json").read_text())
    for ln in lines:
        if ln["move_id"][0] == old - 1:
            ln["write_date"] = "2026-01-07 10:00:00"
    (path / "account.move.line.json").write_text(json.dumps(lines))
    return path


def test_each_kind_comes_from_the_scenario_that_causes_it_and_a_rerun_writes_none(db_url, tmp_path):
    old, new, pending = 6, 8, 2
    day1 = build_dataset(tmp_path / "d1", moves=old, lines_per_move=2)
    code, m1 = _run(db_url, tmp_path, "sync", source=day1)
    assert code == 0, m1.get("error")
    got = _by_kind(_events(db_url, m1["run_id"]))
    # New NFs; no shipment yet, so the stage leaves every one without a lot.
    assert got == {"nf_inserted": {NF(m) for m in range(1, 7)}, "nf_sem_lote": {NF(m) for m in range(1, 7)}}
    assert m1["events"]["kinds"]["nf_inserted"] == 6 and m1["events"]["written"] == 12

    _budget_shipments(db_url, pending, old, new)
    day2 = _budget_day2(tmp_path / "d2", old, new)
    code, m2 = _run(db_url, tmp_path, "sync", "--apply-drift", source=day2)
    assert code == 0, m2.get("error")
    ev2 = _events(db_url, m2["run_id"])
    got = _by_kind(ev2)
    new_nfs = {NF(m) for m in range(old + 1, old + new + 1)}
    with_lot = {NF(m) for m in range(old + 1, old + new + 1, 2)}
    assert got["nf_inserted"] == new_nfs
    assert got["nf_cancelled"] == {NF(old - 1), NF(old)}
    assert got["nf_changed"] == {NF(m) for m in range(1, old - 1)}  # every price drifted; applied
    assert got["nf_stock_linked"] == {NF(m) for m in range(1, pending + 1)} | with_lot
    assert got["nf_sem_lote"] == new_nfs - with_lot  # NFs 3, 4 stay SEM_LOTE: no write, no event
    assert set(got) == {"nf_inserted", "nf_cancelled", "nf_changed", "nf_stock_linked", "nf_sem_lote"}
    assert ev2.group_by("numero_nf", "kind").len()["len"].max() == 1  # one row per (NF, kind)
    # What a consumer needs without re-reading: the order, the customer, the payload.
    row = ev2.filter((pl.col("numero_nf") == NF(1)) & (pl.col("kind") == "nf_stock_linked")).row(0, named=True)
    assert row["origem"] == "PED1" and row["cnpj_cliente"] and row["job"] == "faturamento"
    payload = json.loads(row["payload"]) if isinstance(row["payload"], str) else row["payload"]
    assert payload["lote"] == "L1" and payload["lines"] == 2
    changed = ev2.filter((pl.col("numero_nf") == NF(3)) & (pl.col("kind") == "nf_changed")).row(0, named=True)
    changed_payload = json.loads(changed["payload"]) if isinstance(changed["payload"], str) else changed["payload"]
    assert "preco_produto_faturado" in changed_payload["drift_fields"] and changed_payload["status_to"] == "SEM_LOTE"
    cancelled = json.loads(ev2.filter(pl.col("kind") == "nf_cancelled")["payload"][0])
    assert cancelled["status_to"] == "Cancelado" and cancelled["status_from"] in ("Lançado", "SEM_LOTE")
    # An NF's import event has a lower id than its stock event; the part holds the same rows.
    assert ev2.filter(pl.col("numero_nf") == NF(1))["kind"].to_list() == ["nf_changed", "nf_stock_linked"]
    part = read_part(tmp_path / "runs" / m2["run_id"], "events")
    assert part.height == ev2.height and set(part["numero_nf"]) == set(ev2["numero_nf"])
    assert m2["events"]["kinds"]["nf_cancelled"] == 2

    code, m3 = _run(db_url, tmp_path, "sync", "--apply-drift", source=day2)  # the same data again
    assert code == 0 and m3["events"]["written"] == 0 and _events(db_url, m3["run_id"]).height == 0

    day3 = _reactivation_day(tmp_path / "d3", old, new)
    code, m4 = _run(db_url, tmp_path, "sync", "--apply-drift", source=day3)
    assert code == 0, m4.get("error")
    got = _by_kind(_events(db_url, m4["run_id"]))
    assert got["nf_reactivated"] == {NF(old - 1)}
    assert NF(old) not in set().union(*got.values())
    code, m5 = _run(db_url, tmp_path, "sync", "--apply-drift", source=day3)
    assert code == 0 and _events(db_url, m5["run_id"]).height == 0


def test_a_dry_run_writes_the_part_and_no_row(db_url, tmp_path):
    ds = build_dataset(tmp_path / "odoo", moves=4)
    code, m = _run(db_url, tmp_path, "sync", "--dry-run", source=ds)
    assert code == 0 and m["status"] == "dry_run"
    assert read_part(tmp_path / "runs" / m["run_id"], "events").height == 8  # 4 inserted, 4 without a lot
    assert m["events"]["kinds"]["nf_inserted"] == 4
    assert scalar(db_url, "SELECT count(*) FROM sync_events") == 0


def _register(url: str, *names: str) -> None:
    for name in names:
        assert main(["events", "consumers", "add", name, "--database-url", url]) == 0


def test_a_failing_run_leaves_no_event_and_no_delivery(db_url, tmp_path):
    _register(db_url, "entregas")
    with psycopg.connect(_libpq(db_url), autocommit=True) as conn:
        conn.execute("CREATE FUNCTION fb_fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected'; END $$")
        conn.execute("CREATE TRIGGER fb_fail BEFORE INSERT ON sync_runs FOR EACH ROW EXECUTE FUNCTION fb_fail()")
    code, m = _run(db_url, tmp_path, "sync", source=build_dataset(tmp_path / "odoo", moves=5))
    assert code == 1 and "injected" in m["error"]
    assert m["events"]["kinds"]["nf_inserted"] == 5  # there were events to write: the trigger fires after them
    assert scalar(db_url, "SELECT count(*) FROM sync_events") == 0
    assert scalar(db_url, "SELECT count(*) FROM sync_event_deliveries") == 0


def test_sigkill_mid_run_leaves_no_event(db_url, tmp_path):
    from .test_reliability import _cmd, _kill_at

    assert _run(db_url, tmp_path, "sync", source=build_dataset(tmp_path / "d1", moves=10))[0] == 0
    _register(db_url, "entregas")
    before = scalar(db_url, "SELECT count(*) FROM sync_events")
    ds = build_dataset(tmp_path / "d2", moves=4_000, lines_per_move=2, write_date="2026-01-06 10:00:00")
    for marker, delay in (("write: stock stage", 0.0), ("write: events", 0.0), ("write: events", 0.05)):
        status = _kill_at(_cmd(ds, db_url, tmp_path / "runs", "--wait", "30"), marker, delay)
        assert status == -signal.SIGKILL, marker
        time.sleep(0.3)  # the server notices the dead client and rolls back
        assert scalar(db_url, "SELECT count(*) FROM sync_events") == before, marker
        assert scalar(db_url, "SELECT count(*) FROM sync_event_deliveries") == 0, marker
    assert main(_cmd(ds, db_url, tmp_path / "runs", "--wait", "30")[3:]) == 0
    assert scalar(db_url, "SELECT count(*) FROM sync_events") == before + 2 * 3_990  # inserted + without a lot
    assert scalar(db_url, "SELECT count(*) FROM sync_event_deliveries") == 2 * 3_990


def _libpq(url: str) -> str:
    """The test URL as psycopg takes it (the same libpq URL)."""
    return url


def test_listen_gets_the_notification_only_after_the_commit(db_url, tmp_path):
    assert _run(db_url, tmp_path, "sync", source=build_dataset(tmp_path / "d1", moves=3))[0] == 0
    day2 = build_dataset(tmp_path / "d2", moves=5, write_date="2026-01-06 10:00:00")
    listener = psycopg.connect(_libpq(db_url), autocommit=True)
    listener.execute(f"LISTEN {CHANNEL}")
    # Hold the job's sync_state row: the run blocks on its last statement (the run record), after
    # the events statement has run, before its commit.
    holder = psycopg.connect(_libpq(db_url))
    holder.execute("SELECT * FROM sync_state FOR UPDATE")
    outcome: dict = {}
    runner = threading.Thread(target=lambda: outcome.update(r=_run(db_url, tmp_path, "sync", source=day2)))
    runner.start()
    deadline = time.monotonic() + 20
    with psycopg.connect(_libpq(db_url), autocommit=True) as watcher:
        while not watcher.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()[0]:
            assert time.monotonic() < deadline, "the run never reached its last statement"
            time.sleep(0.05)
        early = list(listener.notifies(timeout=1.0, stop_after=1))
        assert early == []  # events written, not committed: nothing delivered yet
        assert watcher.execute("SELECT count(DISTINCT run_id) FROM sync_events").fetchone()[0] == 1  # day 1's only
    holder.rollback()
    holder.close()
    runner.join(30)
    code, m = outcome["r"]
    assert code == 0, m.get("error")
    notes = list(listener.notifies(timeout=5.0, stop_after=1))
    listener.close()
    assert len(notes) == 1 and notes[0].channel == CHANNEL
    body = json.loads(notes[0].payload)
    assert body["run_id"] == m["run_id"] and body["events"] == m["events"]["written"] > 0
    assert body["kinds"]["nf_inserted"] == 2


def test_the_statements_of_a_run_do_not_grow_with_its_events(db_url, second_db, tmp_path):
    counts = {}
    for n, url in ((4, db_url), (2_000, second_db)):
        _register(url, "entregas", "fretes")
        code, m = _run(url, tmp_path, "sync", source=build_dataset(tmp_path / f"o{n}", moves=n))
        assert code == 0 and m["events"]["written"] == 2 * n and m["events"]["deliveries"] == 4 * n
        counts[n] = m["sql_statements"]
    assert counts[4] == counts[2_000], counts


def test_metrics_say_events_per_kind_and_each_consumer_s_oldest_unacked_event():
    import yaml

    from faturamento_batch.metrics import render

    events = {"kinds": {"nf_inserted": 3, "nf_cancelled": 0}, "consumers": {
        "entregas": {"pending": 0, "oldest_unacked_seconds": None}, "fretes": {"pending": 7, "oldest_unacked_seconds": 5400.5}}}
    text = render({"job": "faturamento", "status": "success", "events": events})
    assert 'faturamento_batch_events_written{job="faturamento",kind="nf_inserted"} 3' in text
    assert 'faturamento_batch_event_consumer_pending{job="faturamento",consumer="fretes"} 7' in text
    assert 'faturamento_batch_event_consumer_oldest_unacked_seconds{job="faturamento",consumer="fretes"} 5400.5' in text
    assert 'faturamento_batch_event_consumer_oldest_unacked_seconds{job="faturamento",consumer="entregas"} 0' in text
    failed = render({"job": "faturamento", "status": "failed", "events": events})
    assert 'faturamento_batch_events_written{job="faturamento",kind="nf_inserted"} 0' in failed  # rolled back
    rules = yaml.safe_load((Path(__file__).resolve().parent.parent / "deploy/prometheus/alerts.yaml").read_text())
    stuck = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}["FaturamentoBatchEventConsumerStuck"]
    assert stuck["expr"] == "faturamento_batch_event_consumer_oldest_unacked_seconds > 3600"


def test_the_notebook_shows_events_per_run_and_kind_and_the_consumers_lag(db_url, tmp_path, monkeypatch):
    from .test_notebook import _cell, _execute

    code, m1 = _run(db_url, tmp_path, "sync", source=build_dataset(tmp_path / "d1", moves=3))
    _register(db_url, "entregas")
    code, m2 = _run(db_url, tmp_path, "sync", source=build_dataset(tmp_path / "d2", moves=5, write_date="2026-01-06 10:00:00"))
    assert code == 0
    monkeypatch.delenv("FATURAMENTO_RUN_DIR", raising=False)
    monkeypatch.delenv("FATURAMENTO_COMPARE_RUN_DIR", raising=False)
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parent.parent))  # the package is not installed here
    text = _cell(_execute(tmp_path), "an.events_by_kind(run)")
    assert "nf_inserted" in text and "nf_sem_lote" in text and "nf_cancelled" not in text  # unused kinds left out
    assert m1["run_id"] in text and m2["run_id"] in text  # events per run
    lag_line = next(line for line in text.splitlines() if "entregas" in line)
    assert m2["run_id"] in lag_line and "0" in lag_line  # registered after run 1: nothing pending when run 2 wrote


def test_a_chunked_full_run_writes_the_same_events_as_one_piece(db_url, second_db, tmp_path):
    day1 = build_dataset(tmp_path / "d1", moves=20)
    day2 = build_dataset(tmp_path / "d2", moves=24, cancelled={1, 2}, price=11.0, write_date="2026-01-06 10:00:00")
    got = {}
    for url, chunk in ((db_url, "7"), (second_db, "0")):
        assert _run(url, tmp_path, "sync", "--chunk-size", chunk, source=day1)[0] == 0
        code, m = _run(url, tmp_path, "sync", "--full", "--apply-drift", "--chunk-size", chunk, source=day2)
        assert code == 0, m.get("error")
        ev = _events(url, m["run_id"]).select("numero_nf", "kind", "origem", "cnpj_cliente", "payload").sort("kind", "numero_nf")
        got[chunk] = ev
    assert got["7"].to_dicts() == got["0"].to_dicts()
    kinds = _by_kind(got["7"])
    assert kinds["nf_cancelled"] == {NF(1), NF(2)} and len(kinds["nf_inserted"]) == 4 and len(kinds["nf_changed"]) == 18


def test_the_quarantine_leaves_its_nfs_out_and_adds_its_own_events():
    from datetime import datetime

    from faturamento_batch.events import EVENTS_PART, amend, build_events, extra_events

    now = datetime(2026, 1, 5, 10)
    nfs = pl.DataFrame({"numero_nf": ["1", "2", "3"], "origem": ["PED1", "PED2", "PED3"]})
    run = build_events("r", "faturamento", now, extra=[extra_events(nfs, "nf_inserted", ["origem"])])
    bad = pl.DataFrame({"numero_nf": ["2"], "sqlstate": ["23505"]})
    out = amend(run, "r", "faturamento", now, leave_out=bad,
                extra=[extra_events(bad, "nf_quarantined", ["sqlstate"]), extra_events(nfs.head(1), "nf_released")])
    assert out.schema == EVENTS_PART
    assert out.select("numero_nf", "kind").rows() == [("1", "nf_released"), ("1", "nf_inserted"), ("3", "nf_inserted"),
                                                      ("2", "nf_quarantined")]  # fmt: skip
    assert out["ord"].to_list() == [0, 1, 2, 3] and json.loads(out["payload"][3]) == {"sqlstate": "23505"}


def test_the_summary_has_an_events_line():
    from faturamento_batch.summary import events_line

    e = {"kinds": {"nf_inserted": 1200, "nf_changed": 0, "nf_sem_lote": 3}, "consumers": {"fretes": {"pending": 7}}}
    assert events_line(e, written=True) == "  events: nf_inserted 1,200 · nf_sem_lote 3 · consumers: fretes 7 pending"
    assert events_line({"kinds": {"nf_inserted": 0}}, written=False) == "  events (not written): none"
