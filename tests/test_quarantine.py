"""Quarantine (DESIGN §12): an NF PostgreSQL refuses is left out, the rest commits, later runs retry it.

The refusals are the application's own: a trigger, a CHECK constraint or a unique index created
in the test on the real schema. Systematic failures (too many NFs, or an error that is not
row-specific) fail the run as before: nothing written, nothing quarantined.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from faturamento_batch import quarantine
from faturamento_batch.artifacts import read_manifest, read_part
from faturamento_batch.cli import main
from faturamento_batch.replay import ReplayServer

from .builders import build_dataset
from .dbutil import execute, read_table, scalar
from .test_sync_wire import _comparable, _wire_sync

N = 10_000
FIRST_NF = 100_000
BAD = str(FIRST_NF + 4_321)  # move 4321
BAD3 = [str(FIRST_NF + m) for m in (17, 5_000, 9_998)]
DAY1 = "2026-01-05 10:00:00"


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    return build_dataset(tmp_path_factory.mktemp("q") / "big", moves=N, lines_per_move=2, products=300, write_date=DAY1)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return build_dataset(tmp_path_factory.mktemp("q") / "small", moves=300, lines_per_move=2, products=40, write_date=DAY1)


def _sql(url: str, *statements: str) -> None:
    execute(url, *statements, each=True)


def _refuse_by_trigger(url: str, nfs: list[str], errcode: str = "P0001") -> None:
    listed = ", ".join(f"'{nf}'" for nf in nfs)  # test constants only
    _sql(url, f"""
        CREATE FUNCTION app_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.numero_nf IN ({listed}) THEN
            RAISE EXCEPTION 'NF % recusada pela aplicação', NEW.numero_nf USING ERRCODE = '{errcode}';
          END IF;
          RETURN NEW;
        END $$""", "CREATE TRIGGER app_refuse BEFORE INSERT OR UPDATE ON faturamento_produto "
                   "FOR EACH ROW EXECUTE FUNCTION app_refuse()")  # fmt: skip


def _refuse_all(url: str) -> None:
    _sql(url, """CREATE FUNCTION app_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'NF % recusada', NEW.numero_nf; END $$""",
         "CREATE TRIGGER app_refuse BEFORE INSERT ON faturamento_produto FOR EACH ROW EXECUTE FUNCTION app_refuse()")


def _sync(ds: Path, url: str, runs: Path, *args: str) -> tuple[int, dict]:
    code = main(["sync", "--source", str(ds), "--database-url", url, "--artifacts-dir", str(runs), "--chunk-size", "0", *args])
    latest = max(runs.iterdir(), key=lambda p: p.stat().st_mtime_ns)
    return code, read_manifest(latest)


def _nfs(url: str, table: str = "faturamento_produto") -> set[str]:
    return set(read_table(url, table, ["numero_nf"]).get_column("numero_nf").to_list())


def _quarantine(url: str) -> list[dict]:
    return read_table(url, "sync_quarantine").sort("numero_nf").to_dicts()


def _assert_left_out(url: str, bad: list[str], total: int) -> None:
    written = _nfs(url)
    assert len(written) == total - len(bad) and not written & set(bad)
    assert not _nfs(url, "relatorio_faturamento_importado") & set(bad)
    assert len(_nfs(url, "relatorio_faturamento_importado")) == total - len(bad)
    assert not _nfs(url, "movimentacao_estoque") & set(bad)
    assert len(_nfs(url, "movimentacao_estoque")) == total - len(bad)  # the stock stage ran for the others


def test_one_nf_a_trigger_refuses_among_10000_is_quarantined_and_the_rest_commits(big, db_url, tmp_path):
    _refuse_by_trigger(db_url, [BAD])
    started = time.perf_counter()
    code, m = _sync(big, db_url, tmp_path / "runs")
    seconds = time.perf_counter() - started
    assert code == 0, m.get("error")
    _assert_left_out(db_url, [BAD], N)
    (row,) = _quarantine(db_url)
    assert row["numero_nf"] == BAD and row["state"] == "quarantined" and row["sqlstate"] == "P0001"
    assert row["message"].startswith(f"NF {BAD} recusada pela aplicação")
    assert row["attempts"] == 1 and row["run_id"] == m["run_id"] and json.loads(row["odoo_move_ids"]) == [4_321]
    assert (row["next_try"] - row["first_seen"]).total_seconds() == quarantine.BACKOFF_SECONDS
    assert m["status"] == "success" and m["quarantined_nfs"] == [BAD]
    events = read_part(tmp_path / "runs" / m["run_id"], "events")
    inserted = events.filter(pl.col("kind") == "nf_inserted").get_column("numero_nf")
    assert m["events"]["kinds"]["nf_inserted"] == N - 1 and inserted.len() == N - 1 and BAD not in inserted.to_list()
    assert events.filter(pl.col("kind") == "nf_quarantined").get_column("numero_nf").to_list() == [BAD]
    q = m["quarantine"]
    assert q["open"] == 1 and q["named_by_error"] == 0 and q["quarantined"] == 1
    # §12's bound: about k·log2(n) probes (at most two per level), each one attempt plus its rollback.
    assert 0 < q["probes"] <= 2 * math.ceil(math.log2(N))
    assert m["counts"]["inserts"] == 2 * N and m["written"]["faturamento_produto.insert"] == 2 * (N - 1)
    print(f"\n1 bad of {N}: {q['probes']} probes, {m['sql_statements']['writer']} writer statements, {seconds:.1f}s")


def test_statements_of_a_healthy_run_are_unchanged_and_bounded_on_the_failure_path(small, db_url, second_db, tmp_path,
                                                                                    monkeypatch):  # fmt: skip
    n = 300
    code, healthy = _sync(small, db_url, tmp_path / "a")
    assert code == 0 and healthy["quarantine"]["probes"] == 0 and healthy["quarantined_nfs"] == []
    # The same run with the quarantine taken out of the path: exactly the same statements.
    monkeypatch.setattr(quarantine, "write_excluding", lambda writer, nfs, attempt: quarantine.Outcome(
        attempt(quarantine.NO_NFS), quarantine.pl.DataFrame(schema=quarantine.REFUSED_SCHEMA)))
    code, bare = _sync(small, second_db, tmp_path / "b")
    assert code == 0 and bare["sql_statements"] == healthy["sql_statements"]
    monkeypatch.undo()
    # The failure path: per probe at most one attempt's statements and its rollback.
    url = db_url
    _sql(url, "TRUNCATE faturamento_produto, relatorio_faturamento_importado, movimentacao_estoque, "
              "cadastro_palletizacao, sync_runs, sync_state")  # fmt: skip
    _refuse_by_trigger(url, [str(FIRST_NF + 150)])
    code, failed = _sync(small, url, tmp_path / "c")
    assert code == 0 and failed["quarantined_nfs"] == [str(FIRST_NF + 150)]
    per_attempt = healthy["sql_statements"]["writer"] - 3  # lock, run record, commit
    q = failed["quarantine"]
    extra = failed["sql_statements"]["writer"] - healthy["sql_statements"]["writer"]
    assert q["probes"] <= 2 * math.ceil(math.log2(n))
    print(f"\nhealthy {healthy['sql_statements']['writer']} writer statements; 1 bad of {n}: {q['probes']} probes, "
          f"+{extra} statements")
    assert extra <= (q["probes"] + q["rounds"]) * (per_attempt + 1) + 4, (extra, q)


@pytest.mark.parametrize("how", ["check", "unique", "three"])
def test_a_check_constraint_a_unique_index_and_three_bad_nfs(how, big, db_url, tmp_path):
    if how == "check":
        bad = [BAD]
        _sql(db_url, f"ALTER TABLE relatorio_faturamento_importado ADD CONSTRAINT app_nf CHECK (numero_nf <> '{BAD}')")
    elif how == "unique":
        bad = [BAD]
        product = f"P{(4_321 * 7) % 300 + 1:05d}"  # the NF's first line (builders.build_dataset)
        _sql(db_url, "CREATE UNIQUE INDEX app_nf_produto ON faturamento_produto (ltrim(numero_nf, '0'), cod_produto)",
             f"""INSERT INTO faturamento_produto (numero_nf, data_fatura, cnpj_cliente, nome_cliente, cod_produto,
                   nome_produto, qtd_produto_faturado, preco_produto_faturado, valor_produto_faturado, status_nf,
                   created_at, updated_at)
                 VALUES ('0{BAD}', '2025-12-01', '1', 'Cliente antigo', '{product}', 'Produto', 1, 1, 1, 'Cancelado',
                         now(), now())""")  # fmt: skip
    else:
        bad = BAD3
        _refuse_by_trigger(db_url, BAD3)
    started = time.perf_counter()
    code, m = _sync(big, db_url, tmp_path / "runs")
    assert code == 0, m.get("error")
    print(f"\n{how}: {len(bad)} bad of {N}: {m['quarantine']['probes']} probes, "
          f"{m['sql_statements']['writer']} writer statements, {time.perf_counter() - started:.1f}s")
    assert m["quarantined_nfs"] == sorted(bad)
    rows = _quarantine(db_url)
    assert [r["numero_nf"] for r in rows] == sorted(bad) and all(r["state"] == "quarantined" for r in rows)
    if how == "unique":
        assert rows[0]["sqlstate"] == "23505" and "app_nf_produto" in rows[0]["message"]
        assert m["quarantine"]["named_by_error"] == 1 and m["quarantine"]["probes"] == 0  # named: no bisection
        assert len(_nfs(db_url) - {f"0{BAD}"}) == N - 1 and BAD not in _nfs(db_url)
    else:
        if how == "check":
            assert rows[0]["sqlstate"] == "23514" and "app_nf" in rows[0]["message"]
        _assert_left_out(db_url, bad, N)
        assert m["quarantine"]["probes"] <= 2 * len(bad) * math.ceil(math.log2(N))


DAYS = ("2026-01-05 10:00:00", "2026-01-06 10:00:00", "2026-01-07 10:00:00")


def _days(root: Path, moves: int, new_moves: int) -> list[Path]:
    """Day k holds the NFs of the days before, untouched, and `new_moves` NFs written on day k."""
    out = []
    for k, stamp in enumerate(DAYS):
        day = build_dataset(root / f"day{k + 1}", moves=moves + k * new_moves, lines_per_move=2, products=40, write_date=DAYS[0])
        for name, key in (("account.move", "id"), ("account.move.line", "move_id")):
            path = day / f"{name}.json"
            records = json.loads(path.read_text())
            for r in records:  # test data: per-record Python is fine here
                ident = r[key][0] if isinstance(r[key], list) else r[key]
                r["write_date"] = DAYS[0] if ident <= moves else DAYS[1 + (ident - moves - 1) // new_moves]
            path.write_text(json.dumps(records))
        out.append(day)
    return out


def test_the_next_due_run_releases_the_nf_fetched_by_id_and_ends_as_if_never_quarantined(db_url, second_db, tmp_path,
                                                                                         monkeypatch):  # fmt: skip
    days = _days(tmp_path / "ds", moves=200, new_moves=20)
    bad = str(FIRST_NF + 77)
    for day in days:  # the reference: the three days, no trigger
        assert _sync(day, second_db, tmp_path / "ref")[0] == 0
    _refuse_by_trigger(db_url, [bad])
    code, first = _sync(days[0], db_url, tmp_path / "runs")
    assert code == 0 and first["quarantined_nfs"] == [bad]
    # Day 2 still reads day 1's moves (the overlap): refused again, the next try twice as far.
    code, second = _sync(days[1], db_url, tmp_path / "runs")
    assert code == 0 and second["quarantined_nfs"] == [bad]
    (row,) = _quarantine(db_url)
    assert row["attempts"] == 2 and (row["next_try"] - row["last_tried"]).total_seconds() == 2 * quarantine.BACKOFF_SECONDS
    assert row["run_id"] == first["run_id"]  # the run that found it
    _sql(db_url, "DROP TRIGGER app_refuse ON faturamento_produto")
    # Day 3: the cursor has moved past the NF's move and it is not due yet: left alone.
    served = tmp_path / "served"
    served.mkdir()
    for f in days[2].iterdir():
        (served / f.name).write_text(f.read_text())
    with ReplayServer(served) as odoo:
        code, third = _wire_sync(odoo, db_url, tmp_path / "runs", monkeypatch, "--chunk-size", "0")
        assert code == 0 and third["quarantine_retry"] == {"nfs": 0, "moves_fetched": 0}
        assert _quarantine(db_url)[0]["state"] == "quarantined" and third["quarantine"]["open"] == 1
        first_seen = _quarantine(db_url)[0]["first_seen"]
        assert third["quarantine"]["oldest_age_seconds"] > 0 and third["quarantine"]["probes"] == 0
        assert first_seen == scalar(db_url, "SELECT started_at FROM sync_runs WHERE run_id = $1", (first["run_id"],))
        assert main(["quarantine", "retry", bad, "--database-url", db_url]) == 0  # due now
        code, fourth = _wire_sync(odoo, db_url, tmp_path / "runs", monkeypatch, "--chunk-size", "0")
    assert code == 0, fourth.get("error")
    assert fourth["mode"] == "incremental" and fourth["counts"]["odoo_lines"] == 2 * 20 + 2  # the window + the retry
    assert fourth["quarantine_retry"] == {"nfs": 1, "moves_fetched": 1}
    assert fourth["released_nfs"] == [bad] and fourth["quarantined_nfs"] == [] and fourth["quarantine"]["open"] == 0
    (row,) = _quarantine(db_url)
    assert row["state"] == "released" and row["released_at"] is not None
    assert _comparable(db_url) == _comparable(second_db)
    assert scalar(db_url, "SELECT cursor::text FROM sync_state") == scalar(second_db, "SELECT cursor::text FROM sync_state")


def test_quarantine_command_summary_runs_show_and_metrics(small, db_url, tmp_path, capsys):
    _refuse_by_trigger(db_url, [str(FIRST_NF + 5)])
    prom = tmp_path / "fb.prom"
    code, m = _sync(small, db_url, tmp_path / "runs", "--metrics-file", str(prom))
    assert code == 0
    assert f"quarantine: 1 NF(s) refused and left out ({FIRST_NF + 5})" in capsys.readouterr().err
    assert 'faturamento_batch_quarantined_nfs{job="faturamento"} 1' in prom.read_text()
    assert 'faturamento_batch_quarantine_oldest_age_seconds{job="faturamento"} 0' in prom.read_text()
    assert scalar(db_url, "SELECT (counts->>'quarantined_nfs')::int FROM sync_runs") == 1
    assert main(["runs", "show", m["run_id"], "--artifacts-dir", str(tmp_path / "runs"), "--database-url", db_url]) == 0
    assert "quarantine: 1 NF(s) refused" in capsys.readouterr().out
    assert main(["quarantine", "list", "--database-url", db_url]) == 0
    out = capsys.readouterr().out
    assert str(FIRST_NF + 5) in out and "P0001" in out
    assert main(["quarantine", "list", "--json", "--database-url", db_url]) == 0
    (listed,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert listed["numero_nf"] == str(FIRST_NF + 5) and listed["attempts"] == 1 and listed["state"] == "quarantined"
    assert main(["quarantine", "drop", str(FIRST_NF + 5), "--database-url", db_url]) == 0
    assert _quarantine(db_url)[0]["state"] == "dropped"
    assert main(["quarantine", "retry", "999999", "--database-url", db_url]) == 2  # not quarantined: said so


@pytest.mark.parametrize("errcode, exit_code", [("all", 1), ("42501", 1), ("57014", 75)])
def test_systematic_failures_fail_the_run_as_before(errcode, exit_code, small, db_url, tmp_path):
    if errcode == "all":
        _refuse_all(db_url)
    else:  # not row-specific: a privilege or a timeout raised on one NF only is still not the NF's fault
        _refuse_by_trigger(db_url, [str(FIRST_NF + 9)], errcode)
    code, m = _sync(small, db_url, tmp_path / "runs")
    print(f"\n{errcode}: exit {code}, {m['sql_statements']['writer']} writer statements, {m.get('error_type')}")
    assert code == exit_code and m["status"] == "failed"
    if errcode == "all":
        assert m["error_type"] == "QuarantineLimit" and "systematic" in m["error"]
    assert scalar(db_url, "SELECT count(*) FROM faturamento_produto") == 0
    assert scalar(db_url, "SELECT count(*) FROM sync_quarantine") == 0
    assert scalar(db_url, "SELECT count(*) FROM sync_runs") == 0


def test_sigkill_during_the_bisection_leaves_the_database_before_and_the_next_run_converges(big, db_url, second_db,
                                                                                           tmp_path):  # fmt: skip
    _refuse_by_trigger(db_url, [BAD])
    _refuse_by_trigger(second_db, [BAD])
    cmd = [sys.executable, "-m", "faturamento_batch.cli", "sync", "--source", str(big), "--database-url", db_url,
           "--artifacts-dir", str(tmp_path / "runs"), "--chunk-size", "0"]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    for line in proc.stderr:  # type: ignore[union-attr]
        if "quarantine: " in line or "looking for the NFs responsible" in line:
            time.sleep(0.5)
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    for _ in range(50):  # the server notices the dead client and rolls back
        if scalar(db_url, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()") == 0:
            break
        time.sleep(0.1)
    for table in ("faturamento_produto", "relatorio_faturamento_importado", "sync_quarantine", "sync_runs"):
        assert scalar(db_url, f"SELECT count(*) FROM {table}") == 0, table
    code, m = _sync(big, db_url, tmp_path / "runs")
    assert code == 0 and m["quarantined_nfs"] == [BAD]
    assert _sync(big, second_db, tmp_path / "ref")[0] == 0
    assert _comparable(db_url) == _comparable(second_db)


# -- the pure pieces -------------------------------------------------------------------------------


class _Refusal(Exception):
    def __init__(self, detail: str):
        self.detail = detail


@pytest.mark.parametrize("detail, expected", [
    ("Key (ltrim(numero_nf::text, '0'::text), cod_produto)=(104321, P00001) already exists.", "104321"),
    ("Key (numero_nf)=(104321) already exists.", "104321"),
    ("Key (cod_produto, numero_nf)=(P1, 104321) conflicts with existing key (cod_produto, numero_nf)=(P1, 104321).", "104321"),
    ("Key (numero_nf)=(999) already exists.", None),  # not one of the run's NFs
    ("Key (cnpj_cliente)=(1) already exists.", None),  # names no NF
    ("Key (numero_nf, nome)=(104321, a, b) already exists.", None),  # a comma inside a value: cannot tell
    ("Failing row contains (…).", None),
])  # fmt: skip
def test_the_nf_named_by_a_unique_violation(detail, expected):
    suspects = quarantine.pl.Series(["104321", "100001"])
    assert quarantine.named_nf(_Refusal(detail), suspects) == expected


def test_row_specific_sqlstates():
    from faturamento_batch.errors import (DatabasePermanentError, DatabaseTransientError, PermissionDenied,
                                          QuarantineLimit, is_row_specific)  # fmt: skip

    for state in ("22001", "22003", "23505", "23514", "23502", "P0001"):
        assert is_row_specific(DatabasePermanentError("x", state)), state
    for state in ("42501", "42P01", "XX000", "55000", None):
        assert not is_row_specific(DatabasePermanentError("x", state)), state
    assert not is_row_specific(DatabaseTransientError("x", "40P01"))
    assert not is_row_specific(PermissionDenied("x"))
    assert not is_row_specific(QuarantineLimit("x", "P0001"))
    assert quarantine.limit(300) == 20 and quarantine.limit(10_000) == 100 and quarantine.limit(2_001) == 21


def test_changeset_and_stock_plan_without_nfs(small):
    import polars as pl

    from faturamento_batch.diff import compute_changeset
    from faturamento_batch.odoo.dataset import DatasetSource
    from faturamento_batch.schemas import EXISTING_CONSOLIDATION, EXISTING_LINE, EXISTING_PRODUCT
    from faturamento_batch.transform import transform

    lines = transform(DatasetSource(small).extract(None).frames).lines
    cs = compute_changeset(lines, pl.DataFrame(schema=EXISTING_LINE), pl.DataFrame(schema=EXISTING_PRODUCT),
                           pl.DataFrame(schema=EXISTING_CONSOLIDATION), full=True)  # fmt: skip
    gone = ["100001", "100002"]
    rest = cs.without(gone)
    assert cs.nfs().len() == 300 and rest.nfs().len() == 298 and not rest.nfs().is_in(gone).any()
    assert rest.inserts.height == cs.inserts.height - 4 and rest.consolidation.height == 298
    inserted = rest.downstream.filter(pl.col("kind") == "nfs_inserted").get_column("numero_nf")
    assert "100001" not in inserted.to_list() and inserted.n_unique() == 298
    # Products used by other NFs' lines stay new; the ChangeSet itself is unchanged.
    assert rest.new_products.height == cs.new_products.height and cs.inserts.height == 600
    assert cs.without([]) is cs


def test_stock_plan_without_nfs():
    import polars as pl

    from faturamento_batch import schemas
    from faturamento_batch.stock import StockPlan

    def part(schema: pl.Schema) -> pl.DataFrame:
        frame = pl.DataFrame({c: [None, None, None] for c in schema}, schema=schema)
        return frame.with_columns(pl.Series("numero_nf", ["A", "B", "C"], dtype=pl.String))

    plan = StockPlan(
        assignments=part(schemas.STOCK_ASSIGNMENT), movement_inserts=part(schemas.STOCK_MOVEMENT_INSERT),
        movement_completions=part(schemas.STOCK_MOVEMENT_COMPLETE), item_links=part(schemas.STOCK_ITEM_LINK),
        item_flags=part(schemas.STOCK_ITEM_FLAG), separation_links=part(schemas.STOCK_SEPARATION_LINK),
        separation_statuses=part(schemas.STOCK_SEPARATION_STATUS), status_changes=part(schemas.STOCK_STATUS_CHANGE),
        inconsistencies=part(schemas.STOCK_INCONSISTENCY), justifications=part(schemas.STOCK_JUSTIFICATION),
    )  # fmt: skip
    rest = plan.without(["B"])
    assert plan.nfs().to_list() == ["A", "B", "C"] and rest.nfs().to_list() == ["A", "C"]
    assert all(f.get_column("numero_nf").to_list() == ["A", "C"] for f in rest.parts().values())
    assert all(f.schema == plan.parts()[n].schema for n, f in rest.parts().items())


def test_a_due_nf_read_again_with_nothing_left_to_write_is_released(small, db_url, tmp_path):
    """Released means read from Odoo again and not refused — also when nothing of it differs any
    more (written meanwhile by other means): else it would be fetched again on every run."""
    bad = str(FIRST_NF + 150)
    _refuse_by_trigger(db_url, [bad])
    code, first = _sync(small, db_url, tmp_path / "runs")
    assert code == 0 and first["quarantined_nfs"] == [bad]
    _sql(db_url, "DROP TRIGGER app_refuse ON faturamento_produto")
    code, second = _sync(small, db_url, tmp_path / "runs", "--full")
    assert code == 0 and second["released_nfs"] == [bad] and bad in _nfs(db_url)
    # The NF is in the tables as Odoo has it; the quarantine still lists it (as after a hand fix).
    _sql(db_url, "UPDATE sync_quarantine SET state = 'quarantined', released_at = NULL")
    code, third = _sync(small, db_url, tmp_path / "runs", "--full")
    assert code == 0 and third["counts"]["inserts"] == 0 and third["counts"]["status_changes"] == 0
    assert third["released_nfs"] == [bad] and _quarantine(db_url)[0]["state"] == "released"
    kinds = read_part(tmp_path / "runs" / third["run_id"], "events").get_column("kind").to_list()
    assert kinds.count("nf_released") == 1
