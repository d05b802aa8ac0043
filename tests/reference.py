"""A row-by-row reference implementation of docs/rules.md (DESIGN §3–§5).

Plain Python on purpose — dicts, `Decimal`, loops — written from the rules
page, not from the vectorized code, so `tests/test_reference.py` can check
that `transform` + `compute_changeset` agree with it on random datasets.
Per-row code is allowed here and only here.

`reference_transform` takes the raw records as Odoo sends them (many2one
``[id, "name"]`` or ``false``) for every model, applies the line domain and
the incremental window, then the mapping, rejection and merge rules.
`reference_changeset` takes the reference lines and an existing database
state and returns every ChangeSet part as a list of dicts.

Readings taken where docs/rules.md leaves room (the implementation agrees):
- fallbacks are chains: a related record's blank value falls through to the
  next source (municipio: record name → many2one display name; vendedor alike);
- estado for a plain municipio name: the UF of the municipio's state, else the
  UF of the partner's state (a state name that maps to no UF falls through);
- valor: l10n_br_total_nfe when the float Odoo sent is non-zero, else price_total;
- number_out_of_range also covers peso_total (a weight);
- nf_number_on_several_moves counts every move of the batch's in-domain lines,
  also moves whose lines are all rejected for another reason;
- a repeated line id: the domain is applied to each copy, then the first copy
  that passes wins (what Odoo would return); a repeated related record: first wins;
- "first row" of an NF and "lowest-id line" of a product code: the lowest Odoo
  line id folded into the row.
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext

LINE = "account.move.line"
MOVE = "account.move"
PARTNER = "res.partner"
PRODUCT = "product.product"
TEMPLATE = "product.template"
MUNICIPIO = "l10n_br_ciel_it_account.res.municipio"
USER = "res.users"

# Production's rules (DESIGN §10): five invoice types, company 5's moves excluded.
TIPOS_PEDIDO = ("venda", "bonificacao", "industrializacao", "exportacao", "venda-industrializacao")
EXCLUDED_COMPANIES = (5,)
MOVE_STATES = ("posted", "cancel")

# faturamento_produto column widths (DESIGN appendix).
WIDTH = {
    "numero_nf": 20, "cnpj_cliente": 20, "nome_cliente": 255, "municipio": 100, "estado": 2,
    "vendedor": 100, "equipe_vendas": 100, "incoterm": 20, "cod_produto": 50, "nome_produto": 200,
    "origem": 20, "status_nf": 20,
}  # fmt: skip
CADASTRO_NAME_WIDTH = 255  # cadastro_palletizacao.nome_produto
# (precision, scale) of the numeric columns.
NUMERIC = {"qtd": (15, 3), "preco": (15, 4), "valor": (15, 2), "peso": (15, 3)}

LINE_VALUE_COLUMNS = (
    "numero_nf", "data_fatura", "cnpj_cliente", "nome_cliente", "municipio", "estado", "vendedor",
    "equipe_vendas", "incoterm", "cod_produto", "nome_produto", "qtd_produto_faturado",
    "preco_produto_faturado", "valor_produto_faturado", "peso_unitario_produto", "peso_total", "origem",
    "status_nf",
)  # fmt: skip
KEY = ("numero_nf", "cod_produto")
DRIFT_COLUMNS = tuple(c for c in LINE_VALUE_COLUMNS if c not in KEY and c != "status_nf")
HEADER_COLUMNS = (
    "data_fatura", "cnpj_cliente", "nome_cliente", "municipio", "estado", "origem", "incoterm", "vendedor",
    "equipe_vendas",
)  # fmt: skip
CONSOLIDATION_COLUMNS = (
    "numero_nf", "data_fatura", "cnpj_cliente", "nome_cliente", "valor_total", "peso_bruto", "municipio",
    "estado", "origem", "incoterm", "vendedor", "equipe_vendas", "ativo",
)  # fmt: skip

STATUS_BY_STATE = {"posted": "Lançado", "cancel": "Cancelado", "draft": "Provisório"}
STATUS_CLASS = {"Lançado": "posted", "SEM_LOTE": "posted", "Cancelado": "cancel", "Provisório": "draft"}

STATE_NAMES = {
    "Acre": "AC", "Alagoas": "AL", "Amapá": "AP", "Amazonas": "AM", "Bahia": "BA", "Ceará": "CE",
    "Distrito Federal": "DF", "Espírito Santo": "ES", "Goiás": "GO", "Maranhão": "MA", "Mato Grosso": "MT",
    "Mato Grosso do Sul": "MS", "Minas Gerais": "MG", "Pará": "PA", "Paraíba": "PB", "Paraná": "PR",
    "Pernambuco": "PE", "Piauí": "PI", "Rio de Janeiro": "RJ", "Rio Grande do Norte": "RN",
    "Rio Grande do Sul": "RS", "Rondônia": "RO", "Roraima": "RR", "Santa Catarina": "SC", "São Paulo": "SP",
    "Sergipe": "SE", "Tocantins": "TO",
}  # fmt: skip
UFS = frozenset(STATE_NAMES.values())

_CTX = Context(prec=100)
_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


# --------------------------------------------------------------------------- values


def text(value) -> str | None:
    """An Odoo text value → cleaned text, or None (false, true, empty, blank)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):  # a number sent for a text field is taken as its digits
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    return value or None


