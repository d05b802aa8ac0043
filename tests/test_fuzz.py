"""Fuzz: arbitrary Odoo-shaped records never make decoding, transform or diff raise
anything but the job's documented errors, and every in-domain line is either an
invoice line or a rejected line — nothing is silently lost."""

from __future__ import annotations

import json

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faturamento_batch.diff import compute_changeset
from faturamento_batch.errors import FaturamentoError
from faturamento_batch.odoo.dataset import in_domain_lines, related_subset
from faturamento_batch.odoo.fields import LINE, MODELS, MOVE
from faturamento_batch.odoo.frames import frame_from_json, records_to_frame
from faturamento_batch.schemas import EXISTING_CONSOLIDATION, EXISTING_LINE, EXISTING_PRODUCT, empty
from faturamento_batch.transform import transform

texts = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "   ", "false", "'; DROP TABLE x; --", "São Paulo (BR)", "Campinas (SP)", "[CIF] Cost",
                     "\x00", "a" * 400, "2026-13-45", "2026-01-05", "2026-01-05 10:00:00", "9999-12-31 23:59:59"]),
)  # fmt: skip
scalars = st.one_of(
    st.just(False), st.just(True), st.none(), st.integers(-(2**70), 2**70), texts,
    st.floats(allow_nan=True, allow_infinity=True),
)  # fmt: skip
small_ids = st.integers(min_value=1, max_value=6)
links = st.one_of(st.just(False), st.tuples(small_ids, texts).map(list), st.lists(scalars, max_size=3))


def _value(kind: str):
    if kind == "many2one":
        return st.one_of(links, scalars)
    if kind == "integer":
        return small_ids
    if kind == "float":
        return st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**20), 10**20), scalars)
    if kind == "selection":
        return st.one_of(st.sampled_from(["posted", "cancel", "draft", "venda", "bonificacao", "compra"]), scalars)
    return st.one_of(texts, scalars)


def _records(model: str):
    fields = MODELS[model]
    record = st.fixed_dictionaries({}, optional={f: _value(k) for f, k in fields.items()})
    return st.lists(record.map(lambda r: {**r, "id": r.get("id", 1)}), max_size=6)


def _line_domain_records():
    # Bias lines and moves towards the domain so transform has work to do.
    move = st.fixed_dictionaries(
        {"id": small_ids, "state": st.sampled_from(["posted", "cancel"]), "l10n_br_tipo_pedido": st.sampled_from(["venda", "bonificacao"])},
        optional={f: _value(k) for f, k in MODELS[MOVE].items() if f not in ("id", "state", "l10n_br_tipo_pedido")},
    )  # fmt: skip
    line = st.fixed_dictionaries(
        {"id": st.integers(1, 30), "move_id": st.tuples(small_ids, texts).map(list), "product_id": st.tuples(small_ids, texts).map(list)},
        optional={f: _value(k) for f, k in MODELS[LINE].items() if f not in ("id", "move_id", "product_id")},
    )  # fmt: skip
    return st.fixed_dictionaries({
        MOVE: st.lists(move, max_size=5),
        LINE: st.lists(line, max_size=12),
        **{m: _records(m) for m in MODELS if m not in (MOVE, LINE)},
    })  # fmt: skip


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_line_domain_records())
def test_transform_never_raises_and_loses_nothing(dataset):
    try:
        frames = {m: records_to_frame(m, recs) for m, recs in dataset.items()}
        lines = in_domain_lines(frames, None)
        batch = related_subset(frames, lines)
        result = transform(batch)
        cs = compute_changeset(result.lines, empty(EXISTING_LINE), empty(EXISTING_PRODUCT), empty(EXISTING_CONSOLIDATION),
                               full=True, rejected=result.rejected)  # fmt: skip
    except FaturamentoError:
        return
    distinct_lines = batch[LINE].select(pl.col("id")).unique().height
    assert result.in_domain == distinct_lines
    # Every distinct in-domain line is rejected or folded into exactly one invoice line.
    folded = int(result.lines.get_column("odoo_line_count").sum() or 0)
    assert folded + result.rejected.height == result.in_domain
    # What goes to the database satisfies its NOT NULL columns and widths.
    good = result.lines
    for col in ("numero_nf", "data_fatura", "cnpj_cliente", "nome_cliente", "cod_produto", "nome_produto",
                "qtd_produto_faturado", "preco_produto_faturado", "valor_produto_faturado", "status_nf"):  # fmt: skip
        assert good.get_column(col).null_count() == 0, col
    assert (good.get_column("numero_nf").str.len_chars() <= 20).all()
    if good.height:
        assert not any(good.select(pl.col(pl.String).str.contains("\x00", literal=True).any()).row(0))
    assert cs.inserts.height == good.height


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_decode_or_raise_a_named_error(payload):
    try:
        frame = frame_from_json(MOVE, payload)
    except FaturamentoError:
        return
    assert set(frame.columns) >= set(MODELS[MOVE])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(list(MODELS[LINE])), scalars), max_size=5))
def test_json_and_python_decoding_agree(records):
    records = [{**r, "id": i + 1} for i, r in enumerate(records)]
    try:
        via_python = records_to_frame(LINE, records)
        payload = json.dumps(records).encode()
        via_json = frame_from_json(LINE, payload)
    except (FaturamentoError, ValueError):
        return
    assert via_python.equals(via_json, null_equal=True)
