"""`faturamento_batch.analysis` on real runs: a day-1 full sync and a day-2 incremental sync
(cancellations with their cascade, a reactivation, drift, rejected lines) against the real
PostgreSQL, plus the smoke fixture; and runs with missing or empty parts."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from faturamento_batch import analysis as an
from faturamento_batch.cli import main

from .builders import build_dataset
from .conftest import FIXTURES, clone_template, drop_database
from .dbutil import load_rows

SMOKE = FIXTURES / "smoke_mixed" / "odoo"


def latest(runs: Path) -> Path:
    return max(runs.iterdir(), key=lambda p: p.stat().st_mtime_ns)


def sync(url: str, runs: Path, source: Path, *args: str) -> tuple[int, Path]:
    """One `faturamento-batch sync` into `runs`; the exit code and the run's directory."""
    code = main(["sync", "--source", str(source), "--database-url", url, "--artifacts-dir", str(runs), *args])
    return code, latest(runs)


def make_scenario(url: str, root: Path) -> tuple[Path, Path]:
    """Two runs under `root/runs` → (day-1 run dir, day-2 run dir).

    Day 1 (full): NFs 100001–100010, three lines each (qty 1, 2, 3 × 10.25), 100003 cancelled.
    Stock, shipment and picking rows then point at 100001 and 100002.
    Day 2 (incremental): 100001 and 100002 cancelled, 100003 posted again, price 10.50
    (drift), new NFs 100011–100012, and Odoo lines 10, 20, 30 with quantity 0 (rejected).
    The import alone (`--no-stock`): these runs are about the ChangeSet's parts.
    """
    runs = root / "runs"
    day1 = build_dataset(root / "day1", moves=10, cancelled={3})
    day2 = build_dataset(root / "day2", moves=12, cancelled={1, 2}, price=10.5, bad_quantity_every=10,
                         write_date="2026-01-06 10:00:00")  # fmt: skip
    code, first = sync(url, runs, day1, "--no-stock")
    assert code == 0
    load_rows(url, {
        "embarques": [{"id": 1, "numero": 1}],
        "movimentacao_estoque": [{"cod_produto": "P00008", "numero_nf": nf, "status_nf": "FATURADO"}
                                 for nf in ("100001", "100001", "100002")],
        "embarque_itens": [{"embarque_id": 1, "nota_fiscal": "100001"}],
        "separacao": [{"numero_nf": "100002", "sincronizado_nf": True}],
    })  # fmt: skip
    code, second = sync(url, runs, day2, "--max-reject-ratio", "1", "--no-stock")
    assert code == 0
    return first, second


@pytest.fixture(scope="module")
def runs(pg_admin_url, template_url, tmp_path_factory) -> dict[str, an.Run]:
    """day1, day2 (make_scenario) and smoke (the smoke_mixed fixture on an empty database)."""
    root = tmp_path_factory.mktemp("analysis")
    urls = [clone_template(pg_admin_url), clone_template(pg_admin_url)]
    try:
        day1, day2 = make_scenario(urls[0], root / "scenario")
        code, smoke = sync(urls[1], root / "smoke" / "runs", SMOKE, "--max-reject-ratio", "1", "--no-stock")
        assert code == 0
    finally:
        for url in urls:
            drop_database(pg_admin_url, url)
    return {"day1": an.load_run(day1), "day2": an.load_run(day2), "smoke": an.load_run(smoke)}


