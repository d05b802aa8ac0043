"""`faturamento_batch.analysis.stock` on real runs: syncs of the stock fixture scenarios against
the real PostgreSQL (a lot, no lot, a divergence, justifications, a resolved inconsistency),
a dry run, and a run without the stage. Expected values follow from DESIGN §9 and the
fixtures' data (see their scenario.json descriptions)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from faturamento_batch import analysis as an

from .conftest import FIXTURES, clone_template, drop_database
from .dbutil import load_rows
from .test_analysis import sync


def scenario_runs(url: str, runs: Path, name: str, *args: str) -> list[Path]:
    """Load fixture `name`'s database before, then sync its dataset once per run of the scenario."""
    scenario = FIXTURES / name
    spec = json.loads((scenario / "scenario.json").read_text())
    load_rows(url, spec.get("before", {}))
    out = []
    for run in spec["runs"]:
        load_rows(url, run.get("load", {}))
        code, run_dir = sync(url, runs, scenario / run.get("dataset", "odoo"), *run.get("args", []), *args)
        assert code == 0
        out.append(run_dir)
    return out


@pytest.fixture(scope="module")
def runs(pg_admin_url, template_url, tmp_path_factory) -> dict[str, an.Run]:
    """mixed (lot / no lot / divergence), justifications, relinked (run 2 of a SEM_LOTE NF), dry, no_stock."""
    root = tmp_path_factory.mktemp("analysis_stock")
    names = ("stock_second_run_nothing", "stock_justifications", "stock_sem_lote_then_lot")
    urls = [clone_template(pg_admin_url) for _ in range(5)]
    try:
        mixed = scenario_runs(urls[0], root / "mixed", names[0])[0]
        justified = scenario_runs(urls[1], root / "justified", names[1])[0]
        relinked = scenario_runs(urls[2], root / "relinked", names[2])[1]
        dry = scenario_runs(urls[3], root / "dry", names[0], "--dry-run")[0]
        no_stock = scenario_runs(urls[4], root / "no_stock", names[0], "--no-stock")[0]
    finally:
        for url in urls:
            drop_database(pg_admin_url, url)
    paths = {"mixed": mixed, "justified": justified, "relinked": relinked, "dry": dry, "no_stock": no_stock}
    return {k: an.load_run(v) for k, v in paths.items()}


def test_lot_outcomes_list_every_outcome(runs):
    assert an.lot_outcomes(runs["mixed"]).rows() == [
        ("lot: already linked", 0),
        ("lot: chosen among candidates", 1),  # 8601 → LV
        ("no lot: NF_SEM_SEPARACAO", 1),  # 8602: nothing picked for PEDW
        ("no lot: DIVERGENCIA_NF_EMBARQUE", 1),  # 8603: on an item of order PEDY
    ]
    assert dict(an.lot_outcomes(runs["relinked"]).rows())["lot: chosen among candidates"] == 1


def test_nfs_without_lot_say_why(runs):
    got = an.nfs_without_lot(runs["mixed"])
    assert got.columns == ["numero_nf", "origem", "tipo", "divergent_pedido", "divergent_embarque_id"]
    assert got.rows() == [
        ("8602", "PEDW", "NF_SEM_SEPARACAO", None, None),
        ("8603", "PEDX", "DIVERGENCIA_NF_EMBARQUE", "PEDY", 170),
    ]


def test_divergences_by_product(runs):
    got = an.divergences_by_product(runs["justified"])
    # §10: only A2 (separated 2 / invoiced 3: above, saldo 0); A3 and A4 were only separated.
    assert got.columns[-2:] == ["invoiced_above", "separated_above"]
    assert got.rows() == [("A2", 1, 1, 2.0, 3.0, 0.0, 1, 0)]
    assert an.divergences_by_product(runs["mixed"]).rows() == [("A1", 1, 1, 3.0, 2.0, 1.0, 0, 1)]


def test_justification_rows(runs):
    got = an.justification_rows(runs["justified"])
    assert got.select("numero_nf", "separacao_lote_id", "cod_produto", "qtd_saldo", "descricao_detalhada").rows() == [
        ("8301", "LP", "A2", 0.0, "Divergência detectada: Score 66.67%"),
    ]
    assert got.schema["qtd_separada"] == pl.Float64


def test_inconsistency_actions(runs):
    assert an.inconsistency_actions(runs["mixed"]).rows() == [
        ("open", "DIVERGENCIA_NF_EMBARQUE", 1, 1),
        ("open", "NF_SEM_SEPARACAO", 1, 1),
    ]
    assert an.inconsistency_actions(runs["relinked"]).rows() == [("resolve", "NF_SEM_SEPARACAO", 1, 1)]


def test_stock_totals_planned_and_written(runs):
    got = {m: (p, w) for m, p, w in an.stock_totals(runs["mixed"]).rows()}
    assert got["nfs_processed"] == (3, None) and got["nfs_with_lot"] == (1, None)
    assert got["nfs_without_lot"] == (2, None) and got["nfs_divergent"] == (1, None)
    assert got["movements_created"] == (3, 3) and got["movements_completed"] == (0, 0)
    assert got["items_linked"] == (1, 1) and got["separations_synced"] == (1, 1)
    assert got["inconsistencies_opened"] == (2, 2) and got["justifications"] == (1, 1)
    relinked = {m: (p, w) for m, p, w in an.stock_totals(runs["relinked"]).rows()}
    assert relinked["movements_completed"] == (2, 2) and relinked["movements_created"] == (0, 0)
    assert relinked["inconsistencies_resolved"] == (1, 1)
    assert an.stock_left_alone(runs["mixed"]).is_empty()


def test_a_dry_run_plans_and_writes_nothing(runs):
    got = {m: (p, w) for m, p, w in an.stock_totals(runs["dry"]).rows()}
    assert got["movements_created"] == (3, None) and got["justifications"] == (1, None)
    assert an.lot_outcomes(runs["dry"]).get_column("nfs").to_list() == [0, 1, 1, 1]


def test_a_run_without_the_stage_reads_as_empty(runs):
    run = runs["no_stock"]
    for frame in (an.stock_totals(run), an.lot_outcomes(run), an.nfs_without_lot(run), an.divergences_by_product(run),
                  an.justification_rows(run), an.inconsistency_actions(run), an.stock_left_alone(run)):  # fmt: skip
        assert frame.is_empty()
