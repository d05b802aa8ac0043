"""The run contract end to end, against a real PostgreSQL: atomicity, statement budget,
lock, dry run, reject-ratio abort, init-db on an existing database, secrets."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from faturamento_batch.artifacts import read_manifest, read_part
from faturamento_batch.cli import main
from faturamento_batch.db.connection import adbc_connect
from faturamento_batch.db.lock import lock_key
from faturamento_batch.errors import LockHeld
from faturamento_batch.pipeline import run_sync
from faturamento_batch.settings import Settings

from .builders import build_dataset
from .dbutil import load_cascade_rows, load_rows, read_table, scalar, snapshot


def _settings(db_url: str, tmp_path: Path, source: Path, **kw) -> Settings:
    return Settings(database_url=db_url, artifacts_dir=tmp_path / "runs", state_dir=tmp_path / "state", source=source, **kw)


def _sync(db_url: str, tmp_path: Path, source: Path, *args: str) -> tuple[int, dict]:
    code = main(["sync", "--source", str(source), "--database-url", db_url, "--artifacts-dir", str(tmp_path / "runs"), *args])
    latest = max((tmp_path / "runs").iterdir(), key=lambda p: p.stat().st_mtime_ns)
    return code, read_manifest(latest)


def test_full_then_incremental_is_idempotent(db_url, tmp_path):
    ds = build_dataset(tmp_path / "odoo", moves=30)
    code, first = _sync(db_url, tmp_path, ds)
    assert code == 0
    assert first["mode"] == "full"
    assert first["counts"]["inserts"] == 90
    assert first["counts"]["consolidation"] == 30
    assert scalar(db_url, "SELECT count(*) FROM faturamento_produto") == 90
    code, second = _sync(db_url, tmp_path, ds)
    assert code == 0
    assert second["mode"] == "incremental"
    assert second["rows_to_write"] == 0
    assert all(second["counts"][p] == 0 for p in ("inserts", "status_changes", "drift", "consolidation", "new_products"))


def test_failure_in_last_statement_leaves_everything_as_before(db_url, tmp_path):
    ds = build_dataset(tmp_path / "odoo", moves=10)
    assert _sync(db_url, tmp_path, ds)[0] == 0
    cancelled = build_dataset(tmp_path / "odoo2", moves=12, cancelled={1, 2}, write_date="2026-01-06 10:00:00")
    load_cascade_rows(db_url, ["100001", "100002"])
    before = snapshot(db_url)
    # The run's last write is the run record + cursor: make PostgreSQL refuse it.
    conn = adbc_connect(db_url)
    with conn.cursor() as cur:
        cur.execute("CREATE FUNCTION fb_fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$")
        cur.execute("CREATE TRIGGER fb_fail BEFORE INSERT ON sync_runs FOR EACH ROW EXECUTE FUNCTION fb_fail()")
    conn.commit()
    conn.close()
    code, manifest = _sync(db_url, tmp_path, cancelled)
    assert code == 1
    assert manifest["status"] == "failed"
    assert "injected failure" in manifest["error"]
    assert manifest["counts"]["inserts"] == 6 and manifest["counts"]["cancellations"] == 2  # there was work to write
    assert snapshot(db_url) == before


def test_statement_count_does_not_grow_with_data(db_url, second_db, tmp_path):
    counts = {}
    for n_moves in (4, 3_400):  # ~10 and ~10,000 lines
        url = db_url if n_moves == 4 else second_db
        ds = build_dataset(tmp_path / f"odoo{n_moves}", moves=n_moves, lines_per_move=3 if n_moves > 4 else 2)
        assert _sync(url, tmp_path, ds)[0] == 0
        # Day 2: every kind of write (inserts, cancellations with cascade, new products, consolidation).
        day2 = build_dataset(tmp_path / f"odoo{n_moves}b", moves=n_moves + max(n_moves // 10, 1), lines_per_move=3 if n_moves > 4 else 2,
                             cancelled={1, 2}, products=60, price=10.5, write_date="2026-01-06 10:00:00")  # fmt: skip
        load_cascade_rows(url, ["100001"])
        code, manifest = _sync(url, tmp_path, day2, "--apply-drift")
        assert code == 0
        assert manifest["counts"]["inserts"] > 0 and manifest["counts"]["cancellations"] == 2
        assert manifest["counts"]["new_products"] > 0 and manifest["counts"]["drift"] > 0
        counts[n_moves] = manifest["sql_statements"]
    assert counts[4] == counts[3_400], counts
    # The import sends at most 15; the stock stage 4 reads and 2 per kind of write (32 with every kind:
    # tests/test_stock_io.py). Here its NFs find no shipment: movements, statuses, inconsistencies.
    assert counts[4]["total"] <= 32


def test_second_run_exits_3_while_the_lock_is_held(db_url, tmp_path):
    ds = build_dataset(tmp_path / "odoo", moves=3)
    holder = adbc_connect(db_url, autocommit=True)
    with holder.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock($1)", (lock_key("faturamento"),))
    code, manifest = _sync(db_url, tmp_path, ds)
    assert code == 3
    assert scalar(db_url, "SELECT count(*) FROM faturamento_produto") == 0
    # --wait: released by the holder after 1 s, the waiting run then goes through.
    timer = threading.Timer(1.0, holder.close)  # closing the connection releases its lock
    timer.start()
    code, manifest = _sync(db_url, tmp_path, ds, "--wait", "20")
    timer.join()
    assert code == 0
    assert manifest["counts"]["inserts"] == 9


def test_lock_dies_with_its_connection(db_url, tmp_path):
    holder = adbc_connect(db_url, autocommit=True)
    with holder.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock($1)", (lock_key("faturamento"),))
    with pytest.raises(LockHeld):
        run_sync(_settings(db_url, tmp_path, build_dataset(tmp_path / "odoo", moves=2)))
    holder.close()  # a crashed process's connection closes the same way
    result = run_sync(_settings(db_url, tmp_path, tmp_path / "odoo"))
    assert result.manifest["status"] == "success"


def test_dry_run_writes_artifacts_but_not_the_database(db_url, tmp_path):
    ds = build_dataset(tmp_path / "odoo", moves=5)
    before = snapshot(db_url)
    code, manifest = _sync(db_url, tmp_path, ds, "--dry-run")
    assert code == 0
    assert manifest["status"] == "dry_run"
    assert manifest["counts"]["inserts"] == 15
    assert snapshot(db_url) == before
    run_dir = tmp_path / "runs" / manifest["run_id"]
    assert read_part(run_dir, "inserts").height == 15
    assert {p.name for p in run_dir.iterdir()} >= {"manifest.json", "inserts.parquet", "rejected.parquet", "drift.parquet"}


def test_reject_ratio_aborts_before_writing(db_url, tmp_path):
    ds = build_dataset(tmp_path / "odoo", moves=20, lines_per_move=5, bad_quantity_every=5)  # 20 % broken
    code, manifest = _sync(db_url, tmp_path, ds)
    assert code == 1
    assert manifest["status"] == "failed" and manifest["error_type"] == "RejectRatioExceeded"
    assert "quantity_not_positive" in manifest["error"]
    assert scalar(db_url, "SELECT count(*) FROM faturamento_produto") == 0
    assert scalar(db_url, "SELECT count(*) FROM sync_state") == 0
    # The same data with a raised limit loads the good lines and quarantines the rest.
    code, manifest = _sync(db_url, tmp_path, ds, "--max-reject-ratio", "0.25")
    assert code == 0 and manifest["counts"]["rejected"] == 20 and manifest["counts"]["inserts"] == 80


def test_init_db_is_safe_on_an_existing_database(empty_db_url):
    assert main(["init-db", "--database-url", empty_db_url]) == 0
    load_rows(empty_db_url, {"cadastro_palletizacao": [{"cod_produto": "X1", "nome_produto": "Existente"}]})
    assert main(["init-db", "--database-url", empty_db_url]) == 0
    assert read_table(empty_db_url, "cadastro_palletizacao", ["cod_produto"]).rows() == [("X1",)]
    indexes = scalar(empty_db_url, "SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'ix_%' OR indexname LIKE 'uq_%'")
    assert indexes == 22  # 9 for the import, 8 more for the stock stage (DESIGN §6; its catch-up: data_fatura), 5 for the events (§11)


def test_sync_without_schema_on_an_external_database_says_run_init_db(empty_db_url, tmp_path):
    ds = build_dataset(tmp_path / "odoo", moves=1)
    code = main(["sync", "--source", str(ds), "--database-url", empty_db_url, "--artifacts-dir", str(tmp_path / "runs")])
    assert code == 2


def test_bad_database_url_is_a_clear_error_without_the_password(tmp_path, capsys):
    ds = build_dataset(tmp_path / "odoo", moves=1)
    url = "postgresql://bob:s3cr3t-pw@127.0.0.1:1/nope"
    code = main(["sync", "--source", str(ds), "--database-url", url, "--artifacts-dir", str(tmp_path / "runs")])
    assert code == 75  # nobody listens on port 1: unreachable, retry later
    err = capsys.readouterr().err
    text = err + json.dumps([read_manifest(p) for p in (tmp_path / "runs").iterdir()])
    assert "s3cr3t-pw" not in text
    assert "cannot connect to PostgreSQL at `postgresql://bob:***@127.0.0.1:1/nope" in err
    assert "Traceback" not in err


def test_numeric_columns_round_trip_at_their_scale(db_url, tmp_path):
    """ADBC has had decimal bugs (wrong scale, multiples of 10^9): check edge values through COPY."""
    import polars as pl
    from decimal import Decimal

    from faturamento_batch.db.write import Writer
    from faturamento_batch.schemas import LINE_VALUES

    edge = {
        "qtd_produto_faturado": ["0.001", "1000000000.000", "999999999999.999", "2000000000.500", "-0.001"],
        "preco_produto_faturado": ["0.0001", "1000000000.0000", "99999999999.9999", "4294967296.0001", "-1.5000"],
        "valor_produto_faturado": ["0.01", "1000000000.00", "9999999999999.99", "3000000000.10", "-0.01"],
        "peso_unitario_produto": ["0.001", "1000000000.000", "999999999999.999", "0.000", "12.345"],
        "peso_total": ["0.001", "2000000000.000", "999999999999.999", "1.000", "-12.345"],
    }
    rows = pl.DataFrame({
        "numero_nf": [f"N{i}" for i in range(5)], "data_fatura": [None] * 5, "cnpj_cliente": ["c"] * 5,
        "nome_cliente": ["n"] * 5, "municipio": [None] * 5, "estado": [None] * 5, "vendedor": [None] * 5,
        "equipe_vendas": [None] * 5, "incoterm": [None] * 5, "cod_produto": ["p"] * 5, "nome_produto": ["x"] * 5,
        **{k: [Decimal(v) for v in vals] for k, vals in edge.items()}, "origem": [""] * 5, "status_nf": ["Lançado"] * 5,
    })  # fmt: skip
    rows = rows.with_columns(pl.lit("2026-01-05").str.to_date().alias("data_fatura")).cast(dict(LINE_VALUES))
    rows = rows.with_columns(pl.lit("x").alias("odoo_template_name"), pl.lit(1.0).alias("odoo_gross_weight"))
    import datetime as dt

    from faturamento_batch.diff import compute_changeset
    from faturamento_batch.schemas import EXISTING_CONSOLIDATION, EXISTING_LINE, EXISTING_PRODUCT, empty

    cs = compute_changeset(rows, empty(EXISTING_LINE), empty(EXISTING_PRODUCT), empty(EXISTING_CONSOLIDATION), full=True)
    writer = Writer(adbc_connect(db_url))
    writer.write(cs, dt.datetime(2026, 1, 5))
    writer.commit()
    writer.close()
    got = read_table(db_url, "faturamento_produto", ["numero_nf", *edge], order="numero_nf")
    for column, values in edge.items():
        assert got.get_column(column).to_list() == values, column
