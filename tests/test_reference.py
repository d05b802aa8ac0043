"""The vectorized transform + diff agree with the row-by-row reference (tests/reference.py).

Hypothesis builds small Odoo datasets full of the nasty cases (false everywhere,
quantities ≤ 0, missing related records, repeated products in an NF, one NF
number on two moves, state names with and without accents and "(BR)",
"Cidade (UF)" names, cancelled/draft moves, lines outside the domain, long and
blank strings) and an existing database derived by perturbing the reference's
own output; both sides must give exactly the same rows (Decimals compared with
their scale). Three properties: transform alone; the diff alone, fed the
reference's lines; and transform → diff end to end. REFERENCE_EXAMPLES=3000
runs a longer hunt (about 8 minutes per property).
"""

from __future__ import annotations

import math
import os
from datetime import date, datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faturamento_batch import schemas
from faturamento_batch.diff import compute_changeset, downstream_lists
from faturamento_batch.odoo.dataset import in_domain_lines, related_subset
from faturamento_batch.odoo.frames import records_to_frame
from faturamento_batch.transform import transform

from .reference import (
    CONSOLIDATION_COLUMNS,
    DRIFT_COLUMNS,
    LINE,
    LINE_VALUE_COLUMNS,
    MOVE,
    MUNICIPIO,
    PARTNER,
    PRODUCT,
    STATE_NAMES,
    TEMPLATE,
    USER,
    consolidate,
    reference_changeset,
    reference_transform,
    uf_from_state_name,
)

MODELS = (LINE, MOVE, PARTNER, PRODUCT, TEMPLATE, MUNICIPIO, USER)
REJECTED_COLUMNS = ("odoo_line_id", "odoo_move_id", "numero_nf", "cod_produto", "reason")
NAN, INF = float("nan"), float("inf")

# --------------------------------------------------------------------------- pools of nasty values
# Good values come first and more than once: most lines pass the domain and the
# rules (so merges, drift and consolidation get exercised), and shrinking heads
# for the plain case.

WRITE_DATES = ["2026-01-05 10:00:00", "2026-01-06 09:00:00", "2026-01-07 00:00:00", False, "yesterday"]
SINCES = [None, None, datetime(2026, 1, 6), datetime(2026, 1, 5, 10), datetime(2026, 1, 8)]
DATES = ["2026-01-05", "2026-01-06"] * 4 + [False, "2026-02-30", "05/01/2026"]
TEXTS = [
    "Alpha", "Beta Ltda", "Alpha", "  padded  ", "   ", "", "\t\n ", "false", "A\x00B", "Ação Ç", "\u00a0nbsp\u00a0",
    "x" * 300, "ç" * 260, ("palavra " * 40).strip(), "a" * 254 + " b", "a" * 99 + "\tb", "\x00", "\u2003em\u2003",
    False, False,
]  # fmt: skip
NF_NUMBERS = [
    *["100", "101", "102"] * 4, " 100 ", "100\x00", 102, 100, False, "   ", "N" * 19 + " X",
    "9" * 25, "9" * 20 + "1", "ç" * 22,
]  # fmt: skip
CODES = ["P1", "P2", "P3"] * 4 + [" P1 ", "P1\x00", "p1", False, "  ", "C" * 49 + " D", "false", "É" * 60]
CNPJS = ["12.345.678/0001-90", "22.222.222/0001-22", " 11111111000191 ", "   ", False, "9" * 25]
STATE_POOL = [
    *STATE_NAMES, "Sao Paulo", "SAO PAULO", "são paulo (BR)", "Paraná (BR)", "PARA", "Goias", "espirito santo (br)",
    "SP", "sp", "Narnia", "BR", "XX (BR)", "   ", "Rio Grande Do Norte (BR)", "  Ceará  ",
]  # fmt: skip
MUNICIPIO_NAMES = [
    "Campinas (SP)", "Campinas", "Rio de Janeiro (rj)", "Campinas", "São Paulo (BR)", "(MG)", "  Recife  ",
    "Cidade(PR)", "Ilha (12)", "L" * 120 + " (SC)", "M" * 130, "   ", False, "false", "Belém (PA) ", "Açu (ÇA)",
]  # fmt: skip
INCOTERMS = [
    "[CIF] CIF", "FOB", "[ FOB ] Free On Board", "Cost and Freight, very long name", "[] EXW", "[   ] DAP",
    "  [DDP]  ", "[CPT", "X] [Y] Z", "[" + "I" * 30 + "]",
]  # fmt: skip
QUANTITIES = [1.0, 2.0, 2.5, 3.0, 1.0005, 2.675, 3.3333] * 4 + [0.0, -1.0, 0.0004, 0.0005, False, NAN, INF, 1e13, -INF]
PRICES = [10.25, 0.33335, 1.00005, 2.67505, 123.456789] * 3 + [0.0, -5.0, 99999999999.9999, 1e11, NAN, INF]
VALUES = [10.25, 25.5, 2.675, 1.115] * 3 + [0.0, 0.004, 0.005, -3.0, 1e13, NAN]
WEIGHTS = [1.5, 2.0005, 1.2345, 1.0, 12.0] * 3 + [0.0005, 0.0, -1.0, 0.0004, 1e12, NAN]
MOVE_STATES = ["posted"] * 5 + ["cancel"] * 3 + ["draft", False]
TIPOS = ["venda"] * 6 + ["bonificacao"] * 2 + [False, "devolucao"]


