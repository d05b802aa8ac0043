"""The Odoo models and fields the job reads, declared once.

Everything that talks to Odoo (the wire client, the dataset reader, the replay
server, the generator) takes its field lists from here, so a field added in one
place cannot be forgotten in another.

Field kinds follow Odoo's own types:
- ``integer``  : the record id (never ``false``)
- ``char``     : text, ``false`` when empty
- ``float``    : number, ``0.0`` when empty (Odoo never sends ``false`` for floats)
- ``date``     : ``"YYYY-MM-DD"`` or ``false``
- ``datetime`` : ``"YYYY-MM-DD HH:MM:SS"`` in UTC, or ``false``
- ``selection``: text key, ``false`` when empty
- ``many2one`` : ``[id, "display name"]`` or ``false``
"""

from __future__ import annotations

from ..config import Rules

LINE = "account.move.line"
MOVE = "account.move"
PARTNER = "res.partner"
PRODUCT = "product.product"
TEMPLATE = "product.template"
MUNICIPIO = "l10n_br_ciel_it_account.res.municipio"
USER = "res.users"

MODELS: dict[str, dict[str, str]] = {
    LINE: {
        "id": "integer",
        "move_id": "many2one",
        "partner_id": "many2one",
        "product_id": "many2one",
        "quantity": "float",
        "price_unit": "float",
        "price_total": "float",
        "l10n_br_total_nfe": "float",
        "date": "date",
        "write_date": "datetime",
    },
    MOVE: {
        "id": "integer",
        "name": "char",
        "state": "selection",
        "l10n_br_numero_nota_fiscal": "char",
        "l10n_br_tipo_pedido": "selection",
        "date": "date",
        "invoice_origin": "char",
        "l10n_br_cnpj": "char",
        "invoice_partner_display_name": "char",
        "invoice_user_id": "many2one",
        "team_id": "many2one",
        "invoice_incoterm_id": "many2one",
        # Read for the domain's company exclusion (DESIGN §10); a dataset without it reads as
        # "no company", which no exclusion matches.
        "company_id": "many2one",
        "write_date": "datetime",
    },
    PARTNER: {
        "id": "integer",
        "name": "char",
        "l10n_br_cnpj": "char",
        "l10n_br_municipio_id": "many2one",
        "state_id": "many2one",
        "user_id": "many2one",
        "write_date": "datetime",
    },
    PRODUCT: {
        "id": "integer",
        "name": "char",
        "code": "char",
        "weight": "float",
        "product_tmpl_id": "many2one",
        "write_date": "datetime",
    },
    TEMPLATE: {
        "id": "integer",
        "name": "char",
        "default_code": "char",
        "gross_weight": "float",
        "write_date": "datetime",
    },
    MUNICIPIO: {
        "id": "integer",
        "name": "char",
        "state_id": "many2one",
        "write_date": "datetime",
    },
    USER: {
        "id": "integer",
        "name": "char",
        "write_date": "datetime",
    },
}

# Related models, in the order they are resolved from the lines: a model's ids
# come from the many2one fields of the models listed before it.
RELATED: tuple[str, ...] = (MOVE, PARTNER, PRODUCT, TEMPLATE, MUNICIPIO, USER)

# Where each related model's ids come from: (model, many2one field).
RELATED_IDS_FROM: dict[str, tuple[tuple[str, str], ...]] = {
    MOVE: ((LINE, "move_id"),),
    PARTNER: ((LINE, "partner_id"),),
    PRODUCT: ((LINE, "product_id"),),
    TEMPLATE: ((PRODUCT, "product_tmpl_id"),),
    MUNICIPIO: ((PARTNER, "l10n_br_municipio_id"),),
    USER: ((MOVE, "invoice_user_id"), (PARTNER, "user_id")),
}

# The line domain of DESIGN §3 with §10's rules (production's by default), as Odoo evaluates it.
TIPOS_PEDIDO: tuple[str, ...] = Rules().invoice_types
EXCLUDED_COMPANIES: tuple[int, ...] = Rules().excluded_companies
MOVE_STATES: tuple[str, ...] = ("posted", "cancel")


def move_domain(rules: Rules | None = None, prefix: str = "") -> list:
    """The move side of the domain: invoice type, state, company not excluded.

    `prefix` ``"move_id."`` gives the same terms for `account.move.line`. The
    company term is left out when no company is excluded; Odoo's `not in`
    matches a move without a company, so it is never excluded.
    """
    rules = rules or Rules()
    terms: list = [(f"{prefix}l10n_br_tipo_pedido", "in", list(rules.invoice_types)), (f"{prefix}state", "in", list(MOVE_STATES))]
    if rules.excluded_companies:
        terms.append((f"{prefix}company_id", "not in", list(rules.excluded_companies)))
    return terms


def line_domain(rules: Rules | None = None) -> list:
    """The line domain: product lines of the in-domain moves."""
    return [("product_id", "!=", False), *move_domain(rules, "move_id.")]


LINE_DOMAIN: list = line_domain()


def dataset_file(model: str) -> str:
    """File name of a model inside a dataset directory (DESIGN §3)."""
    return f"{model}.json"
