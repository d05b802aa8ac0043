"""Downstream events, the consumers' side (DESIGN §11), against a real PostgreSQL: exactly once per
consumer under concurrent workers (psycopg 3, psycopg2, ADBC), dying workers, leases, late
registration, retention, the CLI verbs and the README's example consumer."""

from __future__ import annotations

import json
import random
import re
import threading
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import psycopg
import psycopg2
import pytest

from faturamento_batch.cli import main
from faturamento_batch.consumer import Consumer
from faturamento_batch.db.connection import adbc_connect
from faturamento_batch.db.events import write_events
from faturamento_batch.db.write import Writer
from faturamento_batch.events import build_events, extra_events

from .builders import build_dataset
from .dbutil import scalar
from .test_stock_io import _run

ROOT = Path(__file__).resolve().parent.parent


def _write(url: str, nfs: list[str], now: datetime, run_id: str = "r1", retention_days: float = 7.0, kind: str = "nf_inserted"):
    """One run's events statement, as the run sends it, for `nfs` (an NF listed twice gets two kinds)."""
    frame = pl.DataFrame({"numero_nf": nfs, "origem": [f"PED{n}" for n in nfs], "valor": [1.5] * len(nfs)},
                         schema={"numero_nf": pl.String, "origem": pl.String, "valor": pl.Float64})
    first = frame.unique("numero_nf", keep="first", maintain_order=True)
    second = frame.filter(frame["numero_nf"].is_duplicated()).unique("numero_nf")
    events = build_events(run_id, "faturamento", now, extra=[extra_events(first, kind, ["valor"]),
                                                             extra_events(second, "nf_stock_linked", ["valor"])])
    writer = Writer(adbc_connect(url))
    try:
        out = write_events(writer, events, now, retention_days)
        writer.commit()
    finally:
        writer.close()
    return out


def _consumer_conn(url: str, driver: str):
    if driver == "psycopg":
        return psycopg.connect(url)
    if driver == "psycopg2":
        return psycopg2.connect(url)
    return adbc_connect(url)


def _register(url: str, name: str, driver: str = "psycopg") -> int | None:
    conn = _consumer_conn(url, driver)
    try:
        after = Consumer(conn, name).register()
        conn.commit()
        return after
    finally:
        conn.close()


ERRORS: list = []


def _worker(*args, **kw) -> None:
    try:
        _work(*args, **kw)
    except Exception as exc:  # noqa: BLE001 — reported by the test, with its cause
        ERRORS.append(f"{threading.current_thread().name}: {type(exc).__name__}: {exc}")


def _work(url: str, name: str, driver: str, log: list, dead: list, die_every: int = 0, seed: int = 0) -> None:
    """Claim, do the work (a row in `work`), ack, commit — until nothing is left. Every
    `die_every`-th batch it dies between claim and ack instead (its connection dropped)."""
    rng = random.Random(seed)
    conn = _consumer_conn(url, driver)
    batches = 0
    while True:
        c = Consumer(conn, name)
        events = c.claim(rng.randint(20, 80))
        if not events:
            conn.commit()
            break
        batches += 1
        ids = [e.id for e in events]
        if die_every and batches % die_every == 0:
            dead.append(ids)
            conn.close()  # dies holding the claim: the server rolls it back
            conn = _consumer_conn(url, driver)
            continue
        cur = conn.cursor()
        a, b = ("$1", "$2") if driver == "adbc" else ("%s", "%s")
        cur.execute(f"INSERT INTO work (consumer, event_id) SELECT {a}, unnest({b}::bigint[])", (name, ids))
        cur.close()
        assert c.ack(ids) == len(ids)
        conn.commit()
        log.append((threading.current_thread().name, ids))
    conn.close()


