"""Deterministic, realistic Odoo datasets (DESIGN §3 format) for tests, demos and benchmarks.

`generate_dataset` writes a dataset directory — one ``<model>.json`` per model in
`odoo.fields.MODELS`, records exactly as ``search_read`` returns them, plus
``meta.json`` — with the given number of account.move.line records. The same
(lines, seed, start, days) always gives the same bytes.

`generate_next_day` reads such a dataset and writes the whole Odoo state one day
later: new NFs, cancellations (the move's write_date moves, its lines' does not),
reactivations, a little drift on lines, and edits of related records (a partner
renamed, a template's gross weight changed) whose own write_date moves but whose
lines' does not. Every write_date it sets is later than every write_date of the
day before, so an incremental run from the old cursor sees exactly those changes.

What the data holds — shares of each clean, odd and dirty case — is listed in the
constants of `entities` (and, for the next day, the NEXT_* constants here).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from . import reference_data as ref
from .entities import ADMIN_UID, epoch_seconds, make_entities, pools_from_records, ts_text
from .moves import Batch, day_range, day_weights, make_moves_and_lines
from .json_text import dict_records, read_record_texts, write_records
from ..odoo.fields import LINE, MODELS, MOVE, MUNICIPIO, PARTNER, PRODUCT, TEMPLATE, TIPOS_PEDIDO, USER, dataset_file

log = logging.getLogger(__name__)

META = {"db": "demo", "login": "admin", "password": "admin", "api_key": "demo-api-key", "uid": ADMIN_UID}

# Next-day change shares.
NEXT_NEW_LINES = 0.01  # new lines, as a share of the day before's lines
NEXT_CANCEL = 0.005  # share of posted in-domain NFs cancelled
NEXT_REACTIVATE = 0.05  # share of cancelled in-domain NFs posted again
NEXT_DRIFT = 0.001  # share of lines whose quantity/price is edited
NEXT_RENAME = 0.002  # share of partners renamed
NEXT_GROSS = 0.005  # share of templates whose gross weight changes


@dataclass(frozen=True)
class GenerateSummary:
    path: Path
    lines: int
    moves: int
    partners: int
    products: int
    seconds: float


def _seed(*parts: int) -> np.random.Generator:
    # SeedSequence wants non-negative entropy; any int seed is accepted.
    return np.random.default_rng([p % (1 << 63) for p in parts])


def generate_dataset(
    dest: Path | str, lines: int, seed: int = 0, start: date = date(2026, 1, 5), days: int = 20
) -> GenerateSummary:
    """Write a dataset of about `lines` account.move.line records (≈70 % product lines) to `dest`."""
    started = time.perf_counter()
    if lines < 1:
        raise ValueError(f"lines must be at least 1, not {lines}")
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    rng = _seed(seed, lines, start.toordinal(), days)

    # Sizes scale down for small datasets so each product/customer still has several lines.
    n_products = min(2000, max(20, lines // 5))
    n_partners = min(5000, max(30, lines // 20))
    ent = make_entities(rng, n_products, n_partners, before=start)
    pools = pools_from_records(ent["partners"], ent["products"], ent["templates"], ent["users"])
    dlist = day_range(start, days)
    batch = make_moves_and_lines(
        rng, pools, lines,
        first_move_id=10_001, first_line_id=100_001, first_nf=123_456, seq_last={},
        days=dlist, day_p=day_weights(dlist), end_ts=epoch_seconds(start) + days * 86400 - 1, force_dirty=True,
    )  # fmt: skip
    written = _write(dest, {
        USER: [dict_records(ent["users"])], MUNICIPIO: [dict_records(ent["municipios"])],
        PARTNER: [dict_records(ent["partners"])], PRODUCT: [dict_records(ent["products"])],
        TEMPLATE: [dict_records(ent["templates"])], MOVE: [batch.moves], LINE: [batch.lines],
    }, json.dumps(META).encode())  # fmt: skip
    summary = GenerateSummary(dest, written[LINE], written[MOVE], written[PARTNER], written[PRODUCT],
                              time.perf_counter() - started)  # fmt: skip
    log.info("generated %s: %s in %.1fs", dest, _describe(batch), summary.seconds)
    return summary


def _write(dest: Path, parts: dict[str, list], meta: bytes) -> dict[str, int]:
    counts = {model: write_records(dest / dataset_file(model), parts[model]) for model in MODELS}
    (dest / "meta.json").write_bytes(meta)
    return counts


def _describe(batch: Batch) -> str:
    return ", ".join(f"{k}={v}" for k, v in batch.counts.items())


def _load(path: Path) -> tuple[list[str], list[dict]]:
    """A small model's record texts and records."""
    texts = read_record_texts(path)
    return texts.to_list(), json.loads("[" + ",".join(texts.to_list()) + "]")