def cut(value: str | None, column: str) -> str | None:
    if value is None:
        return None
    value = value[: WIDTH[column]].rstrip()
    return value or None


def m2o(value) -> tuple[int | None, str | None]:
    """many2one ``[id, "name"]`` → (id, cleaned display name); false → (None, None)."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        rid = value[0] if isinstance(value[0], int) and not isinstance(value[0], bool) else None
        return rid, text(value[1])
    return None, None


def number(value) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return None


def to_decimal(value: float | None, column: str) -> Decimal | None:
    """Odoo's float read as its shortest text, rounded half away from zero; None when not a finite number."""
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    _, scale = NUMERIC[column]
    rounded = Decimal(repr(value)).quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP, context=_CTX)
    return rounded.copy_abs() if rounded.is_zero() else rounded  # -0.004 → 0.00, not -0.00


def in_range(value: Decimal | None, column: str) -> bool:
    if value is None:
        return False
    precision, scale = NUMERIC[column]
    return abs(value) < Decimal(10) ** (precision - scale)


def parse_date(value) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        return None


def parse_datetime(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, _DATETIME_FORMAT)
    except ValueError:
        return None


def _fold(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


_UF_BY_FOLDED_NAME = {_fold(name): uf for name, uf in STATE_NAMES.items()}
_SUFFIX = re.compile(r"\s*\([^()]*\)$")
_CITY_UF = re.compile(r"^(.*?)\s*\(([A-Za-z]{2})\)$", re.DOTALL)


def uf_from_state_name(name: str | None) -> str | None:
    """A state's display name ("São Paulo", "sao paulo (BR)", "SP") → its UF, else None."""
    if name is None:
        return None
    folded = _SUFFIX.sub("", _fold(name).strip()).strip()
    if folded in _UF_BY_FOLDED_NAME:
        return _UF_BY_FOLDED_NAME[folded]
    if len(folded) == 2 and folded.upper() in UFS:
        return folded.upper()
    return None


def two_letters(uf: str | None) -> str | None:
    return uf if uf is not None and re.fullmatch(r"[A-Z]{2}", uf) else None


def incoterm(display: str | None) -> str | None:
    if display is None:
        return None
    start = display.find("[")
    end = display.find("]", start + 1) if start >= 0 else -1
    if start >= 0 and end >= 0:
        inside = display[start + 1 : end].strip()
        if inside:
            return inside
    return display


def status_class(status: str | None) -> str | None:
    return STATUS_CLASS.get(status, status)


# --------------------------------------------------------------------------- domain


def _first_by_id(records: list[dict]) -> dict[int, dict]:
    out: dict[int, dict] = {}
    for record in records:
        rid = record.get("id")
        if isinstance(rid, int) and rid not in out:
            out[rid] = record
    return out


def domain_lines(records_by_model: dict[str, list[dict]], since: datetime | None) -> list[dict]:
    """The line records an Odoo returns for the job's domain and window, repeated ids → first."""
    moves = _first_by_id(records_by_model.get(MOVE, []))

    def move_of(line):
        return moves.get(m2o(line.get("move_id"))[0])

    def in_domain(line):
        move = move_of(line)
        return (
            m2o(line.get("product_id"))[0] is not None
            and move is not None
            and move.get("l10n_br_tipo_pedido") in TIPOS_PEDIDO
            and move.get("state") in MOVE_STATES
            # Odoo's `not in` keeps a move without a company
            and m2o(move.get("company_id"))[0] not in EXCLUDED_COMPANIES
        )

    lines = [line for line in records_by_model.get(LINE, []) if in_domain(line)]
    if since is not None:

        def changed(line):
            own = parse_datetime(line.get("write_date"))
            move = parse_datetime(move_of(line).get("write_date"))
            return (own is not None and own >= since) or (move is not None and move >= since)

        window = {m2o(line["move_id"])[0] for line in lines if changed(line)}
        lines = [line for line in lines if m2o(line["move_id"])[0] in window]
    return list(_first_by_id(lines).values())


# --------------------------------------------------------------------------- transform


def _map_line(line: dict, rel: dict[str, dict[int, dict]]) -> tuple[dict, str | None]:
    """One Odoo line → (mapped values, first rejection reason or None)."""
    move_id, _ = m2o(line.get("move_id"))
    product_id, product_display = m2o(line.get("product_id"))
    partner_id, partner_display = m2o(line.get("partner_id"))
    move = rel[MOVE].get(move_id)
    product = rel[PRODUCT].get(product_id)
    partner = rel[PARTNER].get(partner_id) or {}
    template = rel[TEMPLATE].get(m2o(product.get("product_tmpl_id"))[0]) if product else None
    mv = move or {}
    tpl = template or {}

    numero_nf = cut(text(mv.get("l10n_br_numero_nota_fiscal")), "numero_nf")
    cod_produto = cut(text(tpl.get("default_code")), "cod_produto")
    data_fatura = parse_date(mv.get("date")) or parse_date(line.get("date"))

    # municipio / estado
    muni_id, muni_display = m2o(partner.get("l10n_br_municipio_id"))
    muni = rel[MUNICIPIO].get(muni_id)
    # The record's name, else (record missing, or its name blank) the many2one's display name —
    # read as a fallback chain, like vendedor's.
    muni_name = (text(muni.get("name")) if muni is not None else None) or muni_display
    municipio, estado = muni_name, None
    match = _CITY_UF.match(muni_name) if muni_name is not None else None
    if match:
        municipio, estado = (match.group(1).strip() or None), match.group(2).upper()
    else:
        muni_state = m2o(muni.get("state_id"))[1] if muni is not None else None
        estado = uf_from_state_name(muni_state) or uf_from_state_name(m2o(partner.get("state_id"))[1])
    estado = two_letters(estado)

    def user_name(value):
        uid, display = m2o(value)
        user = rel[USER].get(uid)
        return (text(user.get("name")) if user is not None else None) or display

    vendedor = user_name(mv.get("invoice_user_id")) or user_name(partner.get("user_id"))
    product_name = text(tpl.get("name")) or (text(product.get("name")) if product else None) or product_display

    qtd_raw = number(line.get("quantity"))
    qtd = to_decimal(qtd_raw, "qtd")
    preco = to_decimal(number(line.get("price_unit")), "preco")
    nfe = number(line.get("l10n_br_total_nfe"))
    valor_raw = nfe if nfe is not None and nfe != 0 else number(line.get("price_total"))
    valor = to_decimal(valor_raw, "valor")
    peso_unit = to_decimal(number(tpl.get("gross_weight")), "peso")
    peso_total = None
    if qtd is not None and peso_unit is not None:
        peso_total = _CTX.multiply(qtd, peso_unit).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP, context=_CTX)

    values = {
        "numero_nf": numero_nf,
        "data_fatura": data_fatura,
        "cnpj_cliente": cut(text(mv.get("l10n_br_cnpj")) or text(partner.get("l10n_br_cnpj")) or "", "cnpj_cliente") or "",
        "nome_cliente": cut(
            text(mv.get("invoice_partner_display_name")) or text(partner.get("name")) or partner_display,
            "nome_cliente",
        ) or "",
        "municipio": cut(municipio, "municipio"),
        "estado": estado,
        "vendedor": cut(vendedor, "vendedor"),
        "equipe_vendas": cut(m2o(mv.get("team_id"))[1], "equipe_vendas"),
        "incoterm": cut(incoterm(m2o(mv.get("invoice_incoterm_id"))[1]), "incoterm"),
        "cod_produto": cod_produto,
        "nome_produto": cut(product_name, "nome_produto") or "",
        "qtd_produto_faturado": qtd,
        "preco_produto_faturado": preco,
        "valor_produto_faturado": valor,
        "peso_unitario_produto": peso_unit,
        "peso_total": peso_total,
        "origem": cut(text(mv.get("invoice_origin")), "origem") or "",
        "status_nf": STATUS_BY_STATE.get(mv.get("state"), "Lançado"),
        "odoo_move_id": move_id,
        "odoo_line_id": line["id"],
        # For cadastro_palletizacao: the template's name at that table's width, its gross weight as sent.
        "odoo_template_name": (product_name[:CADASTRO_NAME_WIDTH].rstrip() or "") if product_name else "",
        "odoo_gross_weight": number(tpl.get("gross_weight")),
    }

    numbers_ok = (
        in_range(qtd, "qtd") and in_range(preco, "preco") and in_range(valor, "valor")
        and in_range(peso_unit, "peso") and in_range(peso_total, "peso")
    )  # fmt: skip
    if product_id is None or product is None:
        reason = "no_product"
    elif move is None:
        reason = "no_move"
    elif text(mv.get("invoice_origin")) in (None, "false"):
        reason = "no_origin"  # an NF without a sales order: policy, not imported (DESIGN §10)
    elif qtd_raw is None or math.isnan(qtd_raw) or qtd_raw <= 0 or (qtd is not None and qtd <= 0):
        # missing, NaN or ≤ 0 (also once rounded to the column: 0.0004 is 0.000); +inf is out of range below
        reason = "quantity_not_positive"
    elif numero_nf is None:
        reason = "no_nf_number"
    elif cod_produto is None:
        reason = "no_product_code"
    elif not numbers_ok:
        reason = "number_out_of_range"
    elif data_fatura is None:
        reason = "no_invoice_date"
    else:
        reason = None
    return values, reason


