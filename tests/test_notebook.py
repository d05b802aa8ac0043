"""notebooks/sync_diff_analysis.ipynb: committed without outputs, and executed headless
(nbclient, the python3 kernel of this interpreter) on runs made by real syncs; any cell
error fails the test, and the sections must show the run's values."""

from __future__ import annotations

import json

# Not importorskip: .ci/run installs the `notebook` extra, and a missing one must fail there, not skip.
import nbclient
import nbformat
import pytest

from .conftest import ROOT, clone_template, drop_database
from .test_analysis import SMOKE, make_scenario, sync
from .test_analysis_stock import scenario_runs

NOTEBOOK = ROOT / "notebooks" / "sync_diff_analysis.ipynb"


def _execute(cwd) -> dict[str, str]:
    """Run every cell with `cwd` as the working directory → {cell id: the text of its outputs}.

    The kernel is this interpreter's own ipykernel (not whatever `python3`
    kernelspec a user directory holds), so the package under test is the one imported.
    """
    from jupyter_client import AsyncKernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    nb = nbformat.read(NOTEBOOK, as_version=4)
    km = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))
    client = nbclient.NotebookClient(nb, km=km, timeout=120, resources={"metadata": {"path": str(cwd)}})
    try:
        client.execute(cleanup_kc=True)  # a kernel manager passed in is not shut down otherwise
    except nbclient.exceptions.CellExecutionError as exc:  # the failing cell and its traceback
        pytest.fail(f"a notebook cell failed:\n{exc}")
    texts = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        assert not [o for o in cell.outputs if o.output_type == "error"], cell.source
        parts = []
        for out in cell.outputs:
            if out.output_type == "stream":
                parts.append(out.text)
            elif "data" in out:
                data = out["data"]
                parts.append(data.get("text/markdown") or data.get("text/plain", ""))
                parts.append("[image]" if "image/png" in data else "")
        texts[cell.id] = "\n".join(parts)
    return texts


def _cell(texts: dict[str, str], marker: str) -> str:
    """The output of the one code cell whose source contains `marker`."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    ids = [c.id for c in nb.cells if c.cell_type == "code" and marker in c.source]
    assert len(ids) == 1, marker
    return texts[ids[0]]


def test_notebook_is_committed_without_outputs():
    raw = json.loads(NOTEBOOK.read_text())
    code = [c for c in raw["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    assert raw["metadata"]["kernelspec"]["name"] == "python3"
    parameters = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(parameters) == 1 and "RUN_DIR = None" in "".join(parameters[0]["source"])


def test_notebook_runs_on_the_latest_run_and_fills_every_section(pg_admin_url, template_url, tmp_path, monkeypatch):
    url = clone_template(pg_admin_url)
    try:
        day1, day2 = make_scenario(url, tmp_path)  # runs land in tmp_path/runs, as after the demo
    finally:
        drop_database(pg_admin_url, url)
    monkeypatch.delenv("FATURAMENTO_RUN_DIR", raising=False)
    monkeypatch.delenv("FATURAMENTO_COMPARE_RUN_DIR", raising=False)
    texts = _execute(tmp_path)
    everything = "\n".join(texts.values())
    assert f"run {day2.name} (success)" in everything and f"compared with {day1.name}" in everything
    assert everything.count("[image]") == 8  # every chart was drawn

    summary = _cell(texts, "an.overview(run)")
    assert "incremental" in summary and "2026-01-05T09:50:00" in summary and "inserts" in summary
    inserts = _cell(texts, "an.inserts_by_day(run)")
    assert "2026-01-05" in inserts and "126.0" in inserts and "SP" in inserts
    top = _cell(texts, "an.top_customers(run, TOP)")
    assert "Cliente 12" in top and "P00030" in top
    status = _cell(texts, "an.status_transitions(run)")
    assert "Lançado → Cancelado" in status and "Cancelado → Lançado" in status
    cascade_row = next(line for line in status.splitlines() if "100001" in line)
    assert [c.strip() for c in cascade_row.strip("│ ").split("┆")] == ["100001", "2", "1", "0", "0", "1"]
    reprocess = _cell(texts, "an.nfs_to_reprocess(run)")
    assert "reactivated" in reprocess and "100011" in reprocess and "P00028" in reprocess
    drift = _cell(texts, "an.drift_fields(run)")
    assert "preco_produto_faturado" in drift and "13.5" in drift and "drift is reported only" in drift
    rejected = _cell(texts, "an.rejected_by_reason(run)")
    assert "quantity_not_positive" in rejected and "0.0833" in rejected
    comparison = _cell(texts, "an.compare_counts(run, other)")
    assert day1.name in comparison and "-24" in comparison  # 6 inserts against 30


def test_notebook_says_what_a_run_did_not_have(pg_admin_url, template_url, tmp_path, monkeypatch):
    url = clone_template(pg_admin_url)
    try:
        code, smoke = sync(url, tmp_path / "elsewhere" / "runs", SMOKE, "--max-reject-ratio", "1", "--no-stock")
        assert code == 0
    finally:
        drop_database(pg_admin_url, url)
    monkeypatch.setenv("FATURAMENTO_RUN_DIR", str(smoke))
    monkeypatch.delenv("FATURAMENTO_COMPARE_RUN_DIR", raising=False)
    texts = _execute(tmp_path)  # no runs/ here: the variable names the run
    everything = "\n".join(texts.values())
    assert f"run {smoke.name} (success)" in everything
    for sentence in ("no status changes in this run", "no NF was cancelled in this run",
                     "no justification in this run",
                     "no NF was reactivated in this run", "no drift in this run",
                     "only one run: nothing to compare with"):  # fmt: skip
        assert sentence in everything, sentence
    assert "GO" in _cell(texts, "an.inserts_by_day(run)")
    assert "no_nf_number" in _cell(texts, "an.rejected_by_reason(run)")


def test_notebook_stock_section_on_a_run_with_lots_divergences_and_justifications(pg_admin_url, template_url, tmp_path, monkeypatch):
    url = clone_template(pg_admin_url)
    try:
        (run,) = scenario_runs(url, tmp_path / "runs", "stock_second_run_nothing")[:1]
    finally:
        drop_database(pg_admin_url, url)
    monkeypatch.setenv("FATURAMENTO_RUN_DIR", str(run))
    monkeypatch.delenv("FATURAMENTO_COMPARE_RUN_DIR", raising=False)
    texts = _execute(tmp_path)
    lots = _cell(texts, "an.lot_outcomes(run)")
    # 8601 took lot LV; 8602 has nothing picked; 8603 sits on order PEDY's item (shipment 170).
    assert "lot: chosen among candidates" in lots and "no lot: DIVERGENCIA_NF_EMBARQUE" in lots
    assert "8602" in lots and "8603" in lots and "PEDY" in lots and "170" in lots
    assert "movements_created" in lots and "nobody changed the rows" in lots
    divergences = _cell(texts, "an.divergences_by_product(run)")
    assert "A1" in divergences and "8601" in divergences and "LV" in divergences and "Divergênc" in divergences
    assert "DIVERGENCIA_NF_EMBARQUE" in divergences and "[image]" in divergences