def _scalar(texts: pl.Series, field: str) -> pl.Series:
    """A scalar field straight from record texts (`false` → null, strings unquoted, not unescaped)."""
    raw = texts.str.extract(rf'"{field}": ("(?:[^"\\]|\\.)*"|[-0-9.eE+]+|false|true|null)', 1)
    return (
        pl.select(
            pl.when(raw.str.starts_with('"')).then(raw.str.slice(1, raw.str.len_chars() - 2))
            .when(raw.is_in(["false", "null", "true"]).not_()).then(raw)
        ).to_series().alias(field)
    )  # fmt: skip


_MOVE_NAME = r"^([A-Z]+)/(\d{4})/(\d+)$"


def _pick(rng: np.random.Generator, pool: np.ndarray, share: float, minimum: int = 1) -> np.ndarray:
    k = min(len(pool), max(minimum, int(round(share * len(pool))))) if len(pool) else 0
    return np.sort(rng.choice(pool, size=k, replace=False)) if k else pool[:0]


def _rewrite(texts: pl.Series, idx: np.ndarray, edit) -> pl.Series:
    """Parse only the records at `idx`, apply `edit(record, k)`, and put them back."""
    if not len(idx):
        return texts
    new = []
    for k, text in enumerate(texts.gather(idx).to_list()):
        rec = json.loads(text)
        edit(rec, k)
        new.append(json.dumps(rec, ensure_ascii=False))
    return texts.scatter(idx, pl.Series(new, dtype=pl.String))