def test_summary_counts_and_timings(runs):
    day2 = runs["day2"]
    counts = dict(an.part_counts(day2).rows())
    assert counts == {"inserts": 6, "status_changes": 9, "drift": 27, "cancellations": 2, "reactivations": 1,
                      "new_products": 2, "consolidation": 5, "orphans": 0, "rejected": 3}  # fmt: skip
    overview = dict(an.overview(day2).rows())
    assert overview["run id"] == day2.run_id and overview["mode"] == "incremental" and overview["status"] == "success"
    assert overview["cursor stored"] == "2026-01-05T10:00:00"
    assert overview["read since"] == "2026-01-05T09:50:00"  # the cursor minus the 10-minute overlap
    assert overview["new cursor"] == "2026-01-06T10:00:00"
    assert overview["rejected ratio"] == "8.33%"  # 3 of 36 Odoo lines
    assert dict(an.overview(runs["day1"]).rows())["read since"] == "the beginning"
    timings = an.phase_timings(day2)
    assert timings["phase"].to_list() == ["connect", "lock", "extract", "transform", "read_state", "diff", "artifacts", "events",
                                          "write"]  # fmt: skip
    assert timings["seconds"].to_list() == [day2.manifest["timings"][p] for p in timings["phase"]]
    assert 0 < timings["share"].sum() <= 1.01


def test_inserts_by_day_uf_customer_and_product(runs):
    day2 = runs["day2"]
    assert an.inserts_by_day(day2).rows() == [(date(2026, 1, 5), 2, 6, 126.0)]  # 2 NFs × (1 + 2 + 3) × 10.50
    assert an.inserts_by_uf(day2).rows() == [("SP", 2, 6, 126.0)]
    assert an.top_customers(day2).rows() == [
        ("00000012/0001-00", "Cliente 12", 1, 3, 63.0),
        ("00000013/0001-00", "Cliente 13", 1, 3, 63.0),
    ]
    products = an.top_products(day2, n=3)
    assert products.rows() == [("P00030", "Produto 30", 1, 3.0, 31.5), ("P00037", "Produto 37", 1, 3.0, 31.5),
                               ("P00029", "Produto 29", 1, 2.0, 21.0)]  # fmt: skip
    # The smoke fixture: two states, values at their scale.
    assert an.inserts_by_uf(runs["smoke"]).rows() == [("SP", 1, 1, 35.1), ("GO", 1, 1, 3.02)]
    assert an.inserts_by_day(runs["day1"])["valor"].to_list() == [615.0]  # 10 NFs × (1 + 2 + 3) × 10.25


def test_status_transitions_and_cancellation_cascade(runs):
    day2 = runs["day2"]
    assert an.status_transitions(day2).rows() == [
        ("Lançado → Cancelado", "Lançado", "Cancelado", 6, 2),
        ("Cancelado → Lançado", "Cancelado", "Lançado", 3, 1),
    ]
    cascade = an.cancellation_cascade(day2)
    assert cascade.columns == ["numero_nf", "stock_movements", "shipment_items", "separations", "inconsistencies",
                               "consolidations"]  # fmt: skip
    assert cascade.rows() == [("100001", 2, 1, 0, 0, 1), ("100002", 1, 0, 1, 0, 1)]  # --no-stock: no inconsistencies
    assert an.cascade_totals(day2).rows() == [
        ("stock_movements", 3), ("shipment_items", 1), ("separations", 1), ("inconsistencies", 0), ("consolidations", 2)
    ]  # fmt: skip


def test_reactivations_reprocessing_and_new_products(runs):
    day2 = runs["day2"]
    assert an.reactivated_nfs(day2).rows() == [("100003", "Cliente 4", 63.0, True)]
    assert an.nfs_to_reprocess(day2).rows() == [("100003", "reactivated"), ("100011", "new NF"), ("100012", "new NF")]
    assert an.new_products(day2).rows() == [("P00028", "Produto 28", 1.0, 1.5), ("P00035", "Produto 35", 1.0, 1.5)]
    assert an.new_products(runs["day1"]).height == 24


