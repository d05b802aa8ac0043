"""The dataset generator's moves (NFs) and their lines, built column-wise.

`make_moves_and_lines` draws from the `entities.Pools` of related records; it
builds the big models with NumPy and Polars (no per-line Python), so a million
lines take seconds. The shares it draws with are the constants of `entities`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from ..odoo.fields import LINE, MODELS, MOVE, TIPOS_PEDIDO
from . import reference_data as ref
from .entities import (
    JOURNAL,
    KP_P,
    P_CANCEL,
    P_DISPLAY,
    P_DISPLAY_PADDED,
    P_DRAFT,
    P_INVOICE_USER,
    P_MISSING,
    P_MOVE_CNPJ,
    P_NFE_EQUAL,
    P_NFE_TAXED,
    P_NF_EMPTY,
    P_NF_PADDED,
    P_NOCODE,
    P_NOTE_LINE,
    COMPANY,
    COMPANY_EXCLUDED,
    ORIGIN_MISSING,
    P_COMPANY_EXCLUDED,
    P_ORIGIN,
    P_PRICE_4DEC,
    P_QTY_DECIMAL,
    P_QTY_NEG,
    P_QTY_ZERO,
    P_TAX_LINE,
    Pools,
    TIPOS,
    TIPO_P,
    epoch_seconds,
)
from .json_text import esc, m2o, m2o_text, num, or_false, quoted, records

log = logging.getLogger(__name__)

@dataclass
class Batch:
    moves: pl.Series  # JSON record texts
    lines: pl.Series
    counts: dict[str, int]


def _exact(rng: np.random.Generator, pool: np.ndarray, share: float, force: bool) -> np.ndarray:
    """`share` of `pool` (at least one when `force`), chosen without replacement."""
    k = int(round(share * len(pool)))
    if force and len(pool):
        k = max(1, k)
    k = min(k, len(pool))
    return rng.choice(pool, size=k, replace=False) if k else pool[:0]


def make_moves_and_lines(
    rng: np.random.Generator,
    pools: Pools,
    target_lines: int,
    *,
    first_move_id: int,
    first_line_id: int,
    first_nf: int,
    seq_last: dict[tuple[str, int], int],
    days: list[date],
    day_p: np.ndarray,
    end_ts: int,
    force_dirty: bool,
) -> Batch:
    """Moves (NFs) and their lines, about `target_lines` account.move.line records in all."""
    # Line counts per move: product lines + receivable + optional tax and note lines.
    m0 = target_lines // 2 + 8
    kp = rng.choice(len(KP_P), size=m0, p=KP_P) + 1
    tax = (rng.random(m0) < P_TAX_LINE).astype(np.int64)
    note = (rng.random(m0) < P_NOTE_LINE).astype(np.int64)
    per = kp + 1 + tax + note
    n_moves = min(m0, int(np.searchsorted(np.cumsum(per), target_lines)) + 1)
    kp, tax, note, per = kp[:n_moves], tax[:n_moves], note[:n_moves], per[:n_moves]
    M = n_moves

    # Times: business-day weighted dates, posting hours 07:00–19:50 BRT (UTC-3); ids follow time.
    day_sec = np.array([epoch_seconds(d) for d in days], dtype=np.int64)
    created = np.sort(day_sec[rng.choice(len(days), size=M, p=day_p)] + rng.integers(10 * 3600, 22 * 3600 + 50 * 60, M))
    u = rng.random((M, 8))
    state = np.where(u[:, 0] < P_DRAFT, "draft", np.where(u[:, 0] < P_DRAFT + P_CANCEL, "cancel", "posted"))
    tipo = np.array(TIPOS)[np.searchsorted(np.cumsum(TIPO_P), u[:, 1] * 0.999999, side="right")]
    # Posting follows creation by seconds; a cancellation comes hours or days later.
    cancelled_at = np.minimum(created + rng.integers(3600, 3 * 86400, M), end_ts)
    written = np.where(state == "posted", created + rng.integers(5, 600, M),
                       np.where(state == "cancel", cancelled_at, created))  # fmt: skip
    pidx = rng.choice(len(pools.partner_p), size=M, p=pools.partner_p)
    draft = state == "draft"
    in_domain = np.isin(tipo, TIPOS_PEDIDO) & ~draft

    # NF numbers: increasing over non-draft moves; a few padded (benign), a few empty (dirty).
    nf_num = first_nf + np.cumsum(~draft) - 1
    nf_list = np.where(draft, None, nf_num.astype(str).astype(object)).tolist()
    nf_empty = _exact(rng, np.flatnonzero(in_domain), P_NF_EMPTY, force_dirty)
    rest = np.setdiff1d(np.flatnonzero(in_domain), nf_empty)
    nf_padded = _exact(rng, rest, P_NF_PADDED, force_dirty)
    for k, i in enumerate(nf_empty):
        nf_list[i] = None if k % 2 == 0 else "  "
    for k, i in enumerate(nf_padded):
        nf_list[i] = (f" {nf_list[i]}", f"{nf_list[i]} ", f" {nf_list[i]} ")[k % 3]

    # Salesperson on the invoice: mostly the customer's own, sometimes a colleague, sometimes false.
    seller_n = pools.seller_m2o.len() - 1
    own = pools.partner_seller[pidx]
    other = rng.integers(0, max(1, seller_n), M)
    seller = np.where((own < 0) | (u[:, 2] < 0.05), other, own)
    seller = np.where(u[:, 3] < P_INVOICE_USER, seller, seller_n)  # seller_n → "false"

    team = np.searchsorted(np.cumsum(ref.TEAM_P), u[:, 4] * 0.999999, side="right")
    incoterm = np.searchsorted(np.cumsum(ref.INCOTERM_P), u[:, 5] * 0.999999, side="right")
    team_m2o = pl.Series([m2o_text(t) for t in ref.TEAMS] + ["false"])
    incoterm_m2o = pl.Series([m2o_text(t) for t in ref.INCOTERMS] + ["false"])
    origin = np.char.add("VCD", rng.integers(2_000_000, 3_000_000, M).astype(str))

    ids = np.arange(first_move_id, first_move_id + M, dtype=np.int64)
    journal = np.vectorize(JOURNAL.get, otypes=[object])(tipo).astype(str)
    mv = pl.DataFrame({
        "mid": ids, "created": created, "written": written, "state": state, "tipo": tipo, "journal": journal,
        "draft": draft, "nf": pl.Series(nf_list, dtype=pl.String), "pidx": pidx, "seller": seller, "team": team,
        "incoterm": incoterm, "origin": _origins(origin, u[:, 6]), "u7": u[:, 7],
        # A second uniform from u7's low digits, not a new draw: the seeded stream every other
        # column comes from stays as it was before the company existed.
        "company_excluded": (u[:, 7] * 977.0) % 1.0 < P_COMPANY_EXCLUDED,
    }).with_columns(  # fmt: skip
        pl.from_epoch("created", "s").alias("_created"),
        pl.from_epoch("written", "s").dt.strftime("%Y-%m-%d %H:%M:%S").alias("written_txt"),
    ).with_columns(pl.col("_created").dt.year().alias("year"), pl.col("_created").dt.date().alias("day"))
    last = pl.DataFrame(
        {"journal": [k[0] for k in seq_last], "year": [k[1] for k in seq_last], "last": list(seq_last.values())},
        schema={"journal": pl.String, "year": pl.Int32, "last": pl.Int64},
    )
    mv = mv.join(last, on=["journal", "year"], how="left", maintain_order="left").with_columns(
        (pl.int_range(pl.len()).over(["journal", "year", "draft"]) + 1 + pl.col("last").fill_null(0)).alias("seq")
    )
    name = pl.when(pl.col("draft")).then(pl.lit("/")).otherwise(pl.concat_str([
        pl.col("journal"), pl.lit("/"), pl.col("year").cast(pl.String), pl.lit("/"),
        pl.col("seq").cast(pl.String).str.zfill(5)]))  # fmt: skip
    label = pl.when(pl.col("draft")).then(pl.format("Draft Invoice (* {})", pl.col("mid"))).otherwise(name)
    pname = pools.partner_name.gather(pidx)
    padded = pl.concat_str([pl.lit("  "), pl.lit(pname), pl.lit(" ")])
    display = pl.when(pl.col("u7") < P_DISPLAY * P_DISPLAY_PADDED).then(padded)
    display = display.when(pl.col("u7") < P_DISPLAY).then(pl.lit(pname))
    cnpj_col = pl.when(pl.lit(rng.random(M)) < P_MOVE_CNPJ).then(pl.lit(pools.partner_cnpj.gather(pidx)))
    mv = mv.with_columns(
        name.alias("name_txt"), label.alias("label"), display.alias("display"), cnpj_col.alias("cnpj"),
        pl.col("day").dt.strftime("%Y-%m-%d").alias("day_txt"),
    )
    move_json = mv.select(
        num(pl.col("mid")).alias("id"),
        esc(pl.col("name_txt")).alias("name"),
        quoted(pl.col("state")).alias("state"),
        or_false(esc(pl.col("nf"))).alias("l10n_br_numero_nota_fiscal"),
        quoted(pl.col("tipo")).alias("l10n_br_tipo_pedido"),
        quoted(pl.col("day_txt")).alias("date"),
        or_false(quoted(pl.col("origin"))).alias("invoice_origin"),
        or_false(quoted(pl.col("cnpj"))).alias("l10n_br_cnpj"),
        or_false(esc(pl.col("display"))).alias("invoice_partner_display_name"),
        pl.lit(pools.seller_m2o.gather(seller)).alias("invoice_user_id"),
        pl.lit(team_m2o.gather(team)).alias("team_id"),
        pl.lit(incoterm_m2o.gather(incoterm)).alias("invoice_incoterm_id"),
        pl.when(pl.col("company_excluded")).then(pl.lit(json.dumps(COMPANY_EXCLUDED)))
        .otherwise(pl.lit(json.dumps(COMPANY))).alias("company_id"),
        quoted(pl.col("written_txt")).alias("write_date"),
    )
    moves = records(move_json, list(MODELS[MOVE]))

    # Lines: kind 0 = product, 1 = tax, 2 = receivable, 3 = note.
    N = int(per.sum())
    of = np.repeat(np.arange(M), per)
    pos = np.arange(N) - np.repeat(np.cumsum(per) - per, per)
    kp_l, tax_l = kp[of], tax[of]
    kind = np.where(pos < kp_l, 0, np.where(pos < kp_l + tax_l, 1, np.where(pos < kp_l + tax_l + 1, 2, 3)))
    prod = np.flatnonzero(kind == 0)
    n_pl = len(prod)
    pidx_l = rng.choice(pools.n_valid, size=n_pl, p=pools.product_p)
    dirty_counts = {}
    chosen = rng.permutation(n_pl)
    cuts = [("nocode", P_NOCODE), ("missing", P_MISSING), ("qty_zero", P_QTY_ZERO), ("qty_negative", P_QTY_NEG)]
    start = 0
    picked: dict[str, np.ndarray] = {}
    for key, share in cuts:
        k = int(round(share * n_pl))
        if force_dirty:
            k = max(1, k)
        picked[key] = chosen[start:start + k]
        start += k
        dirty_counts[key] = k
    if pools.n_nocode:
        pidx_l[picked["nocode"]] = pools.n_valid + rng.integers(0, pools.n_nocode, len(picked["nocode"]))
    else:
        dirty_counts["nocode"] = 0
    missing_at = pools.n_valid + pools.n_nocode
    pidx_l[picked["missing"]] = missing_at + rng.integers(0, pools.n_missing, len(picked["missing"]))

    q = np.where(rng.random(n_pl) < 0.85, rng.integers(1, 40, n_pl), rng.integers(40, 600, n_pl)).astype(np.float64)
    q = np.where(rng.random(n_pl) < P_QTY_DECIMAL, np.round(rng.uniform(0.5, 250.0, n_pl), 3), q)
    q[picked["qty_zero"]] = 0.0
    q[picked["qty_negative"]] = -rng.integers(1, 10, len(picked["qty_negative"]))
    p = pools.product_price[pidx_l] * rng.uniform(0.92, 1.08, n_pl)
    p = np.maximum(np.where(rng.random(n_pl) < P_PRICE_4DEC, np.round(p, 4), np.round(p, 2)), 0.01)
    pt = np.round(q * p, 2) + 0.0  # + 0.0: never "-0.0"
    un = rng.random(n_pl)
    taxed = np.round(pt * (1.0 + rng.choice([0.05, 0.0925, 0.12], n_pl)), 2)
    nfe = np.where(un < P_NFE_EQUAL, pt, np.where(un < P_NFE_EQUAL + P_NFE_TAXED, taxed, 0.0)) + 0.0

    total = np.round(np.bincount(of[prod], weights=pt, minlength=M), 2)
    quantity = np.where(kind == 2, 1.0, 0.0)
    price_unit = np.where(kind == 2, total[of], 0.0)
    price_total = np.where(kind == 2, total[of], np.where(kind == 1, np.round(total[of] * 0.0925, 2), 0.0)) + 0.0
    l10n_nfe = np.zeros(N)
    quantity[prod], price_unit[prod], price_total[prod], l10n_nfe[prod] = q, p, pt, nfe
    product_index = np.full(N, pools.product_m2o.len() - 1, dtype=np.int64)  # → "false"
    product_index[prod] = pidx_l

    move_m2o = mv.select(m2o(pl.col("mid"), pl.col("label"))).to_series()
    line_json = pl.DataFrame({
        "id": pl.Series(np.arange(first_line_id, first_line_id + N, dtype=np.int64)).cast(pl.String),
        "move_id": move_m2o.gather(of),
        "partner_id": pools.partner_m2o.gather(pidx[of]),
        "product_id": pools.product_m2o.gather(product_index),
        "quantity": pl.Series(quantity).cast(pl.String),
        "price_unit": pl.Series(price_unit).cast(pl.String),
        "price_total": pl.Series(price_total).cast(pl.String),
        "l10n_br_total_nfe": pl.Series(l10n_nfe).cast(pl.String),
        "date": ('"' + mv.get_column("day_txt") + '"').gather(of),
        "write_date": ('"' + pl.from_epoch(pl.Series(created), "s").dt.strftime("%Y-%m-%d %H:%M:%S") + '"').gather(of),
    })  # fmt: skip
    lines = records(line_json, list(MODELS[LINE]))
    counts = {"moves": M, "lines": N, "product_lines": n_pl, "nf_empty_moves": len(nf_empty),
              "nf_padded_moves": len(nf_padded), **dirty_counts,
              "draft": int(draft.sum()), "cancel": int((state == "cancel").sum())}  # fmt: skip
    return Batch(moves, lines, counts)


def day_weights(days: list[date]) -> np.ndarray:
    """Invoices are issued on weekdays; a little on Saturday, almost none on Sunday."""
    w = np.array([1.0 if d.weekday() < 5 else (0.25 if d.weekday() == 5 else 0.05) for d in days])
    return w / w.sum()


def day_range(start: date, n: int) -> list[date]:
    return [start + timedelta(days=i) for i in range(n)]


def _origins(origin: np.ndarray, u: np.ndarray) -> pl.Series:
    """The order number, or (u ≥ P_ORIGIN, in equal shares) each spelling of "no order":
    null (written `false`), "" and the text "false"."""
    band = np.minimum(((u - P_ORIGIN) / (1 - P_ORIGIN) * len(ORIGIN_MISSING)).astype(np.int64), len(ORIGIN_MISSING) - 1)
    missing = pl.Series(list(ORIGIN_MISSING), dtype=pl.String).gather(np.maximum(band, 0))
    return pl.Series("origin", origin.astype(object), dtype=pl.String).zip_with(pl.Series(u < P_ORIGIN), missing)