def generate_next_day(of: Path | str, dest: Path | str, seed: int = 0) -> GenerateSummary:
    """Write to `dest` the whole Odoo state of the day after the dataset at `of`."""
    started = time.perf_counter()
    of, dest = Path(of), Path(dest)
    if of.resolve() == dest.resolve():
        raise ValueError("the next day must be written to another directory than the day it follows")
    lines = read_record_texts(of / dataset_file(LINE))
    moves = read_record_texts(of / dataset_file(MOVE))
    small = {m: _load(of / dataset_file(m)) for m in (PARTNER, PRODUCT, TEMPLATE, MUNICIPIO, USER)}
    partners, templates = small[PARTNER][1], small[TEMPLATE][1]

    # The day after the latest write anywhere: every write of that day is later than the cursor.
    last_write = max(
        [_scalar(t, "write_date").max() or "" for t in (lines, moves)]
        + [str(r.get("write_date") or "") for _, recs in small.values() for r in recs]
    )
    if not last_write:
        raise ValueError(f"`{of}` holds no write_date: not a dataset")
    day = datetime.strptime(last_write, "%Y-%m-%d %H:%M:%S").date() + timedelta(days=1)
    line_ids = _scalar(lines, "id").cast(pl.Int64)
    max_line_id = int(line_ids.max() or 100_000)
    rng = _seed(seed, lines.len(), max_line_id, day.toordinal())
    day0 = epoch_seconds(day)

    def stamps(n: int) -> list[str]:
        return [ts_text(int(s)) for s in np.sort(day0 + rng.integers(6 * 3600, 22 * 3600, n))]

    # Cancellations and reactivations: the move changes, its lines do not.
    mv = pl.DataFrame([_scalar(moves, f) for f in ("id", "name", "state", "l10n_br_numero_nota_fiscal",
                                                   "l10n_br_tipo_pedido")])  # fmt: skip
    mv = mv.with_columns(
        pl.col("id").cast(pl.Int64), pl.col("l10n_br_numero_nota_fiscal").str.strip_chars().alias("nf")
    )
    in_domain = pl.col("l10n_br_tipo_pedido").is_in(list(TIPOS_PEDIDO)) & (pl.col("nf").fill_null("") != "")
    flags = mv.select(
        (in_domain & (pl.col("state") == "posted")).fill_null(False).alias("posted"),
        (in_domain & (pl.col("state") == "cancel")).fill_null(False).alias("cancel"),
    )
    posted = np.flatnonzero(flags.get_column("posted").to_numpy())
    to_cancel = _pick(rng, posted, NEXT_CANCEL)
    to_react = _pick(rng, np.flatnonzero(flags.get_column("cancel").to_numpy()), NEXT_REACTIVATE)
    changed = np.concatenate([to_cancel, to_react])
    order = np.argsort(changed, kind="stable")
    new_state = np.array(["cancel"] * len(to_cancel) + ["posted"] * len(to_react))[order]
    move_wd = stamps(len(changed))
    moves = _rewrite(moves, changed[order], lambda r, k: r.update(state=str(new_state[k]), write_date=move_wd[k]))

    # Drift: a few posted product lines get another quantity or price, and a new write_date.
    move_ids = mv.get_column("id").to_numpy()
    drift_moves = set(move_ids[posted].tolist()) - set(move_ids[changed].tolist())
    valid_products = _valid_products(small[PRODUCT][1], templates)
    n_drift = max(1, int(round(NEXT_DRIFT * lines.len()))) if lines.len() else 0
    tries = rng.permutation(lines.len())[: n_drift * 6 + 50]
    chosen = []
    for idx, text in zip(tries.tolist(), lines.gather(tries).to_list()):
        rec = json.loads(text)
        if (rec.get("product_id") and rec["product_id"][0] in valid_products and rec.get("move_id")
                and rec["move_id"][0] in drift_moves and (rec.get("quantity") or 0) > 0):  # fmt: skip
            chosen.append(idx)
            if len(chosen) == n_drift:
                break
    chosen = np.sort(np.array(chosen, dtype=np.int64))
    line_wd = stamps(len(chosen))

    def drift(rec: dict, k: int) -> None:
        _drift(rng, rec)
        rec["write_date"] = line_wd[k]

    lines = _rewrite(lines, chosen, drift)

    # Related edits: their own write_date moves, the lines' does not.
    renamed_old, renamed_new = [], []
    to_rename = _pick(rng, np.arange(len(partners)), NEXT_RENAME)
    for idx, wd in zip(to_rename.tolist(), stamps(len(to_rename))):
        p = partners[idx]
        new_name = " ".join([str(rng.choice(ref.PARTNER_PREFIXES)), str(rng.choice(ref.PARTNER_SURNAMES)),
                             "S.A.", f"(ANTIGA {str(p['name'])[:40].strip()})"])  # fmt: skip
        renamed_old.append('"partner_id": ' + json.dumps([p["id"], p["name"]], ensure_ascii=False))
        renamed_new.append('"partner_id": ' + json.dumps([p["id"], new_name], ensure_ascii=False))
        p["name"], p["write_date"] = new_name, wd
        small[PARTNER][0][idx] = json.dumps(p, ensure_ascii=False)
    if renamed_old:
        # Odoo renders a many2one's display name at read time: the lines show the new name.
        lines = lines.str.replace_many(renamed_old, renamed_new)
    to_weigh = _pick(rng, np.arange(len(templates)), NEXT_GROSS)
    for idx, wd in zip(to_weigh.tolist(), stamps(len(to_weigh))):
        t = templates[idx]
        t["gross_weight"] = round(float(t.get("gross_weight") or 1.0) * float(rng.uniform(1.02, 1.10)) + 0.001, 3)
        t["write_date"] = wd
        small[TEMPLATE][0][idx] = json.dumps(t, ensure_ascii=False)

    # New NFs of the day, numbered after the last ones.
    seqs = (
        mv.select(pl.col("name").str.extract_groups(_MOVE_NAME).alias("g")).unnest("g")
        .drop_nulls().group_by(pl.nth(0), pl.nth(1)).agg(pl.nth(2).cast(pl.Int64).max())
    )  # fmt: skip
    # One entry per (journal, year): a handful, the generator's bookkeeping, not invoice data.
    journal, year, last = (seqs.get_column(c).to_list() for c in seqs.columns)
    seq_last = dict(zip(zip(journal, map(int, year)), last))
    nfs = mv.get_column("nf").filter(mv.get_column("nf").str.contains(r"^\d+$").fill_null(False)).cast(pl.Int64)
    pools = pools_from_records(partners, small[PRODUCT][1], templates, small[USER][1])
    batch = make_moves_and_lines(
        rng, pools, max(5, int(round(NEXT_NEW_LINES * lines.len()))),
        first_move_id=int(move_ids.max(initial=10_000)) + 1, first_line_id=max_line_id + 1,
        first_nf=int(nfs.max() or 123_455) + 1, seq_last=seq_last,
        days=[day], day_p=np.array([1.0]), end_ts=day0 + 86399, force_dirty=False,
    )  # fmt: skip

    dest.mkdir(parents=True, exist_ok=True)
    meta = (of / "meta.json").read_bytes() if (of / "meta.json").exists() else json.dumps(META).encode()
    parts: dict[str, list] = {m: [small[m][0]] for m in small}
    parts[MOVE] = [moves, batch.moves]
    parts[LINE] = [lines, batch.lines]
    written = _write(dest, parts, meta)
    summary = GenerateSummary(dest, written[LINE], written[MOVE], written[PARTNER], written[PRODUCT],
                              time.perf_counter() - started)  # fmt: skip
    log.info(
        "next day %s of %s: %d cancelled, %d reactivated, %d lines drifted, %d partners renamed, "
        "%d gross weights changed; new: %s (%.1fs)",
        day, of, len(to_cancel), len(to_react), len(chosen), len(renamed_old), len(to_weigh), _describe(batch),
        summary.seconds,
    )  # fmt: skip
    return summary


