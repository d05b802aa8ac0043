"""A dataset file read in blocks of whole records, and the dataset source built on it.

The blocks must hold exactly the file's records, in order, whatever the block
size and whatever the strings hold (braces, brackets, quotes, backslashes,
non-ASCII); a dataset read in small blocks, or with its records out of order,
must give the same extraction as the file parsed whole.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from faturamento_batch.errors import ConfigError, OdooPermanentError
from faturamento_batch.generator import generate_dataset
from faturamento_batch.odoo import json_blocks
from faturamento_batch.odoo.dataset import DatasetSource, in_domain_lines, load_frames, related_subset
from faturamento_batch.odoo.fields import LINE, MOVE, dataset_file
from faturamento_batch.odoo.frames import raw_schema
from faturamento_batch.odoo.json_blocks import last_record_end, record_blocks

hostile = st.one_of(st.text(max_size=12), st.sampled_from(['}', '{', '"}', '\\', '\\"', '\\\\"}', '],[', '{"a": 1}', "ção", "\u2028"]))
records = st.lists(
    st.fixed_dictionaries({"id": st.integers(1, 10**9), "name": hostile,
                           "move_id": st.one_of(st.just(False), st.tuples(st.integers(1, 99), hostile).map(list))}),
    max_size=8,
)  # fmt: skip


def _decode(blocks) -> list:
    return [r for block in blocks for r in json.loads(block)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(recs=records, block=st.integers(1, 64), indent=st.sampled_from([None, 1]), ascii_only=st.booleans())
def test_blocks_hold_exactly_the_records_in_order(tmp_path, recs, block, indent, ascii_only):
    file = tmp_path / "model.json"
    file.write_text(json.dumps(recs, indent=indent, ensure_ascii=ascii_only), encoding="utf-8")
    assert _decode(record_blocks(file, block)) == recs


def test_a_block_never_splits_a_record(tmp_path):
    recs = [{"id": i, "name": "x" * (i % 7) + '"}{\\'} for i in range(1, 400)]
    file = tmp_path / "model.json"
    file.write_text(json.dumps(recs))
    blocks = list(record_blocks(file, 256))
    assert len(blocks) > 10  # really cut into many blocks
    assert all(isinstance(json.loads(b), list) for b in blocks)
    assert _decode(blocks) == recs


@pytest.mark.parametrize("text", ["[]", "  [ ]\n", "\ufeff[]"])
def test_an_empty_list_gives_no_block(tmp_path, text):
    file = tmp_path / "model.json"
    file.write_text(text, encoding="utf-8")
    assert list(record_blocks(file, 4)) == []


@pytest.mark.parametrize("text", ['{"id": 1}', "", "null", '[{"id": 1}, {"id": 2', '[{"id": 1}'])
def test_not_a_whole_json_list_is_a_clear_error(tmp_path, text):
    file = tmp_path / "model.json"
    file.write_text(text)
    with pytest.raises(OdooPermanentError, match="model.json"):
        list(record_blocks(file, 8))


def test_record_end_ignores_braces_inside_strings():
    assert last_record_end(b'{"a": "}"}, {"b": "\\"}"') == len(b'{"a": "}"}')
    assert last_record_end(b'{"a": "\\\\"}') == len(b'{"a": "\\\\"}')  # an escaped backslash, then a real quote
    assert last_record_end(b'{"a": [1, "x"]') == 0


# -- the dataset source over streamed files ------------------------------------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ds") / "dataset"
    generate_dataset(path, 3000, seed=7)
    return path


def _whole(path: Path, since=None) -> dict[str, pl.DataFrame]:
    """The extraction with every file parsed whole, as the source used to (the reference)."""
    frames = load_frames(path)
    return related_subset(frames, in_domain_lines(frames, since))


def _same(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> None:
    assert set(a) == set(b)
    for model in a:
        assert_frame_equal(a[model].sort("id"), b[model].sort("id"))


def test_small_blocks_give_the_same_extraction(dataset, monkeypatch):
    expected = _whole(dataset)
    monkeypatch.setattr(json_blocks, "BLOCK_BYTES", 4096)  # hundreds of blocks per file
    batch = DatasetSource(dataset).extract(None)
    _same(expected, batch.frames)
    assert batch.frames[LINE].height > 1000


def test_chunks_cover_the_extraction_with_whole_moves(dataset, monkeypatch):
    monkeypatch.setattr(json_blocks, "BLOCK_BYTES", 8192)
    expected = _whole(dataset)
    extraction = DatasetSource(dataset).extract_chunks(500)
    chunks = list(extraction.chunks)
    assert extraction.n_chunks == len(chunks) > 3
    moves = [set(c.frames[LINE].get_column("move_id").unique().to_list()) for c in chunks]
    assert all(a.isdisjoint(b) for i, a in enumerate(moves) for b in moves[i + 1 :])  # no NF in two chunks
    lines = pl.concat([c.frames[LINE] for c in chunks])
    assert_frame_equal(lines.sort("id"), expected[LINE].sort("id"))
    assert extraction.stats.records[LINE] == expected[LINE].height
    assert set(extraction.moves_index.get_column("move_id").to_list()) == set(expected[LINE]["move_id"].to_list())


def test_records_out_of_order_give_the_same_chunks(dataset, tmp_path):
    shuffled = tmp_path / "shuffled"
    shutil.copytree(dataset, shuffled)
    for model in (LINE, MOVE):
        recs = json.loads((dataset / dataset_file(model)).read_text())
        random.Random(3).shuffle(recs)
        (shuffled / dataset_file(model)).write_text(json.dumps(recs))
    a = list(DatasetSource(dataset).extract_chunks(700).chunks)
    b = list(DatasetSource(shuffled).extract_chunks(700).chunks)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        _same(x.frames, y.frames)


def test_a_missing_model_file_is_an_empty_model(dataset, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(dataset, partial)
    (partial / dataset_file("res.users")).unlink()
    batch = DatasetSource(partial).extract(None)
    assert batch.frames["res.users"].height == 0
    assert batch.frames["res.users"].schema == raw_schema("res.users")


def test_not_a_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not a directory"):
        DatasetSource(tmp_path / "nope").extract(None)


def test_the_staging_directory_is_removed_after_the_last_chunk(dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    extraction = DatasetSource(dataset).extract_chunks(1000)
    assert any(tmp_path.iterdir())
    for _ in extraction.chunks:
        pass
    assert not any(tmp_path.iterdir())