def mapped_lines(records_by_model: dict[str, list[dict]], since: datetime | None = None) -> list[tuple[dict, str | None]]:
    """Every line of the batch (ascending id), mapped, with its first rejection reason (or None)."""
    batch = domain_lines(records_by_model, since)
    rel = {model: _first_by_id(records_by_model.get(model, [])) for model in (MOVE, PARTNER, PRODUCT, TEMPLATE, MUNICIPIO, USER)}
    return [_map_line(line, rel) for line in sorted(batch, key=lambda r: r["id"])]


def reference_transform(
    records_by_model: dict[str, list[dict]], since: datetime | None = None
) -> tuple[list[dict], list[dict], int, int]:
    """Raw Odoo records → (lines, rejected, in_domain, merged), row by row.

    `lines` carry the LINE_VALUES columns plus `odoo_move_id`, `odoo_line_count`,
    `odoo_template_name`, `odoo_gross_weight` (for new products) and
    `odoo_line_id` (the lowest Odoo line id folded into the row).
    """
    with localcontext(_CTX):  # exact sums and products, whatever the magnitude
        return _reference_transform(records_by_model, since)


def _reference_transform(records_by_model, since):
    mapped = mapped_lines(records_by_model, since)

    # The same NF number on two different moves of the batch: every valid line of it is rejected.
    moves_by_nf: dict[str, set[int]] = {}
    for values, _ in mapped:
        if values["numero_nf"] is not None and values["odoo_move_id"] is not None:
            moves_by_nf.setdefault(values["numero_nf"], set()).add(values["odoo_move_id"])
    ambiguous = {nf for nf, moves in moves_by_nf.items() if len(moves) > 1}

    rejected: list[dict] = []
    good: list[dict] = []
    for values, reason in mapped:
        if reason is None and values["numero_nf"] in ambiguous:
            reason = "nf_number_on_several_moves"
        if reason is None:
            good.append(values)
        else:
            rejected.append({
                "odoo_line_id": values["odoo_line_id"], "odoo_move_id": values["odoo_move_id"],
                "numero_nf": values["numero_nf"], "cod_produto": values["cod_produto"], "reason": reason,
            })  # fmt: skip

    # Same NF + same product → one row.
    groups: dict[tuple, list[dict]] = {}
    for values in good:  # ascending line id
        groups.setdefault((values["numero_nf"], values["cod_produto"]), []).append(values)
    lines: list[dict] = []
    merged = 0
    for rows in groups.values():
        row = dict(rows[0])
        row["odoo_line_count"] = len(rows)
        if len(rows) > 1:
            merged += len(rows) - 1
            qtd = sum((r["qtd_produto_faturado"] for r in rows), Decimal(0))
            amount = sum((r["qtd_produto_faturado"] * r["preco_produto_faturado"] for r in rows), Decimal(0))
            row["qtd_produto_faturado"] = qtd
            row["valor_produto_faturado"] = sum((r["valor_produto_faturado"] for r in rows), Decimal(0))
            row["peso_total"] = sum((r["peso_total"] for r in rows), Decimal(0))
            row["preco_produto_faturado"] = _CTX.divide(amount, qtd).quantize(
                Decimal("0.0001"), rounding=ROUND_HALF_UP, context=_CTX
            )
        lines.append(row)
    return lines, rejected, len(mapped), merged


