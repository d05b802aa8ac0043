"""`faturamento-batch runs list|show` on a real history: two committed runs in `sync_runs`,
a dry run and a failed run (these two only in their artifacts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faturamento_batch.cli import main

from .conftest import clone_template, drop_database
from .test_analysis import make_scenario, sync


@pytest.fixture(scope="module")
def history(pg_admin_url, template_url, tmp_path_factory):
    """url, runs folder and the four run dirs: day1, day2 (committed), dry (dry run), failed (too many rejects)."""
    root = tmp_path_factory.mktemp("runs")
    url = clone_template(pg_admin_url)
    day1, day2 = make_scenario(url, root)
    code, dry = sync(url, root / "runs", root / "day2", "--dry-run", "--max-reject-ratio", "1", "--no-stock")
    assert code == 0
    code, failed = sync(url, root / "runs", root / "day2", "--no-stock")  # 3 of 36 lines rejected > 5 %
    assert code == 1
    yield {"url": url, "runs": root / "runs", "day1": day1, "day2": day2, "dry": dry, "failed": failed}
    drop_database(pg_admin_url, url)


def _cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def _opts(h) -> list[str]:
    return ["--database-url", h["url"], "--artifacts-dir", str(h["runs"])]


def test_list_json_merges_sync_runs_and_artifact_only_runs(history, capsys):
    code, out = _cli(capsys, "runs", "list", "--json", *_opts(history))
    assert code == 0
    rows = json.loads(out)
    names = [history[k].name for k in ("failed", "dry", "day2", "day1")]
    assert [r["run_id"] for r in rows] == names  # newest first
    assert [r["status"] for r in rows] == ["failed", "dry_run", "success", "success"]
    assert [r["mode"] for r in rows] == ["incremental", "incremental", "incremental", "full"]
    assert [r["counts"]["inserts"] for r in rows] == [0, 0, 6, 30]
    assert [r["counts"]["cancellations"] for r in rows] == [0, 0, 2, 0]
    assert rows[2]["counts"]["drift"] == 27 and rows[2]["counts"]["rejected"] == 3
    assert rows[2]["cursor_from"] == "2026-01-05T09:50:00" and rows[2]["cursor_to"] == "2026-01-06T10:00:00"
    assert "rejected" in rows[0]["error"] and rows[2]["error"] is None
    assert all(r["seconds"] > 0 for r in rows)
    assert [Path(r["artifacts_dir"]).resolve() for r in rows] == [history[k].resolve() for k in ("failed", "dry", "day2", "day1")]
    code, out = _cli(capsys, "runs", "list", "--json", "--limit", "2", *_opts(history))
    assert [r["run_id"] for r in json.loads(out)] == names[:2]


def test_list_table_shows_when_mode_status_counts_and_duration(history, capsys):
    code, out = _cli(capsys, "runs", *_opts(history))  # `list` is the default action
    assert code == 0
    header, *lines = out.splitlines()
    assert header.split() == ["started", "(UTC)", "run", "id", "mode", "status", "inserts", "changed", "cancelled",
                              "reactivated", "drift", "products", "rejected", "seconds"]  # fmt: skip
    assert len(lines) == 4
    day2 = lines[2].split()
    assert day2[2:5] == [history["day2"].name, "incremental", "success"]
    assert day2[5:12] == ["6", "9", "2", "1", "27", "2", "3"]
    assert float(day2[12]) > 0
    assert lines[3].split()[2:6] == [history["day1"].name, "full", "success", "30"]


def test_show_prints_the_manifest_readably_with_the_artifacts(history, capsys):
    run = history["day2"]
    code, out = _cli(capsys, "runs", "show", run.name[:-1], *_opts(history))  # a unique prefix
    assert code == 0
    assert out.startswith(f"run {run.name}  incremental  success")
    assert "inserts 6 · status changes 9 · cancelled NFs 2 · reactivated NFs 1 · drift 27" in out
    assert "cursor 2026-01-05T10:00:00 → 2026-01-06T10:00:00" in out
    assert "cancellation cascade: " in out
    cascade = out.split("cancellation cascade: ")[1].splitlines()[0]
    assert sorted(cascade.split(" · ")) == ["embarque_itens 1", "movimentacao_estoque 3", "separacao 1"]
    assert "nfs_to_reprocess: 100003, 100011, 100012" in out
    assert f"parts in {run.resolve()}:" in out
    parts = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.endswith(".parquet")}
    assert parts["inserts"] == "6" and parts["drift"] == "27" and parts["cascade"] == "4"  # 4 (table, NF) pairs
    code, out = _cli(capsys, "runs", "show", *_opts(history))  # the latest: the failed run, with its error
    assert code == 0 and history["failed"].name in out and "error: " in out and "rejected" in out


def test_show_json_adds_where_the_artifacts_are(history, capsys):
    code, out = _cli(capsys, "runs", "show", history["dry"].name, "--json", *_opts(history))
    assert code == 0
    manifest = json.loads(out)
    assert manifest["status"] == "dry_run" and manifest["counts"]["drift"] == 27
    assert manifest["run_dir"] == str(history["dry"].resolve())


def test_show_finds_a_run_through_sync_runs_and_rejects_ambiguous_ids(history, capsys, tmp_path):
    # Run from elsewhere: not under --artifacts-dir, but sync_runs recorded where it went.
    elsewhere = ["--database-url", history["url"], "--artifacts-dir", str(tmp_path / "empty")]
    code, out = _cli(capsys, "runs", "show", history["day1"].name, *elsewhere)
    assert code == 0 and f"run {history['day1'].name}  full  success" in out
    assert main(["runs", "show", "no-such-run", *elsewhere]) == 2
    year = history["day1"].name[:4]  # every run id starts with it
    assert main(["runs", "show", year, *_opts(history)]) == 2
    assert "give more of the id" in capsys.readouterr().err