def pick(pool):
    return st.sampled_from(pool)


def with_floats(pool, lo, hi):
    return st.one_of(pick(pool), pick(pool), st.floats(lo, hi, allow_nan=False, allow_infinity=False))


def many2one(ids, names=TEXTS):
    """Mostly a link to an existing id; sometimes a dangling id (99) or false."""
    ref = pick([*ids, *ids, *ids, 99, False]) if ids else pick([99, False])
    return st.builds(lambda i, n: False if i is False else [i, n if isinstance(n, str) else "Nome"], ref, pick(names))


@st.composite
def odoo_datasets(draw):
    """A small Odoo dataset (records as search_read returns them) and an incremental `since`."""
    data: dict[str, list[dict]] = {m: [] for m in MODELS}
    n = {model: draw(st.integers(lo, hi)) for model, lo, hi in
         [(USER, 0, 3), (MUNICIPIO, 0, 3), (PARTNER, 1, 3), (TEMPLATE, 1, 4), (PRODUCT, 1, 4), (MOVE, 1, 4)]}  # fmt: skip
    ids = {model: list(range(1, count + 1)) for model, count in n.items()}
    for uid in ids[USER]:
        data[USER].append({"id": uid, "name": draw(pick(TEXTS)), "write_date": draw(pick(WRITE_DATES))})
    for mid in ids[MUNICIPIO]:
        data[MUNICIPIO].append({
            "id": mid, "name": draw(pick(MUNICIPIO_NAMES)),
            "state_id": draw(many2one([1, 2], STATE_POOL)), "write_date": draw(pick(WRITE_DATES)),
        })  # fmt: skip
    for pid in ids[PARTNER]:
        data[PARTNER].append({
            "id": pid, "name": draw(pick(TEXTS)), "l10n_br_cnpj": draw(pick(CNPJS)),
            "l10n_br_municipio_id": draw(many2one(ids[MUNICIPIO], MUNICIPIO_NAMES)),
            "state_id": draw(many2one([1, 2], STATE_POOL)), "user_id": draw(many2one(ids[USER])),
            "write_date": draw(pick(WRITE_DATES)),
        })  # fmt: skip
    for tid in ids[TEMPLATE]:
        data[TEMPLATE].append({
            "id": tid, "name": draw(pick(TEXTS)), "default_code": draw(pick(CODES)),
            "gross_weight": draw(with_floats(WEIGHTS, 0, 50)), "write_date": draw(pick(WRITE_DATES)),
        })  # fmt: skip
    for pid in ids[PRODUCT]:
        data[PRODUCT].append({
            "id": pid, "name": draw(pick(TEXTS)), "code": draw(pick(CODES)), "weight": draw(pick(WEIGHTS)),
            "product_tmpl_id": draw(many2one(ids[TEMPLATE])), "write_date": draw(pick(WRITE_DATES)),
        })  # fmt: skip
    # Move and line ids may repeat (the first record of an id wins).
    for mid in ids[MOVE] + draw(st.lists(pick(ids[MOVE]), max_size=1)):
        data[MOVE].append({
            "id": mid, "name": f"VND/{mid}", "state": draw(pick(MOVE_STATES)),
            "l10n_br_numero_nota_fiscal": draw(pick(NF_NUMBERS)), "l10n_br_tipo_pedido": draw(pick(TIPOS)),
            "date": draw(pick(DATES)), "invoice_origin": draw(pick(["PED-001", *TEXTS, 4711])),
            "l10n_br_cnpj": draw(pick([False, False, *CNPJS])),
            "invoice_partner_display_name": draw(pick([False, False, *TEXTS])),
            "invoice_user_id": draw(many2one(ids[USER])), "team_id": draw(many2one([1, 2])),
            "invoice_incoterm_id": draw(many2one([1, 2], INCOTERMS)), "write_date": draw(pick(WRITE_DATES)),
        })  # fmt: skip
    count = draw(st.integers(1, 9))
    for lid in list(range(1, count + 1)) + draw(st.lists(st.integers(1, count), max_size=1)):
        data[LINE].append({
            "id": lid, "move_id": draw(many2one(ids[MOVE], ["VND"])),
            "partner_id": draw(many2one(ids[PARTNER])), "product_id": draw(many2one(ids[PRODUCT])),
            "quantity": draw(st.one_of(pick(QUANTITIES), pick(QUANTITIES), st.floats(0, 100))), "price_unit": draw(with_floats(PRICES, -10, 1000)),
            "price_total": draw(with_floats(VALUES, -10, 10000)),
            "l10n_br_total_nfe": draw(st.one_of(with_floats(VALUES, -10, 10000), st.just(False))),
            "date": draw(pick(DATES)), "write_date": draw(pick(WRITE_DATES)),
        })  # fmt: skip
    return data, draw(pick(SINCES))


