"""Odoo records → raw frames: false is null, the word "false" is text, links split in two."""

from __future__ import annotations

import json

import pytest

from faturamento_batch.errors import OdooPermanentError
from faturamento_batch.odoo.frames import frame_from_json, raw_schema, records_to_frame

MOVE = "account.move"
LINE = "account.move.line"


def test_false_is_null_but_the_word_false_is_text():
    recs = [
        {"id": 1, "name": "false", "invoice_user_id": [3, "Ana"], "l10n_br_numero_nota_fiscal": 12345, "date": "2026-01-02"},
        {"id": 2, "name": False, "invoice_user_id": False, "l10n_br_numero_nota_fiscal": " 0001 ", "date": False},
    ]
    frame = records_to_frame(MOVE, recs)
    assert frame.schema == raw_schema(MOVE)
    assert frame.get_column("name").to_list() == ["false", None]
    assert frame.get_column("invoice_user_id").to_list() == [3, None]
    assert frame.get_column("invoice_user_id__name").to_list() == ["Ana", None]
    assert frame.get_column("l10n_br_numero_nota_fiscal").to_list() == ["12345", " 0001 "]
    assert frame.get_column("date").to_list() == ["2026-01-02", None]


def test_json_rpc_envelope_and_bare_list_give_the_same_frame():
    recs = [{"id": 7, "move_id": [1, "VND/1"], "quantity": 2.5, "price_unit": 0, "product_id": False,
             "write_date": "2026-01-05 10:00:00"}]  # fmt: skip
    a = frame_from_json(LINE, json.dumps({"jsonrpc": "2.0", "id": 1, "result": recs}).encode(), key="result")
    b = frame_from_json(LINE, json.dumps(recs).encode())
    assert a.equals(b)
    assert a.row(0, named=True)["move_id"] == 1 and a.row(0, named=True)["product_id"] is None
    assert a.row(0, named=True)["quantity"] == 2.5


def test_nan_and_garbage_numbers_do_not_raise():
    frame = records_to_frame(LINE, [{"id": 1, "quantity": float("nan"), "price_unit": "x", "price_total": False}])
    row = frame.row(0, named=True)
    assert row["quantity"] != row["quantity"]  # NaN survives, transform rejects it
    assert row["price_unit"] is None and row["price_total"] is None


def test_a_broken_payload_is_a_named_error():
    with pytest.raises(OdooPermanentError, match="account.move"):
        frame_from_json(MOVE, b'[{"id": 1, "name": "cut')


def test_empty_results():
    assert records_to_frame(MOVE, []).height == 0
    assert frame_from_json(MOVE, b"[]").height == 0
    assert frame_from_json(MOVE, b'{"jsonrpc": "2.0", "id": 1, "result": []}', key="result").height == 0