def test_drift_fields_deltas_and_top_nfs(runs):
    day2 = runs["day2"]
    # Price 10.25 → 10.50 on the 27 day-1 lines Odoo still returns (30 minus the 3 rejected).
    assert an.drift_fields(day2).rows() == [("preco_produto_faturado", 27, 10), ("valor_produto_faturado", 27, 10)]
    deltas = an.drift_deltas(day2)
    assert deltas.height == 27
    assert deltas.filter(pl.col("numero_nf") == "100001").select("cod_produto", "delta_preco", "delta_valor", "delta_qtd").rows() == [
        ("P00008", 0.25, 0.25, 0.0), ("P00009", 0.25, 0.5, 0.0), ("P00010", 0.25, 0.75, 0.0)
    ]  # fmt: skip
    assert an.drift_totals(day2).rows() == [("preco", 27, 6.75, 6.75, 0.25), ("valor", 27, 13.5, 13.5, 0.75)]
    top = an.top_drift_nfs(day2, n=10)
    assert top.height == 10
    assert top.row(0) == ("100001", 3, "preco_produto_faturado, valor_produto_faturado", 1.5, 0.0)
    # NFs that lost a line to rejection drift less: 100004 (1.25), 100007 (1.0), 100010 (0.75).
    assert top.select("numero_nf", "delta_valor").tail(3).rows() == [("100004", 1.25), ("100007", 1.0), ("100010", 0.75)]


def test_rejected_by_reason_with_examples(runs):
    day2 = runs["day2"]
    assert an.rejected_by_reason(day2).rows() == [("quantity_not_positive", 3, 3, 0.0833)]
    assert an.rejected_examples(day2, per_reason=2).select("reason", "odoo_line_id", "numero_nf").rows() == [
        ("quantity_not_positive", 10, "100004"), ("quantity_not_positive", 20, "100007")
    ]  # fmt: skip
    smoke = an.rejected_by_reason(runs["smoke"])
    assert smoke.rows() == [("no_nf_number", 1, 0, 0.1429), ("no_product", 1, 1, 0.1429),
                            ("no_product_code", 1, 1, 0.1429), ("quantity_not_positive", 1, 1, 0.1429)]  # fmt: skip


def test_compare_two_runs(runs):
    day1, day2 = runs["day1"], runs["day2"]
    counts = an.compare_counts(day2, day1)
    assert counts.columns == ["part", day2.run_id, day1.run_id, "change"]
    assert counts.row(0) == ("inserts", 6, 30, -24)
    assert dict(zip(counts["part"], counts["change"]))["cancellations"] == 2
    timings = an.compare_timings(day2, day1)
    assert timings["phase"].to_list()[-1] == "total"
    assert timings.row(-1)[1:3] == (day2.manifest["timings"]["total"], day1.manifest["timings"]["total"])
    same = an.compare_counts(day2, day2)
    assert same.columns[1:3] == [day2.run_id, f"{day2.run_id} (other)"] and set(same["change"]) == {0}


def test_missing_and_empty_parts_give_empty_frames(runs, tmp_path):
    # Day 1 cancelled nothing: no cascade.parquet; its cancelled-on-arrival NF is not a cancellation.
    day1 = runs["day1"]
    assert not (day1.path / "cascade.parquet").exists()
    assert an.cancellation_cascade(day1).is_empty() and an.cascade_totals(day1).is_empty()
    for shaped in (an.status_transitions, an.drift_fields, an.drift_deltas, an.drift_totals, an.top_drift_nfs,
                   an.rejected_by_reason, an.rejected_examples, an.reactivated_nfs):  # fmt: skip
        assert shaped(day1).is_empty(), shaped.__name__
    # A failed run's directory: a manifest without counts or timings, and no Parquet at all.
    failed = tmp_path / "20260101T000000Z-failed"
    failed.mkdir()
    (failed / "manifest.json").write_text(json.dumps({"run_id": failed.name, "status": "failed", "error": "boom"}))
    run = an.load_run(failed)
    assert dict(an.part_counts(run).rows()) == dict.fromkeys(an.CHANGESET_PARTS, 0)
    assert an.phase_timings(run).is_empty()
    assert dict(an.overview(run).rows())["error"] == "boom"
    every = [an.inserts_by_day, an.inserts_by_uf, an.top_customers, an.top_products, an.status_transitions,
             an.cancellation_cascade, an.cascade_totals, an.reactivated_nfs, an.nfs_to_reprocess, an.new_products,
             an.drift_fields, an.drift_deltas, an.drift_totals, an.top_drift_nfs, an.rejected_by_reason,
             an.rejected_examples]  # fmt: skip
    for shaped in every:
        assert shaped(run).is_empty(), shaped.__name__
    assert an.compare_counts(run, day1).row(0) == ("inserts", 0, 30, -30)
    # Empty Parquet files (what a run with nothing to do writes) read the same way.
    copy = tmp_path / day1.path.name
    shutil.copytree(day1.path, copy)
    pl.DataFrame(schema=an.PART_SCHEMAS["inserts"]).write_parquet(copy / "inserts.parquet")
    assert an.top_customers(an.load_run(copy)).is_empty()