# --------------------------------------------------------------------------- running both sides


def run_vectorized(data: dict[str, list[dict]], since: datetime | None):
    frames = {m: records_to_frame(m, records) for m, records in data.items()}
    return transform(related_subset(frames, in_domain_lines(frames, since)))


def norm(value):
    if isinstance(value, Decimal):
        return ("D", str(value))  # the scale is part of the value compared
    if isinstance(value, (date, datetime)):
        return ("T", value.isoformat())
    if isinstance(value, float):
        return ("F", "nan" if math.isnan(value) else repr(value))
    if isinstance(value, (list, tuple)):
        return ("L", tuple(sorted(norm(v) for v in value)))
    return value


def table(rows: list[dict], columns) -> list[tuple]:
    return sorted((tuple(norm(r[c]) for c in columns) for r in rows), key=repr)


def assert_same(got: list[dict], want: list[dict], columns, what: str) -> None:
    """Same rows on both sides; on failure, name the columns and show only the differing rows."""
    got_rows, want_rows = table(got, columns), table(want, columns)
    if got_rows != want_rows:
        only_got = [dict(zip(columns, r)) for r in got_rows if r not in want_rows]
        only_want = [dict(zip(columns, r)) for r in want_rows if r not in got_rows]
        raise AssertionError(f"{what} differs\n  implementation only: {only_got}\n  reference only:      {only_want}"
                             f"\n  counts: {len(got_rows)} vs {len(want_rows)}")


LINE_COMPARED = (*LINE_VALUE_COLUMNS, "odoo_move_id", "odoo_line_count", "odoo_template_name", "odoo_gross_weight")


def assert_transform_agrees(data, since):
    got = run_vectorized(data, since)
    lines, rejected, in_domain, merged = reference_transform(data, since)
    assert_same(got.rejected.to_dicts(), rejected, REJECTED_COLUMNS, "rejected")
    assert_same(got.lines.to_dicts(), lines, LINE_COMPARED, "lines")
    assert (got.in_domain, got.merged) == (in_domain, merged)
    return got, lines, rejected


STATUSES = ["Lançado", "SEM_LOTE", "Cancelado", "Provisório", "Em análise"]


def drifted(value):
    if isinstance(value, Decimal):  # toward zero first: the largest price stays within numeric(15, 4)
        return value - 1 if value > 0 else value + 1
    if isinstance(value, date):
        return value + timedelta(days=1)
    if isinstance(value, str):
        return value + "x" if len(value) < 2 else None
    return "x"


