"""The dataset generator's related records, and the shares every draw uses.

`make_entities` builds the small models (users, municipalities, customers,
products and templates) as Python records; `pools_from_records` turns those
records — freshly made, or read back from a dataset by the next-day generator —
into the arrays `moves.make_moves_and_lines` draws from. The big models are built
column-wise with NumPy and Polars (no per-line Python), so a million lines take
seconds.

Every share below is a module constant so the tests and the report quote the
same numbers the generator uses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

import numpy as np
import polars as pl

from . import reference_data as ref
from .json_text import m2o_text

log = logging.getLogger(__name__)

ADMIN_UID = 2
EPOCH = date(1970, 1, 1)

# --- move level -----------------------------------------------------------
P_DRAFT = 0.02  # drafts: outside the domain (state), name "/", no NF number
P_CANCEL = 0.01  # cancelled NFs: inside the domain
# The five types production imports (DESIGN §10) first; the last three are outside the domain.
TIPOS = ("venda", "bonificacao", "industrializacao", "exportacao", "venda-industrializacao",
         "compra", "devolucao", "remessa")  # fmt: skip
TIPO_P = (0.85, 0.06, 0.01, 0.01, 0.01, 0.02, 0.02, 0.02)
JOURNAL = {"venda": "VND", "bonificacao": "VND", "industrializacao": "VND", "exportacao": "VND",
           "venda-industrializacao": "VND", "remessa": "VND", "compra": "CMP", "devolucao": "DEV"}  # fmt: skip
P_ORIGIN = 0.97  # invoice_origin "VCD…"; else, in equal shares, false, "" or the text "false" (not imported)
ORIGIN_MISSING = (None, "", "false")  # the three spellings of "no sales order" (legacy-rules §6)
# Company of the move: the main one, or (a small share) the excluded inter-company one (DESIGN §10).
COMPANY = [1, "NACOM GOYA"]
COMPANY_EXCLUDED = [5, "NACOM GOYA INTERCOMPANY"]
P_COMPANY_EXCLUDED = 0.02
P_MOVE_CNPJ = 0.90  # else false: the partner's CNPJ is used
P_DISPLAY = 0.93  # invoice_partner_display_name set, else false: the partner's name is used
P_DISPLAY_PADDED = 0.005  # …of those, with leading/trailing spaces (benign)
P_INVOICE_USER = 0.90  # else false: the partner's salesperson is used
P_NF_EMPTY = 0.003  # DIRTY: in-domain moves with NF number false or "  "
P_NF_PADDED = 0.005  # benign: NF numbers with leading/trailing spaces
# Product lines per move, 1..8 (mean ≈ 3.3).
KP_P = (0.12, 0.22, 0.28, 0.18, 0.10, 0.05, 0.03, 0.02)
P_TAX_LINE = 0.30  # a tax line (no product), besides the always-present receivable line
P_NOTE_LINE = 0.05  # a note line (no product)

# --- line level (DIRTY shares of product lines, inside the domain or not) --
P_QTY_ZERO = 0.0035
P_QTY_NEG = 0.0015
P_NOCODE = 0.003  # product whose template has default_code false
P_MISSING = 0.002  # product id that does not exist in product.product
P_QTY_DECIMAL = 0.20  # quantities with 3 decimals (sold by kg)
P_PRICE_4DEC = 0.20  # price_unit with 4 decimals
P_NFE_EQUAL = 0.80  # l10n_br_total_nfe = price_total; then taxed (0.12); then 0.0 (fallback)
P_NFE_TAXED = 0.12

# --- related records --------------------------------------------------------
P_PARTNER_MUNICIPIO = 0.96
P_PARTNER_STATE = 0.99
P_PARTNER_USER = 0.88
P_CODE_PADDED = 0.01  # template default_code with leading/trailing spaces (benign)
MISSING_PRODUCT_BASE = 9_000_000  # ids of products that do not exist


def epoch_seconds(day: date) -> int:
    return (day - EPOCH).days * 86400


def ts_text(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def cnpj(base8: int, branch: int) -> str:
    """A CNPJ with valid check digits, formatted 12.345.678/0001-95."""
    digits = [int(c) for c in f"{base8:08d}{branch:04d}"]
    for weights in ((5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2), (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)):
        rest = sum(d * w for d, w in zip(digits, weights)) % 11
        digits.append(0 if rest < 2 else 11 - rest)
    s = "".join(map(str, digits))
    return f"{s[:2]}.{s[2:5]}.{s[5:8]}/{s[8:12]}-{s[12:]}"


def popularity(n: int, skew: float = 0.9, head: float = 15.0) -> np.ndarray:
    """Zipf-like weights: a few products/customers carry most of the volume."""
    w = 1.0 / (np.arange(n) + head) ** skew
    return w / w.sum()


def unit_price(product_id: int, net_kg: float) -> float:
    """A product's list price in BRL, from its weight: the same whoever computes it."""
    per_kg = 9.0 + (product_id * 7919 % 4100) / 100.0
    return max(1.5, round(net_kg * per_kg, 2))


