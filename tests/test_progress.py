"""Progress of a long run: a bar on a terminal, one log record per chunk elsewhere (JSON with
`--log-format json`), and nothing for a run of one chunk."""

from __future__ import annotations

import io
import json
import logging

import pytest

from faturamento_batch import progress
from faturamento_batch.cli import main
from faturamento_batch.generator import generate_dataset
from faturamento_batch.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _reset():
    yield
    progress.configure(False)


def test_a_bar_redrawn_in_place_on_a_terminal():
    stream = _Terminal()
    progress.configure(True, stream)
    p = Progress.start(4, 1000)
    for lines in (250, 250, 300, 200):
        p.chunk(lines)
    p.done()
    out = stream.getvalue()
    frames = out.split("\r")[1:]
    assert len(frames) == 5  # four chunks and the final redraw
    assert "1/4 chunks" in frames[0] and "250/1,000 lines" in frames[0]
    assert f"[{'#' * (progress.BAR_WIDTH // 4)}{'.' * (progress.BAR_WIDTH * 3 // 4)}]" in frames[0]
    assert "4/4 chunks" in frames[-1] and "1,000/1,000 lines" in frames[-1] and f"[{'#' * progress.BAR_WIDTH}]" in frames[-1]
    assert out.endswith("\n") and out.count("\n") == 1  # one line, ended once


def test_one_log_record_per_chunk_elsewhere(caplog):
    progress.configure(False)
    caplog.set_level(logging.INFO, logger="faturamento_batch.progress")
    p = Progress.start(3, None)
    for lines in (10, 20, 5):
        p.chunk(lines)
    p.done()
    records = [r for r in caplog.records if r.name == "faturamento_batch.progress"]
    assert [r.fields["chunk"] for r in records] == [1, 2, 3]
    assert [r.fields["lines"] for r in records] == [10, 30, 35]
    assert [r.fields["chunk_lines"] for r in records] == [10, 20, 5]
    assert records[-1].fields["eta_seconds"] == 0  # by chunks when the line total is unknown
    assert records[0].fields["total_lines"] is None and records[0].fields["chunks"] == 3
    assert "chunk 2/3" in records[1].getMessage()


def test_eta_by_lines_when_the_total_is_known():
    p = Progress(10, 1000, "full run", None)
    p.started -= 2.0  # two seconds in
    p.chunk(100)
    # 100 lines in ~2 s: 900 more take ~18 s (not 9 chunks × 2 s).
    assert 17 <= p.eta() <= 18.5


def test_one_chunk_is_not_a_long_run(caplog):
    stream = _Terminal()
    progress.configure(True, stream)
    p = Progress.start(1, 10)
    p.chunk(10)
    p.done()
    assert stream.getvalue() == ""


def test_track_reports_as_items_are_taken_and_ends_the_bar_on_failure():
    stream = _Terminal()
    progress.configure(True, stream)

    def items():
        yield [1, 2]
        yield [3]
        raise RuntimeError("the source broke")

    with pytest.raises(RuntimeError):
        for _ in Progress.start(3).track(items(), len):
            pass
    out = stream.getvalue()
    assert "2/3 chunks" in out and "3 lines" in out and out.endswith("\n")


@pytest.mark.parametrize(("fmt", "tty", "bar"), [("text", True, True), ("text", False, False), ("json", True, False)])
def test_the_bar_only_for_text_logs_on_a_terminal(fmt, tty, bar):
    stream = _Terminal() if tty else io.StringIO()
    assert progress.wants_bar(fmt, stream) is bar


# -- through the command -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("ds") / "dataset"
    generate_dataset(path, 3_000, seed=5)
    return path


def _sync(db_url, tmp_path, dataset, *extra) -> int:
    return main(["sync", "--full", "--source", str(dataset), "--database-url", db_url, "--chunk-size", "400",
                 "--artifacts-dir", str(tmp_path / "runs"), "--state-dir", str(tmp_path / "state"), *extra])  # fmt: skip


def test_a_full_run_logs_each_chunk_as_json(db_url, tmp_path, dataset, capsys):
    assert _sync(db_url, tmp_path, dataset, "--log-format", "json") == 0
    entries = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    chunks = [e for e in entries if e.get("event") == "progress"]
    assert len(chunks) >= 3
    n = chunks[0]["chunks"]
    assert [e["chunk"] for e in chunks] == list(range(1, n + 1))
    assert chunks[-1]["lines"] == chunks[-1]["total_lines"] == sum(e["chunk_lines"] for e in chunks)
    assert all(e["logger"] == "faturamento_batch.progress" and e["level"] == "info" for e in chunks)
    manifest = json.loads(next((tmp_path / "runs").rglob("manifest.json")).read_text())
    assert chunks[-1]["lines"] == manifest["counts"]["odoo_lines"]


def test_a_full_run_on_a_terminal_draws_a_bar(db_url, tmp_path, dataset, monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert _sync(db_url, tmp_path, dataset) == 0
    out = terminal.getvalue()
    bar = [line for line in out.split("\n") if "\r" in line]
    assert len(bar) == 1  # one line, redrawn per chunk
    assert "chunks" in bar[0] and "lines/s" in bar[0]
    assert "\"event\"" not in out  # no JSON progress objects on a terminal