@st.composite
def existing_state(draw, lines: list[dict], rejected: list[dict]):
    """A database derived from the reference's own output: keys missing, other statuses, drift, orphans."""
    rows = []
    for line in lines:
        action = draw(pick(["absent", "same", "same", "status", "drift", "status+drift"]))
        if action == "absent":
            continue
        row = {c: line[c] for c in LINE_VALUE_COLUMNS}
        if "status" in action:
            row["status_nf"] = draw(pick(STATUSES))
        if "drift" in action:
            for column in draw(st.sets(pick(DRIFT_COLUMNS), min_size=1, max_size=3)):
                row[column] = drifted(row[column])
        rows.append(row)
    template = {c: None for c in LINE_VALUE_COLUMNS} | {
        "data_fatura": date(2026, 1, 1), "cnpj_cliente": "", "nome_cliente": "Antigo", "nome_produto": "Antigo",
        "qtd_produto_faturado": Decimal("1.000"), "preco_produto_faturado": Decimal("1.0000"),
        "valor_produto_faturado": Decimal("1.00"),
    }  # fmt: skip
    for r in rejected:  # a key that now arrives rejected is not an orphan
        if r["numero_nf"] is not None and r["cod_produto"] is not None and draw(st.booleans()):
            rows.append(template | {"numero_nf": r["numero_nf"], "cod_produto": r["cod_produto"], "status_nf": draw(pick(STATUSES))})
    nfs = sorted({line["numero_nf"] for line in lines}) + ["999999"]
    for i, nf in enumerate(draw(st.lists(pick(nfs), max_size=3))):
        rows.append(template | {"numero_nf": nf, "cod_produto": f"ORPHAN{i}", "status_nf": draw(pick(STATUSES))})
    seen, unique_rows = set(), []
    for row in rows:  # the key is unique in the database
        if (row["numero_nf"], row["cod_produto"]) not in seen:
            seen.add((row["numero_nf"], row["cod_produto"]))
            unique_rows.append(row)

    line_codes = sorted({line["cod_produto"] for line in lines})
    codes = set(draw(st.lists(pick(line_codes), max_size=len(line_codes)))) if line_codes else set()
    codes |= {"OTHER"}

    consolidation = []
    for cons in consolidate(lines).values():
        action = draw(pick(["absent", "same", "same", "valor", "ativo", "header"]))
        if action == "absent":
            continue
        cons = dict(cons)
        if action == "valor":
            cons["valor_total"] += 1.0
        elif action == "ativo":
            cons["ativo"] = not cons["ativo"]
        elif action == "header":
            cons[draw(pick(["nome_cliente", "municipio", "estado", "vendedor", "data_fatura"]))] = None
        consolidation.append(cons)
    return unique_rows, codes, consolidation


def frame(rows, schema):
    return pl.DataFrame([{c: r.get(c) for c in schema} for r in rows], schema=schema) if rows else schemas.empty(schema)


def lines_frame(lines: list[dict]) -> pl.DataFrame:
    rows = sorted(lines, key=lambda r: r["odoo_line_id"])
    return frame(rows, schemas.LINE)


def rejected_frame(rejected: list[dict]) -> pl.DataFrame:
    return frame(rejected, schemas.REJECTED)


PART_COLUMNS = {
    "inserts": LINE_VALUE_COLUMNS,
    "status_changes": ("numero_nf", "cod_produto", "status_from", "status_nf"),
    "drift": ("numero_nf", "cod_produto", "drift_fields"),
    "cancellations": ("numero_nf",),
    "reactivations": ("numero_nf",),
    "new_products": ("cod_produto", "nome_produto", "palletizacao", "peso_bruto"),
    "consolidation": CONSOLIDATION_COLUMNS,
    "orphans": ("numero_nf", "cod_produto", "status_nf"),
}


def assert_changeset_agrees(line_frame, rejected_df, ref_lines, ref_rejected, state, full, apply_drift):
    rows, codes, consolidation = state
    got = compute_changeset(
        line_frame,
        frame(rows, schemas.EXISTING_LINE),
        frame([{"cod_produto": c} for c in sorted(codes)], schemas.EXISTING_PRODUCT),
        frame(consolidation, schemas.EXISTING_CONSOLIDATION),
        full=full,
        apply_drift=apply_drift,
        rejected=rejected_df,
    )
    want = reference_changeset(ref_lines, rows, codes, consolidation, full, apply_drift, rejected=ref_rejected)
    parts = got.parts()
    for name, columns in PART_COLUMNS.items():
        assert_same(parts[name].to_dicts(), want[name], columns, name)
    listed = downstream_lists(got.downstream)
    for name, nfs in want["downstream"].items():
        assert listed.get(name, []) == nfs, name