def _fake_run(root: Path, name: str, started: str) -> Path:
    run = root / name
    run.mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"run_id": name, "started_at": started, "status": "success"}))
    return run


def test_resolve_run_dir_and_compare_dir(tmp_path, monkeypatch):
    # Same second, random suffixes: the name sorts one way, the start time the other.
    older = _fake_run(tmp_path / "runs", "20260105T100000Z-ffffff", "2026-01-05T10:00:00.100000")
    newer = _fake_run(tmp_path / "runs", "20260105T100000Z-000000", "2026-01-05T10:00:00.900000")
    (tmp_path / "runs" / "not-a-run").mkdir()
    assert an.run_dirs(tmp_path / "runs") == [older, newer]
    monkeypatch.chdir(tmp_path)
    assert an.resolve_run_dir(env={}).resolve() == newer  # ./runs
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    assert an.resolve_run_dir(env={}).resolve() == newer  # ../runs, as when opened from notebooks/
    assert an.resolve_run_dir(older, env={}) == older
    assert an.resolve_run_dir(env={an.RUN_ENV: str(older)}) == older
    assert an.resolve_run_dir(tmp_path / "runs", env={}) == newer  # a folder of runs: its latest
    assert an.resolve_compare_dir(None, newer, env={}) == older
    assert an.resolve_compare_dir(None, older, env={}) is None
    assert an.resolve_compare_dir(None, newer, env={an.COMPARE_ENV: str(newer)}) == newer
    with pytest.raises(FileNotFoundError, match="faturamento-batch demo"):
        an.resolve_run_dir(env={}, search=(tmp_path / "nothing",))
    with pytest.raises(FileNotFoundError, match="neither a run directory"):
        an.resolve_run_dir(tmp_path / "runs" / "not-a-run", env={})


def test_show_and_bar(runs, capsys):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    day2 = runs["day2"]
    an.show(an.drift_fields(runs["day1"]), "no drift in this run")
    assert capsys.readouterr().out.strip() == "(no drift in this run)"
    an.show(an.status_transitions(day2))
    assert "Lançado → Cancelado" in capsys.readouterr().out

    ax = an.bar(an.cascade_totals(day2), "touched", "rows", title="cascade", horizontal=True)
    assert [round(p.get_width()) for p in ax.patches] == [3, 1, 1, 0, 2]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["stock_movements", "shipment_items", "separations",
                                                             "inconsistencies", "consolidations"]  # fmt: skip
    counts = an.compare_counts(day2, runs["day1"])
    ax = an.bar(counts, "part", counts.columns[1:3])
    assert len(ax.patches) == 2 * len(an.CHANGESET_PARTS)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == counts.columns[1:3]
    ax = an.bar(an.drift_fields(runs["day1"]), "field", "lines", empty="no drift")
    assert not ax.patches and [t.get_text() for t in ax.texts] == ["no drift"]
    plt.close("all")