def test_four_workers_and_two_other_consumers_each_process_every_event_exactly_once(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE work (seq bigserial, consumer text, event_id bigint)")
    for name, driver in (("entregas", "psycopg"), ("fretes", "psycopg2"), ("alertas", "adbc")):
        assert _register(db_url, name, driver) == 0
    nfs = [str(500_000 + i) for i in range(9_000)]
    nfs += nfs[:1_000]  # 1,000 NFs with two events: handed out in id order per NF
    written = _write(db_url, nfs, datetime(2026, 1, 5, 10))
    assert written.inserted == 10_000 and written.deliveries == 30_000
    all_ids = {r[0] for r in psycopg.connect(db_url).execute("SELECT id FROM sync_events").fetchall()}
    assert len(all_ids) == 10_000

    ERRORS.clear()
    logs: dict[str, list] = {"entregas": [], "fretes": [], "alertas": []}
    dead: dict[str, list] = {k: [] for k in logs}
    threads = [threading.Thread(target=_worker, name=f"entregas-{i}", args=(db_url, "entregas", "psycopg", logs["entregas"],
                                dead["entregas"], 7 if i == 0 else 0, i)) for i in range(4)]  # fmt: skip
    threads.append(threading.Thread(target=_worker, args=(db_url, "fretes", "psycopg2", logs["fretes"], dead["fretes"], 11)))
    threads.append(threading.Thread(target=_worker, args=(db_url, "alertas", "adbc", logs["alertas"], dead["alertas"])))
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads)
    assert ERRORS == []

    for name, batches in logs.items():
        processed = [i for _, ids in batches for i in ids]
        # Committed claims never overlap (no worker held another's event) and cover every event.
        assert len(processed) == len(set(processed)) == 10_000, name
        assert set(processed) == all_ids, name
        rows = psycopg.connect(db_url).execute(
            "SELECT event_id, count(*) FROM work WHERE consumer = %s GROUP BY event_id HAVING count(*) > 1", (name,)
        ).fetchall()
        assert rows == [], name  # the work itself happened once per event
    assert {w for w, _ in logs["entregas"]} == {f"entregas-{i}" for i in range(4)}  # all four did work
    assert dead["entregas"] and dead["fretes"]  # workers did die holding claims …
    assert scalar(db_url, "SELECT count(*) FROM sync_event_deliveries WHERE acked_at IS NULL") == 0  # … and nothing was lost
    # An NF's two events were processed in id order, whatever worker took them.
    rows = psycopg.connect(db_url).execute(
        "SELECT w.consumer, w.seq, e.id, e.numero_nf FROM work w JOIN sync_events e ON e.id = w.event_id").fetchall()
    order = pl.DataFrame(rows, schema=["consumer", "seq", "id", "numero_nf"], orient="row")
    per_nf = order.sort("seq").group_by("consumer", "numero_nf").agg(pl.col("id"))
    pairs = per_nf.filter(pl.col("id").list.len() == 2)
    assert pairs.height == 3_000
    assert pairs.select((pl.col("id").list.first() < pl.col("id").list.last()).all()).item()


def test_a_worker_dying_between_claim_and_ack_loses_nothing_and_a_lease_returns(db_url):
    _register(db_url, "entregas")
    _write(db_url, [str(n) for n in range(100, 110)], datetime(2026, 1, 5, 10))
    first = psycopg.connect(db_url)
    held = Consumer(first, "entregas").claim(4)
    assert [e.numero_nf for e in held] == ["100", "101", "102", "103"]
    other = psycopg.connect(db_url)
    rest = Consumer(other, "entregas").claim(100)
    assert {e.id for e in rest}.isdisjoint({e.id for e in held}) and len(rest) == 6  # SKIP LOCKED
    other.rollback()
    with psycopg.connect(db_url, autocommit=True) as admin:  # the worker's process dies
        pid = first.info.backend_pid
        admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))  # waits until it is gone
        assert admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0] == 0
    again = Consumer(other, "entregas").claim(100)
    assert len(again) == 10 and {e.id for e in held} <= {e.id for e in again}
    other.rollback()

    # A claim-then-process-elsewhere client: its committed lease hides the events, then lapses.
    lease = Consumer(other, "entregas", visibility_seconds=1.0)
    taken = lease.claim(3)
    other.commit()
    assert len(Consumer(other, "entregas").claim(100)) == 7
    other.rollback()
    import time

    time.sleep(1.2)
    back = Consumer(other, "entregas").claim(100)
    assert {e.id for e in taken} <= {e.id for e in back}
    assert max(e.claims for e in back) == 2  # the consumer can tell a redelivery
    assert Consumer(other, "entregas").ack([e.id for e in back]) == 10
    assert Consumer(other, "entregas").ack([e.id for e in back]) == 0  # acking twice acks once
    other.commit()
    other.close()