# --------------------------------------------------------------------------- (a) properties

# REFERENCE_EXAMPLES=5000 for a longer hunt.
SETTINGS = settings(
    max_examples=int(os.environ.get("REFERENCE_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@SETTINGS
@given(odoo_datasets())
def test_transform_agrees_with_the_reference(dataset):
    data, since = dataset
    assert_transform_agrees(data, since)


@SETTINGS
@given(odoo_datasets(), st.data(), st.booleans(), st.booleans())
def test_changeset_agrees_with_the_reference(dataset, draw, full, apply_drift):
    """The diff alone, fed the reference's lines (so a transform mismatch cannot hide here)."""
    data, since = dataset
    lines, rejected, _, _ = reference_transform(data, since)
    state = draw.draw(existing_state(lines, rejected))
    assert_changeset_agrees(lines_frame(lines), rejected_frame(rejected), lines, rejected, state, full, apply_drift)


@SETTINGS
@given(odoo_datasets(), st.data(), st.booleans(), st.booleans())
def test_transform_then_changeset_agree_with_the_reference(dataset, draw, full, apply_drift):
    data, since = dataset
    got, lines, rejected = assert_transform_agrees(data, since)
    state = draw.draw(existing_state(lines, rejected))
    assert_changeset_agrees(got.lines, got.rejected, lines, rejected, state, full, apply_drift)


# --------------------------------------------------------------------------- (b) the reference itself


def _dataset():
    """One posted NF with one line."""
    data = {
        USER: [{"id": 1, "name": "Vendedor Um", "write_date": "2026-01-05 10:00:00"}],
        MUNICIPIO: [{"id": 1, "name": "Campinas (SP)", "state_id": [1, "São Paulo"], "write_date": False}],
        PARTNER: [{"id": 1, "name": "Cliente", "l10n_br_cnpj": "111", "l10n_br_municipio_id": [1, "Campinas (SP)"],
                   "state_id": [1, "São Paulo (BR)"], "user_id": [1, "Vendedor Um"], "write_date": False}],
        TEMPLATE: [{"id": 1, "name": "Produto", "default_code": "P1", "gross_weight": 1.5, "write_date": False}],
        PRODUCT: [{"id": 1, "name": "Prod", "code": "X", "weight": 1.2, "product_tmpl_id": [1, "Produto"], "write_date": False}],
        MOVE: [{"id": 1, "name": "VND/1", "state": "posted", "l10n_br_numero_nota_fiscal": " 100 ",
                "l10n_br_tipo_pedido": "venda", "date": "2026-01-05", "invoice_origin": "PED1", "l10n_br_cnpj": False,
                "invoice_partner_display_name": False, "invoice_user_id": False, "team_id": [1, "Vendas"],
                "invoice_incoterm_id": [1, "[CIF] Cost, Insurance and Freight"], "write_date": "2026-01-05 10:00:00"}],
        LINE: [{"id": 1, "move_id": [1, "VND/1"], "partner_id": [1, "Cliente"], "product_id": [1, "Prod"],
                "quantity": 2.0, "price_unit": 2.675, "price_total": 5.35, "l10n_br_total_nfe": 0.0,
                "date": False, "write_date": "2026-01-05 10:00:00"}],
    }  # fmt: skip
    return data


def test_reference_maps_one_line_by_hand():
    lines, rejected, in_domain, merged = reference_transform(_dataset())
    assert (rejected, in_domain, merged) == ([], 1, 0)
    assert {c: lines[0][c] for c in LINE_VALUE_COLUMNS} == {
        "numero_nf": "100", "data_fatura": date(2026, 1, 5), "cnpj_cliente": "111", "nome_cliente": "Cliente",
        "municipio": "Campinas", "estado": "SP", "vendedor": "Vendedor Um", "equipe_vendas": "Vendas",
        "incoterm": "CIF", "cod_produto": "P1", "nome_produto": "Produto", "qtd_produto_faturado": Decimal("2.000"),
        "preco_produto_faturado": Decimal("2.6750"), "valor_produto_faturado": Decimal("5.35"),
        "peso_unitario_produto": Decimal("1.500"), "peso_total": Decimal("3.000"), "origem": "PED1",
        "status_nf": "Lançado",
    }  # fmt: skip


def test_reference_merges_one_product_of_an_nf_and_rounds_half_away_from_zero():
    line = _dataset()[LINE][0]
    data = _dataset()
    data[LINE] = [
        line | {"id": 7, "quantity": 1.0, "price_unit": 1.00005, "l10n_br_total_nfe": 1.005},
        line | {"id": 3, "quantity": 2.0005, "price_unit": 2.0, "l10n_br_total_nfe": 2.675},
        line | {"id": 5, "quantity": 0.0004, "price_unit": 9.0},  # rounds to 0.000: not positive
        line | {"id": 9, "product_id": False},  # outside the domain
    ]
    lines, rejected, in_domain, merged = reference_transform(data)
    assert (in_domain, merged) == (3, 1)
    assert rejected == [{"odoo_line_id": 5, "odoo_move_id": 1, "numero_nf": "100", "cod_produto": "P1", "reason": "quantity_not_positive"}]
    (row,) = lines
    # quantities 2.001 + 1.000; values 2.68 + 1.01 (half away from zero from "2.675" and "1.005")
    assert row["qtd_produto_faturado"] == Decimal("3.001")
    assert row["valor_produto_faturado"] == Decimal("3.69")
    # price: (2.001 × 2.0000 + 1.000 × 1.0001) / 3.001 = 5.0021 / 3.001 = 1.66681...
    assert row["preco_produto_faturado"] == Decimal("1.6668")
    assert row["peso_total"] == Decimal("3.002") + Decimal("1.500")  # 2.001 × 1.5 = 3.0015 → 3.002
    assert (row["odoo_line_id"], row["odoo_line_count"]) == (3, 2)


def test_reference_rejections_in_order_and_nf_on_two_moves():
    base = _dataset()
    move2 = base[MOVE][0] | {"id": 2, "l10n_br_numero_nota_fiscal": "100"}
    line = base[LINE][0]
    data = _dataset()
    data[MOVE] = base[MOVE] + [move2, base[MOVE][0] | {"id": 3, "l10n_br_numero_nota_fiscal": "  "}]
    data[LINE] = [
        line | {"id": 1},
        line | {"id": 2, "move_id": [2, "VND/2"], "quantity": 0.0},  # both quantity and the NF clash: quantity first
        line | {"id": 3, "move_id": [3, "VND/3"]},
        line | {"id": 4, "move_id": [3, "VND/3"], "product_id": [99, "Ghost"]},
        line | {"id": 5, "move_id": [42, "missing move"]},  # outside the domain
    ]
    lines, rejected, in_domain, _ = reference_transform(data)
    assert lines == [] and in_domain == 4
    assert [(r["odoo_line_id"], r["reason"]) for r in rejected] == [
        (1, "nf_number_on_several_moves"), (2, "quantity_not_positive"), (3, "no_nf_number"), (4, "no_product"),
    ]  # fmt: skip


def test_reference_window_takes_whole_moves():
    line = _dataset()[LINE][0]
    data = _dataset()
    data[LINE] = [line | {"id": 1, "write_date": "2026-01-07 00:00:00"}, line | {"id": 2, "write_date": "2026-01-01 00:00:00"}]
    lines, _, in_domain, merged = reference_transform(data, since=datetime(2026, 1, 6))
    assert (len(lines), in_domain, merged) == (1, 2, 1)
    assert reference_transform(data, since=datetime(2026, 1, 8))[2] == 0


@pytest.mark.parametrize(
    "name, uf",
    [("São Paulo", "SP"), ("SAO PAULO (BR)", "SP"), ("  paraná ", "PR"), ("Pará", "PA"), ("Espirito Santo", "ES"),
     ("Mato Grosso do Sul (BR)", "MS"), ("sp", "SP"), ("BR", None), ("Atlantis", None), (None, None)],
)  # fmt: skip
def test_reference_state_names(name, uf):
    assert uf_from_state_name(name) == uf


def test_reference_changeset_by_hand():
    lines, _, _, _ = reference_transform(_dataset())
    row = {c: lines[0][c] for c in LINE_VALUE_COLUMNS}
    # Stored as cancelled with another quantity, plus a row of the NF Odoo no longer returns.
    existing = [
        row | {"status_nf": "Cancelado", "qtd_produto_faturado": Decimal("1.000")},
        row | {"cod_produto": "OLD", "status_nf": "SEM_LOTE"},
    ]
    cs = reference_changeset(lines, existing, {"P1"}, [], full=True, apply_drift=False)
    assert cs["inserts"] == [] and cs["new_products"] == []
    assert cs["status_changes"] == [{"numero_nf": "100", "cod_produto": "P1", "status_from": "Cancelado", "status_nf": "Lançado"}]
    assert cs["reactivations"] == [{"numero_nf": "100"}] and cs["cancellations"] == []
    assert cs["drift"] == [{"numero_nf": "100", "cod_produto": "P1", "drift_fields": ["qtd_produto_faturado"]}]
    assert cs["orphans"] == [{"numero_nf": "100", "cod_produto": "OLD", "status_nf": "SEM_LOTE"}]
    assert [(c["numero_nf"], c["valor_total"], c["peso_bruto"], c["ativo"]) for c in cs["consolidation"]] == [("100", 5.35, 3.0, True)]
    # The NF cancelled in Odoo: every stored row of it changes status, also the one no longer returned.
    cancelled = _dataset()
    cancelled[MOVE] = [cancelled[MOVE][0] | {"state": "cancel"}]
    lines, _, _, _ = reference_transform(cancelled)
    cs = reference_changeset(lines, [row, row | {"cod_produto": "OLD", "status_nf": "SEM_LOTE"}], set(), [], full=False, apply_drift=False)
    assert sorted((s["cod_produto"], s["status_nf"]) for s in cs["status_changes"]) == [("OLD", "Cancelado"), ("P1", "Cancelado")]
    assert cs["cancellations"] == [{"numero_nf": "100"}] and cs["orphans"] == []
    assert cs["new_products"] == [{"cod_produto": "P1", "nome_produto": "Produto", "palletizacao": 1.0, "peso_bruto": 1.5}]
    assert cs["consolidation"][0]["ativo"] is False


def test_reference_new_product_takes_the_template_name_and_weight_as_sent():
    data = _dataset()
    data[TEMPLATE] = [data[TEMPLATE][0] | {"name": "N" * 254 + " " + "M" * 60, "gross_weight": 0.0004}]
    line = data[LINE][0]
    data[LINE] = [line | {"id": 2}, line | {"id": 1, "product_id": False}]
    lines, _, _, _ = reference_transform(data)
    assert lines[0]["nome_produto"] == "N" * 200 and lines[0]["peso_unitario_produto"] == Decimal("0.000")
    (product,) = reference_changeset(lines, [], set(), [], full=False, apply_drift=False)["new_products"]
    assert product == {"cod_produto": "P1", "nome_produto": "N" * 254, "palletizacao": 1.0, "peso_bruto": 0.0004}


# --------------------------------------------------------------------------- (c) disagreements found
# Minimal examples where the two sides disagreed while this file was written,
# kept as regression tests (each since fixed in the implementation, or in
# docs/rules.md where the page was unclear).


def _one_line(**line):
    data = _dataset()
    data[LINE] = [data[LINE][0] | line]
    return data


def _agree(data):
    assert_transform_agrees(data, None)


def test_found_nan_quantity_is_not_positive():
    # rules: quantity_not_positive (≤ 0, missing or NaN) comes before number_out_of_range
    data = _one_line(quantity=NAN)
    assert [r["reason"] for r in reference_transform(data)[1]] == ["quantity_not_positive"]
    _agree(data)


def test_found_peso_total_rounds_half_away_from_zero():
    data = _one_line(quantity=2.675)  # 2.675 × 1.500 = 4.0125
    assert reference_transform(data)[0][0]["peso_total"] == Decimal("4.013")
    _agree(data)


def test_found_merged_price_rounds_once():
    data = _dataset()
    line = data[LINE][0]
    data[LINE] = [line | {"id": 1, "quantity": 1.0, "price_unit": 10.25}, line | {"id": 2, "quantity": 0.001, "price_unit": 1.75}]
    assert reference_transform(data)[0][0]["preco_produto_faturado"] == Decimal("10.2415")  # 10.25175 / 1.001
    _agree(data)
    data[LINE] = [line | {"id": 1, "quantity": 2.0, "price_unit": 0.33335}, line | {"id": 2, "quantity": 0.0005, "price_unit": 10.25}]
    assert reference_transform(data)[0][0]["preco_produto_faturado"] == Decimal("0.3384")  # 0.67705 / 2.001
    _agree(data)


def test_found_tiny_quantities_do_not_crash_the_transform():
    # two lines of one NF and product, each 0.000 at the column's scale: the merge divided by Σq = 0
    data = _dataset()
    data[LINE] = [data[LINE][0] | {"id": 1, "quantity": 0.0004}, data[LINE][0] | {"id": 2, "quantity": 0.0004}]
    _agree(data)


def test_found_quantity_rounding_to_zero_is_not_positive():
    # rules: quantity_not_positive also when 0.000 once rounded to the column's 3 places
    _agree(_one_line(quantity=0.0004))


def test_found_municipio_named_only_by_uf():
    # rules: a name ending in "(XX)" → municipio = the text before (empty → null), UF = XX
    data = _dataset()
    data[MUNICIPIO] = [data[MUNICIPIO][0] | {"name": "(MG)"}]
    data[PARTNER] = [data[PARTNER][0] | {"state_id": [1, "Acre"]}]
    (line,) = reference_transform(data)[0]
    assert (line["municipio"], line["estado"]) == (None, "MG")
    _agree(data)


def test_found_rejected_key_is_not_an_orphan():
    # rules: orphans are keys Odoo no longer returns — neither as a line nor as a rejected line
    data = _one_line(quantity=0.0)
    lines, rejected, _, _ = reference_transform(data)
    assert lines == [] and [(r["numero_nf"], r["cod_produto"]) for r in rejected] == [("100", "P1")]
    stored = {c: None for c in LINE_VALUE_COLUMNS} | {"numero_nf": "100", "cod_produto": "P1", "status_nf": "Lançado"}
    assert reference_changeset(lines, [stored], set(), [], full=True, apply_drift=False, rejected=rejected)["orphans"] == []
    got = run_vectorized(data, None)
    assert_changeset_agrees(got.lines, got.rejected, lines, rejected, ([stored], set(), []), full=True, apply_drift=False)


def _mixed_partners_and_templates():
    """NF 100: P1 on lines 1 and 3 (partner 1, merged), P2 on line 2 (partner 2, alone).
    NF 101: line 4 with product 3, whose template 3 also has code P1 but another name."""
    data = _dataset()
    partner, template, product, move, line = data[PARTNER][0], data[TEMPLATE][0], data[PRODUCT][0], data[MOVE][0], data[LINE][0]
    data[PARTNER] = [partner, partner | {"id": 2, "name": "Outro", "l10n_br_cnpj": "222", "l10n_br_municipio_id": False,
                                         "state_id": [2, "Bahia"]}]  # fmt: skip
    data[TEMPLATE] = [template, template | {"id": 2, "default_code": "P2"}, template | {"id": 3, "name": "Outro nome", "gross_weight": 9.0}]
    data[PRODUCT] = [product | {"id": i, "product_tmpl_id": [i, "T"]} for i in (1, 2, 3)]
    data[MOVE] = [move, move | {"id": 2, "l10n_br_numero_nota_fiscal": "101"}]
    data[LINE] = [
        line | {"id": 1},
        line | {"id": 2, "partner_id": [2, "Outro"], "product_id": [2, "P2"]},
        line | {"id": 3},
        line | {"id": 4, "move_id": [2, "VND/2"], "product_id": [3, "P1 bis"]},
    ]
    return data


def test_reference_takes_the_lowest_line_id_for_header_and_new_products():
    lines, _, _, merged = reference_transform(_mixed_partners_and_templates())
    assert merged == 1
    cs = reference_changeset(lines, [], set(), [], full=True, apply_drift=False)
    cons = {c["numero_nf"]: (c["cnpj_cliente"], c["municipio"], c["estado"]) for c in cs["consolidation"]}
    assert cons["100"] == ("111", "Campinas", "SP")  # line 1's partner, not line 2's
    assert {p["cod_produto"]: (p["nome_produto"], p["peso_bruto"]) for p in cs["new_products"]} == {
        "P1": ("Produto", 1.5), "P2": ("Produto", 1.5)}  # line 1's template, not line 4's


def test_found_header_and_new_products_come_from_the_lowest_line_id():
    # the diff takes "first row" / "lowest-id line" from the frame's order: transform must keep line order
    data = _mixed_partners_and_templates()
    got, lines, rejected = assert_transform_agrees(data, None)
    assert_changeset_agrees(got.lines, got.rejected, lines, rejected, ([], set(), []), full=True, apply_drift=False)