# --------------------------------------------------------------------------- diff


def consolidate(lines: list[dict]) -> dict[str, dict]:
    """One relatorio_faturamento_importado row per NF of `lines` (header from its lowest-id row)."""
    out: dict[str, dict] = {}
    for row in sorted(lines, key=lambda r: r["odoo_line_id"]):
        nf = row["numero_nf"]
        if nf not in out:
            out[nf] = {
                "numero_nf": nf, **{c: row[c] for c in HEADER_COLUMNS},
                "valor_total": Decimal(0), "peso_bruto": Decimal(0), "ativo": row["status_nf"] != "Cancelado",
            }  # fmt: skip
        out[nf]["valor_total"] += row["valor_produto_faturado"]
        if row["peso_total"] is not None:
            out[nf]["peso_bruto"] += row["peso_total"]
    for cons in out.values():
        cons["valor_total"] = float(cons["valor_total"])
        cons["peso_bruto"] = float(cons["peso_bruto"])
    return {nf: {c: cons[c] for c in CONSOLIDATION_COLUMNS} for nf, cons in out.items()}


def reference_changeset(
    lines: list[dict],
    existing_rows: list[dict],
    existing_codes: set[str] | list[str],
    existing_consolidation: list[dict],
    full: bool,
    apply_drift: bool,
    rejected: list[dict] = (),
) -> dict[str, list[dict]]:
    """Every ChangeSet part as a list of dicts, plus `downstream` NF lists."""
    existing = {(r["numero_nf"], r["cod_produto"]): r for r in existing_rows}
    incoming = {(r["numero_nf"], r["cod_produto"]): r for r in lines}
    nf_status = {r["numero_nf"]: r["status_nf"] for r in lines}

    inserts = [{c: r[c] for c in LINE_VALUE_COLUMNS} for k, r in incoming.items() if k not in existing]

    status_changes = []
    for (nf, cod), r in existing.items():
        if nf in nf_status and status_class(r["status_nf"]) != status_class(nf_status[nf]):
            status_changes.append({"numero_nf": nf, "cod_produto": cod, "status_from": r["status_nf"], "status_nf": nf_status[nf]})
    cancellations = sorted({s["numero_nf"] for s in status_changes if s["status_nf"] == "Cancelado"})
    reactivations = sorted({
        s["numero_nf"] for s in status_changes
        if status_class(s["status_from"]) == "cancel" and status_class(s["status_nf"]) == "posted"
    })  # fmt: skip

    drift = []
    for k, r in incoming.items():
        if k in existing:
            fields = [c for c in DRIFT_COLUMNS if r[c] != existing[k][c]]
            if fields:
                drift.append({"numero_nf": k[0], "cod_produto": k[1], "drift_fields": fields})

    codes = set(existing_codes)
    new_products = []
    for r in sorted(lines, key=lambda r: r["odoo_line_id"]):
        if r["cod_produto"] not in codes:
            codes.add(r["cod_produto"])
            peso = r["odoo_gross_weight"]
            new_products.append({
                "cod_produto": r["cod_produto"], "nome_produto": r["odoo_template_name"], "palletizacao": 1.0,
                "peso_bruto": peso if peso is not None and peso > 0 else 1.0,
            })  # fmt: skip

    computed = consolidate(lines)
    stored = {r["numero_nf"]: r for r in existing_consolidation}
    if full:
        candidates = set(computed)
    else:
        candidates = {r["numero_nf"] for r in inserts} | {s["numero_nf"] for s in status_changes}
        if apply_drift:
            candidates |= {d["numero_nf"] for d in drift}
        candidates |= {nf for nf in computed if nf not in stored}
    consolidation = [
        computed[nf] for nf in sorted(candidates & set(computed))
        if nf not in stored or any(computed[nf][c] != stored[nf][c] for c in CONSOLIDATION_COLUMNS)
    ]

    orphans = []
    if full:
        have = set(incoming) | {(r["numero_nf"], r["cod_produto"]) for r in rejected}
        orphans = [{"numero_nf": k[0], "cod_produto": k[1], "status_nf": r["status_nf"]} for k, r in existing.items() if k not in have]

    existing_nfs = {nf for nf, _ in existing}
    nfs_changed = {s["numero_nf"] for s in status_changes} | ({d["numero_nf"] for d in drift} if apply_drift else set())
    nfs_inserted = {r["numero_nf"] for r in inserts}
    downstream = {
        "nfs_inserted": sorted(nfs_inserted),
        "nfs_changed": sorted(nfs_changed),
        "cnpjs_touched": sorted({
            r["cnpj_cliente"] for r in lines if r["numero_nf"] in nfs_inserted | nfs_changed and r["cnpj_cliente"]
        }),  # fmt: skip
        "nfs_to_reprocess": sorted({r["numero_nf"] for r in lines if r["numero_nf"] not in existing_nfs} | set(reactivations)),
    }
    return {
        "inserts": inserts,
        "status_changes": status_changes,
        "drift": drift,
        "cancellations": [{"numero_nf": nf} for nf in cancellations],
        "reactivations": [{"numero_nf": nf} for nf in reactivations],
        "new_products": new_products,
        "consolidation": consolidation,
        "orphans": orphans,
        "downstream": downstream,
    }