def test_a_consumer_registered_after_run_1_sees_run_2_s_events_only(db_url, tmp_path, capsys):
    url = ["--database-url", db_url]
    assert main(["events", "consumers", "add", "entregas", *url]) == 0
    code, m1 = _run(db_url, tmp_path, "sync", source=build_dataset(tmp_path / "d1", moves=3))
    assert code == 0 and m1["events"]["deliveries"] == 6
    assert main(["events", "consumers", "add", "fretes", *url]) == 0
    code, m2 = _run(db_url, tmp_path, "sync", source=build_dataset(tmp_path / "d2", moves=5, write_date="2026-01-06 10:00:00"))
    assert code == 0 and m2["events"]["written"] == 4
    capsys.readouterr()
    assert main(["events", "claim", "--consumer", "fretes", "--limit", "100", *url]) == 0
    claimed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {e["run_id"] for e in claimed} == {m2["run_id"]} and len(claimed) == 4
    assert main(["events", "claim", "--consumer", "entregas", "--limit", "100", *url]) == 0
    seen = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {e["run_id"] for e in seen} == {m1["run_id"], m2["run_id"]} and len(seen) == 10
    assert main(["events", "ack", "--consumer", "fretes", *(str(e["id"]) for e in claimed), *url]) == 0
    assert main(["events", "consumers", "list", "--json", *url]) == 0
    listed = {r["name"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert listed["fretes"]["pending"] == 0 and listed["entregas"]["pending"] == 10 and listed["entregas"]["leased"] == 10
    assert listed["fretes"]["registered_after_id"] == 6
    assert main(["events", "list", "--run", m1["run_id"], *url]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 6
    assert main(["events", "claim", "--consumer", "nobody", *url]) == 2  # a clear error (ConfigError), no traceback
    assert main(["events", "consumers", "remove", "entregas", *url]) == 0
    assert scalar(db_url, "SELECT count(*) FROM sync_event_deliveries WHERE consumer = 'entregas'") == 0


def test_retention_deletes_only_events_every_consumer_acked_and_older_than_the_setting(db_url):
    now = datetime(2026, 1, 20, 10)
    _register(db_url, "entregas")
    _register(db_url, "fretes")
    _write(db_url, [f"A{i}" for i in range(10)], now - timedelta(days=10), "old")
    _write(db_url, [f"B{i}" for i in range(10)], now - timedelta(days=3), "recent")
    _register(db_url, "alertas")  # registered later: never had these, does not hold them back
    with psycopg.connect(db_url) as conn:
        for name in ("entregas", "fretes"):
            c = Consumer(conn, name)
            ids = [e.id for e in c.claim(100)]
            # fretes leaves two old events unacked
            c.ack(ids if name == "entregas" else [i for i in ids if i not in (1, 2)])
        conn.commit()
    written = _write(db_url, ["C1"], now, "today", retention_days=7)
    assert written.deleted == 8
    remaining = psycopg.connect(db_url).execute("SELECT run_id, count(*) FROM sync_events GROUP BY 1 ORDER BY 1").fetchall()
    assert remaining == [("old", 2), ("recent", 10), ("today", 1)]
    assert scalar(db_url, "SELECT count(*) FROM sync_event_deliveries WHERE event_id BETWEEN 3 AND 10") == 0
    assert written.consumers["fretes"]["pending"] == 2 and written.consumers["fretes"]["oldest_unacked_seconds"] == 10 * 86400
    assert written.consumers["entregas"]["pending"] == 0 and written.consumers["entregas"]["oldest_unacked_seconds"] is None
    # A run without events still applies the retention: B's (acked by both, 3 days old) go at 1 day.
    assert _write(db_url, [], now, "empty", retention_days=1).deleted == 10
    assert scalar(db_url, "SELECT count(*) FROM sync_events WHERE id IN (1, 2)") == 2  # fretes still holds them


def _readme_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- example:consumer -->\s*```python\n(.*?)```", readme, re.S)
    assert m, "README has no example consumer"
    return m.group(1)


def test_the_readme_example_consumer_runs(db_url, monkeypatch):
    code = _readme_example()
    monkeypatch.setenv("FATURAMENTO_DATABASE_URL", db_url)
    assert len([x for x in code.strip().splitlines() if x.strip()]) <= 10
    _register(db_url, "entregas")
    _write(db_url, ["900", "901", "900"], datetime(2026, 1, 5, 10))
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE entregas_log (numero_nf text, kind text)")
    namespace = {"DSN": db_url, "__name__": "example"}
    exec(compile(code, "README example", "exec"), namespace)  # noqa: S102 — the README's own text
    rows = psycopg.connect(db_url).execute("SELECT numero_nf, kind FROM entregas_log ORDER BY 1, 2").fetchall()
    assert rows == [("900", "nf_inserted"), ("900", "nf_stock_linked"), ("901", "nf_inserted")]
    assert scalar(db_url, "SELECT count(*) FROM sync_event_deliveries WHERE acked_at IS NULL") == 0


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2", "adbc"])
def test_the_helper_speaks_every_driver(db_url, driver):
    _register(db_url, "entregas", driver)
    _write(db_url, ["1", "2"], datetime(2026, 1, 5, 10), "r9")
    conn = _consumer_conn(db_url, driver)
    c = Consumer(conn, "entregas")
    events = c.claim(10)
    assert [(e.numero_nf, e.kind, e.payload["valor"]) for e in events] == [("1", "nf_inserted", 1.5), ("2", "nf_inserted", 1.5)]
    assert isinstance(events[0].created_at, datetime) and events[0].run_id == "r9"
    assert c.ack([e.id for e in events]) == 2
    conn.commit()
    assert [e.id for e in c.list_events("r9")] == [e.id for e in events]
    assert c.consumers()[0]["pending"] == 0
    conn.close()


def test_a_sqlalchemy_application_consumes_with_what_it_has(db_url):
    """The README's two ways from Flask/SQLAlchemy: the protocol's SQL through `text()`, or the
    helper over `engine.raw_connection()`."""
    from sqlalchemy import create_engine, text

    from faturamento_batch.consumer import ACK_SQL, CLAIM_SQL

    _register(db_url, "fretes")
    _write(db_url, ["1", "2", "3"], datetime(2026, 1, 5, 10))
    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    claim = text(CLAIM_SQL.replace("$1", ":c").replace("$2", ":n").replace("$3", ":s"))
    ack = text(ACK_SQL.replace("$1", ":c").replace("$2", ":ids"))  # named: the order does not matter
    with engine.begin() as conn:  # one transaction: claim, work, ack
        rows = conn.execute(claim, {"c": "fretes", "n": 2, "s": 60}).all()
        assert [r.numero_nf for r in rows] == ["1", "2"]
        assert len(conn.execute(ack, {"c": "fretes", "ids": [r.id for r in rows]}).all()) == 2
    raw = engine.raw_connection()
    try:
        c = Consumer(raw, "fretes")
        assert [e.numero_nf for e in c.claim(10)] == ["3"]
        raw.rollback()
    finally:
        raw.close()
    engine.dispose()