def _valid_products(products: list[dict], templates: list[dict]) -> set[int]:
    coded = {t["id"] for t in templates if isinstance(t.get("default_code"), str) and t["default_code"].strip()}
    return {p["id"] for p in products if p.get("product_tmpl_id") and p["product_tmpl_id"][0] in coded}


def _drift(rng: np.random.Generator, rec: dict) -> None:
    """Change a line's quantity or price (never to a rejected value); totals follow."""
    q, p = float(rec["quantity"]), float(rec["price_unit"])
    old_total, old_nfe = float(rec.get("price_total") or 0.0), float(rec.get("l10n_br_total_nfe") or 0.0)
    if rng.random() < 0.5:
        q = q + int(rng.integers(1, 6)) if q == int(q) else round(q * float(rng.uniform(0.9, 1.1)), 3)
    else:
        p = round(p * float(rng.uniform(0.95, 1.05)), 2) or 0.01
    total = round(q * p, 2)
    if old_nfe == 0.0:
        nfe = 0.0
    elif abs(old_nfe - old_total) < 0.005 or old_total == 0.0:
        nfe = total
    else:
        nfe = round(total * old_nfe / old_total, 2)
    rec.update(quantity=q, price_unit=p, price_total=total, l10n_br_total_nfe=nfe)
