"""The Prometheus metrics file: written after every run (also failed ones), atomically, in the
text format node_exporter's textfile collector reads — checked with prometheus_client's parser."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from faturamento_batch.artifacts import read_manifest
from faturamento_batch.cli import main
from faturamento_batch.metrics import HELP, PREFIX, render

from .builders import build_dataset
from .test_exit_codes import stopped_port


def parse(path: Path) -> dict[str, dict[tuple, float]]:
    """metric name → {sorted label items (without job) → value}; asserts HELP, TYPE and the job label."""
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(path.read_text()):
        assert family.type == "gauge" and family.documentation, family.name
        values = out.setdefault(family.name, {})
        for sample in family.samples:
            labels = dict(sample.labels)
            assert labels.pop("job") == "faturamento"
            values[tuple(sorted(labels.items()))] = sample.value
    return out


def latest_manifest(runs: Path) -> dict:
    return read_manifest(max(runs.iterdir(), key=lambda p: p.stat().st_mtime_ns))


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).replace(tzinfo=timezone.utc).timestamp()


def test_success_then_failures_then_success(db_url, tmp_path, monkeypatch):
    day1 = build_dataset(tmp_path / "day1", moves=10, cancelled=set())
    day2 = build_dataset(tmp_path / "day2", moves=12, cancelled={1, 2}, write_date="2026-01-06 10:00:00")
    prom = tmp_path / "textfile" / "faturamento.prom"
    runs = tmp_path / "runs"
    args = ["sync", "--database-url", db_url, "--artifacts-dir", str(runs), "--metrics-file", str(prom)]

    assert main([*args, "--source", str(day1)]) == 0
    first = latest_manifest(runs)
    m = parse(prom)
    assert set(m) == {f"{PREFIX}_{name}" for name in HELP}  # every metric documented, none unknown
    assert m[f"{PREFIX}_last_run_status"] == {(("status", "success"),): 1, (("status", "dry_run"),): 0,
                                              (("status", "failed"),): 0, (("status", "lock_held"),): 0}  # fmt: skip
    finished = epoch(first["finished_at"])
    assert abs(m[f"{PREFIX}_last_run_timestamp_seconds"][()] - finished) < 0.01
    assert m[f"{PREFIX}_last_success_timestamp_seconds"][()] == m[f"{PREFIX}_last_run_timestamp_seconds"][()]
    assert m[f"{PREFIX}_rows"][(("part", "inserts"),)] == first["counts"]["inserts"] == 30
    assert m[f"{PREFIX}_rows"][(("part", "consolidation"),)] == 10
    assert m[f"{PREFIX}_rows_written"][(("action", "insert"), ("table", "faturamento_produto"))] == 30
    assert m[f"{PREFIX}_rows_written"][(("action", "upsert"), ("table", "relatorio_faturamento_importado"))] == 10
    assert m[f"{PREFIX}_sql_statements"][()] == first["sql_statements"]["total"] > 0
    assert m[f"{PREFIX}_odoo_calls"][()] == first["odoo"]["total_calls"]
    assert m[f"{PREFIX}_peak_memory_bytes"][()] == round(first["peak_memory_mb"] * 1024 * 1024)
    phases = {dict(k)["phase"]: v for k, v in m[f"{PREFIX}_run_duration_seconds"].items()}
    assert phases == {k: v for k, v in first["timings"].items()} and "total" in phases and "write" in phases
    assert m[f"{PREFIX}_consecutive_failures"][()] == 0 and m[f"{PREFIX}_last_run_exit_code"][()] == 0

    # Two failed runs: the database is unreachable (75), configured through the environment this time.
    monkeypatch.setenv("FATURAMENTO_METRICS_FILE", str(prom))
    down = f"postgresql://fb@127.0.0.1:{stopped_port()}/faturamento"
    for n in (1, 2):
        assert main(["sync", "--database-url", down, "--artifacts-dir", str(runs), "--source", str(day2)]) == 75
        m = parse(prom)
        assert m[f"{PREFIX}_last_run_status"][(("status", "failed"),)] == 1
        assert m[f"{PREFIX}_last_run_status"][(("status", "success"),)] == 0
        assert m[f"{PREFIX}_last_success_timestamp_seconds"][()] == round(finished, 3)  # kept from the old file
        assert m[f"{PREFIX}_last_run_timestamp_seconds"][()] > finished
        assert m[f"{PREFIX}_consecutive_failures"][()] == n
        assert m[f"{PREFIX}_last_run_exit_code"][()] == 75
        assert f"{PREFIX}_rows_written" not in m or not m[f"{PREFIX}_rows_written"]  # nothing written
    # A run that fails after computing its ChangeSet (too many rejects: exit 1) reports its parts.
    broken = build_dataset(tmp_path / "broken", moves=10, lines_per_move=5, bad_quantity_every=5,
                           write_date="2026-01-06 10:00:00")  # fmt: skip
    assert main([*args, "--source", str(broken)]) == 1
    failed = latest_manifest(runs)
    m = parse(prom)
    assert m[f"{PREFIX}_consecutive_failures"][()] == 3 and m[f"{PREFIX}_last_run_exit_code"][()] == 1
    assert m[f"{PREFIX}_rows"][(("part", "rejected"),)] == failed["counts"]["rejected"] == 10
    assert m[f"{PREFIX}_sql_statements"][()] == failed["sql_statements"]["total"] > 0
    assert m[f"{PREFIX}_last_success_timestamp_seconds"][()] == round(finished, 3)

    assert main([*args, "--source", str(day2)]) == 0
    second = latest_manifest(runs)
    m = parse(prom)
    assert m[f"{PREFIX}_last_success_timestamp_seconds"][()] == round(epoch(second["finished_at"]), 3) > finished
    assert m[f"{PREFIX}_consecutive_failures"][()] == 0
    assert m[f"{PREFIX}_rows"][(("part", "cancellations"),)] == 2
    assert m[f"{PREFIX}_rows_written"][(("action", "update"), ("table", "faturamento_produto"))] == 6


def test_the_file_is_replaced_atomically(db_url, tmp_path):
    ds = build_dataset(tmp_path / "odoo", moves=2)
    prom = tmp_path / "faturamento.prom"
    prom.write_text("old content\n")
    reader = prom.open()  # a collector in the middle of reading the old file
    before = prom.stat().st_ino
    assert main(["sync", "--source", str(ds), "--database-url", db_url, "--artifacts-dir", str(tmp_path / "runs"),
                 "--metrics-file", str(prom)]) == 0  # fmt: skip
    assert reader.read() == "old content\n"  # it still sees the whole old file, not a mix
    reader.close()
    assert prom.stat().st_ino != before  # a new file renamed over the old one, not rewritten in place
    assert sorted(os.listdir(tmp_path)) == ["faturamento.prom", "odoo", "runs"]  # no temp file left behind
    assert oct(prom.stat().st_mode & 0o777) == "0o644"
    assert parse(prom)[f"{PREFIX}_last_run_status"][(("status", "success"),)] == 1


def test_stock_parts_and_label_escaping():
    manifest = {
        "job": 'fat "a"\\b', "status": "success", "finished_at": "2026-01-05T10:00:00",
        "counts": {"inserts": 3}, "stock": {"nfs_processed": 4, "reads": 5, "counts": {"movements_created": 2, "items_linked": 1}},
        "written": {"embarque_itens.link": 1},
    }  # fmt: skip
    families = {f.name: f for f in text_string_to_metric_families(render(manifest))}
    rows = {s.labels["part"]: s.value for s in families[f"{PREFIX}_rows"].samples}
    assert rows == {"inserts": 3, "stock_nfs_processed": 4, "stock_movements_created": 2, "stock_items_linked": 1}
    assert {s.labels["job"] for s in families[f"{PREFIX}_rows"].samples} == {'fat "a"\\b'}
    written = families[f"{PREFIX}_rows_written"].samples[0]
    assert (written.labels["table"], written.labels["action"], written.value) == ("embarque_itens", "link", 1)
    assert families[f"{PREFIX}_last_run_timestamp_seconds"].samples[0].value == 1767607200.0


def test_the_new_writes_of_section_10_and_what_their_re_checks_left_alone():
    manifest = {
        "job": "j", "status": "success", "finished_at": "2026-01-05T10:00:00",
        "stock": {"counts": {"items_divergent": 1, "separations_faturado": 2}, "left_alone": {"embarque_itens": 1, "separacao": 0}},
        "written": {"embarque_itens.revalidate_validated": 2, "carteira_principal.balance": 3,
                    "faturamento_produto.revertida_spared": 1, "entregas_monitoradas.cancel": 1},
    }  # fmt: skip
    families = {f.name: f for f in text_string_to_metric_families(render(manifest))}
    written = {(s.labels["table"], s.labels["action"]): s.value for s in families[f"{PREFIX}_rows_written"].samples}
    assert written == {("embarque_itens", "revalidate_validated"): 2, ("carteira_principal", "balance"): 3,
                       ("faturamento_produto", "revertida_spared"): 1, ("entregas_monitoradas", "cancel"): 1}
    alone = {s.labels["table"]: s.value for s in families[f"{PREFIX}_rows_left_alone"].samples}
    assert alone == {"embarque_itens": 1, "separacao": 0}
    rows = {s.labels["part"]: s.value for s in families[f"{PREFIX}_rows"].samples}
    assert rows["stock_items_divergent"] == 1 and rows["stock_separations_faturado"] == 2