def _past_ts(rng: np.random.Generator, before: date, n: int, max_days: int = 400) -> list[str]:
    """Write dates of records created long before the invoices."""
    base = epoch_seconds(before)
    secs = base - rng.integers(86400, max_days * 86400, n)
    return [ts_text(int(s)) for s in secs]


def make_entities(rng: np.random.Generator, n_products: int, n_partners: int, before: date) -> dict[str, list[dict]]:
    """Users, municipalities, customers, products and templates as Odoo records."""
    users = [{"id": ADMIN_UID, "name": "Administrator", "write_date": _past_ts(rng, before, 1, 900)[0]}]
    for i, (name, wd) in enumerate(zip(ref.SALESPEOPLE, _past_ts(rng, before, len(ref.SALESPEOPLE), 900))):
        users.append({"id": 6 + i, "name": name, "write_date": wd})
    sellers = users[1:]

    municipios, mun_weight, mun_uf = [], [], []
    mid = 3001
    for uf, cities in ref.MUNICIPIOS.items():
        state_name, state_id = ref.STATES[uf]
        for pos, city in enumerate(cities):
            suffixed = rng.random() < 0.5  # Odoo shows either "Campinas (SP)" or "Campinas" + state
            state_label = f"{state_name} (BR)" if rng.random() < 0.5 else state_name
            municipios.append({
                "id": mid,
                "name": f"{city} ({uf})" if suffixed else city,
                "state_id": [state_id, state_label],
                "write_date": _past_ts(rng, before, 1, 1200)[0],
            })  # fmt: skip
            mun_weight.append((6.0 if uf == "SP" else 1.0) * (3.0 if pos == 0 else 1.0))
            mun_uf.append(uf)
            mid += 1
    mun_p = np.array(mun_weight) / sum(mun_weight)

    combos = len(ref.PARTNER_PREFIXES) * len(ref.PARTNER_SURNAMES) * len(ref.PARTNER_EXTRAS) * len(ref.PARTNER_SUFFIXES)
    picks = rng.choice(combos, size=n_partners, replace=False)
    bases = rng.choice(90_000_000, size=n_partners, replace=False) + 10_000_000
    mun_pick = rng.choice(len(municipios), size=n_partners, p=mun_p)
    u = rng.random((n_partners, 5))
    seller_pick = rng.integers(0, len(sellers), n_partners)
    partner_wd = _past_ts(rng, before, n_partners)
    odd_at = {7 + 13 * k: name for k, name in enumerate(ref.ODD_PARTNER_NAMES)}
    long_at = {5 + 29 * k for k in range(max(1, n_partners // 500))}
    partners = []
    for i in range(n_partners):
        c = int(picks[i])
        c, suffix = divmod(c, len(ref.PARTNER_SUFFIXES))
        c, extra = divmod(c, len(ref.PARTNER_EXTRAS))
        prefix, surname = divmod(c, len(ref.PARTNER_SURNAMES))
        words = [ref.PARTNER_PREFIXES[prefix], ref.PARTNER_SURNAMES[surname], ref.PARTNER_EXTRAS[extra],
                 ref.PARTNER_SUFFIXES[suffix]]  # fmt: skip
        name = " ".join(w for w in words if w)
        if i in odd_at and i < n_partners:
            name = odd_at[i]
        elif i in long_at:
            name = (name + " - COMERCIO VAREJISTA DE PRODUTOS ALIMENTICIOS EM GERAL") * 6  # 300+ chars
        mun = municipios[mun_pick[i]]
        uf = mun_uf[mun_pick[i]]
        state_name, state_id = ref.STATES[uf]
        partners.append({
            "id": 1001 + i,
            "name": name,
            "l10n_br_cnpj": cnpj(int(bases[i]), 1 if u[i, 0] < 0.9 else 2),
            "l10n_br_municipio_id": [mun["id"], mun["name"]] if u[i, 1] < P_PARTNER_MUNICIPIO else False,
            "state_id": ([state_id, f"{state_name} (BR)" if u[i, 2] < 0.5 else state_name]
                         if u[i, 3] < P_PARTNER_STATE else False),
            "user_id": ([sellers[seller_pick[i]]["id"], sellers[seller_pick[i]]["name"]]
                        if u[i, 4] < P_PARTNER_USER else False),
            "write_date": partner_wd[i],
        })  # fmt: skip

    # Products: the last `n_nocode` ones are the dirty templates without a code.
    n_nocode = max(1, n_products // 200)
    n_all = n_products + n_nocode
    combos = len(ref.PRODUCT_BASES) * len(ref.PRODUCT_BRANDS) * len(ref.PRODUCT_PACKS)
    picks = rng.choice(combos, size=n_all, replace=False)
    codes = np.sort(rng.choice(900_000, size=n_all, replace=False) + 4_100_000)
    tmpl_ids = rng.permutation(n_all) + 201  # product ids and template ids differ, as in Odoo
    gross_factor = rng.uniform(1.04, 1.20, n_all)
    code_pad = rng.random(n_all)
    product_wd = _past_ts(rng, before, n_all)
    template_wd = _past_ts(rng, before, n_all)
    odd_at = {3 + 11 * k: name for k, name in enumerate(ref.ODD_PRODUCT_NAMES)}
    long_at = {9 + 37 * k for k in range(max(1, n_products // 300))}
    products, templates = [], []
    for i in range(n_all):
        c, pack = divmod(int(picks[i]), len(ref.PRODUCT_PACKS))
        base, brand = divmod(c, len(ref.PRODUCT_BRANDS))
        pack_text, net = ref.PRODUCT_PACKS[pack]
        name = f"{ref.PRODUCT_BASES[base]} {ref.PRODUCT_BRANDS[brand]} {pack_text}"
        if i in odd_at and i < n_products:
            name = odd_at[i]
        elif i in long_at and i < n_products:
            name = name + " " + " ".join(["PRODUTO ALIMENTICIO EM CONSERVA PASTEURIZADO"] * 7)
        code: str | bool = str(codes[i])
        if i >= n_products:
            code = False
        elif code_pad[i] < P_CODE_PADDED:
            code = f" {code}" if code_pad[i] < P_CODE_PADDED / 2 else f"{code} "
        tid = int(tmpl_ids[i])
        templates.append({
            "id": tid, "name": name, "default_code": code,
            "gross_weight": round(net * float(gross_factor[i]) + 0.05, 3), "write_date": template_wd[i],
        })  # fmt: skip
        display = f"[{code}] {name}" if code else name
        products.append({
            "id": 101 + i, "name": name, "code": code, "weight": round(net, 3),
            "product_tmpl_id": [tid, display], "write_date": product_wd[i],
        })  # fmt: skip
    templates.sort(key=lambda t: t["id"])
    return {"users": users, "municipios": municipios, "partners": partners, "products": products,
            "templates": templates}  # fmt: skip


@dataclass
class Pools:
    """What new moves and lines draw from; built from records, made or read back."""

    partner_m2o: pl.Series  # JSON text per partner
    partner_name: pl.Series
    partner_cnpj: pl.Series
    partner_seller: np.ndarray  # index into sellers, -1 = none
    partner_p: np.ndarray
    seller_m2o: pl.Series  # JSON text per salesperson, then "false"
    product_m2o: pl.Series  # valid, then no-code, then missing, then "false"
    product_price: np.ndarray
    n_valid: int
    n_nocode: int
    n_missing: int
    product_p: np.ndarray = field(repr=False)


def product_label(product: dict) -> str:
    return f"[{product['code']}] {product['name']}" if product.get("code") else str(product["name"])


def pools_from_records(partners: list[dict], products: list[dict], templates: list[dict], users: list[dict]) -> Pools:
    sellers = [u for u in users if u["id"] != ADMIN_UID]
    seller_pos = {u["id"]: i for i, u in enumerate(sellers)}
    has_code = {t["id"] for t in templates if isinstance(t.get("default_code"), str) and t["default_code"].strip()}
    valid = [p for p in products if p.get("product_tmpl_id") and p["product_tmpl_id"][0] in has_code]
    nocode = [p for p in products if not (p.get("product_tmpl_id") and p["product_tmpl_id"][0] in has_code)]
    existing = {p["id"] for p in products}
    missing = [i for i in range(MISSING_PRODUCT_BASE + 1, MISSING_PRODUCT_BASE + 10) if i not in existing][:3]
    missing_labels = [(i, f"[{i}] PRODUTO EXCLUÍDO") for i in missing]
    return Pools(
        partner_m2o=pl.Series([m2o_text((p["id"], p["name"])) for p in partners], dtype=pl.String),
        partner_name=pl.Series([p["name"] or None for p in partners], dtype=pl.String),
        partner_cnpj=pl.Series([p.get("l10n_br_cnpj") or None for p in partners], dtype=pl.String),
        partner_seller=np.array(
            [seller_pos.get((p.get("user_id") or [None])[0], -1) for p in partners], dtype=np.int64
        ),
        partner_p=popularity(len(partners), skew=0.8, head=20.0),
        seller_m2o=pl.Series([m2o_text((u["id"], u["name"])) for u in sellers] + ["false"], dtype=pl.String),
        product_m2o=pl.Series(
            [m2o_text((p["id"], product_label(p))) for p in valid + nocode] + [m2o_text(m) for m in missing_labels]
            + ["false"], dtype=pl.String),  # fmt: skip
        product_price=np.array([unit_price(p["id"], float(p.get("weight") or 1.0)) for p in valid + nocode]
                               + [50.0] * len(missing) + [0.0]),  # fmt: skip
        n_valid=len(valid),
        n_nocode=len(nocode),
        n_missing=len(missing),
        product_p=popularity(len(valid)),
    )
