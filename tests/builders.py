"""Small synthetic Odoo datasets written from test code (per-row Python is fine here)."""

from __future__ import annotations

import json
from pathlib import Path

from faturamento_batch.odoo.fields import LINE, MOVE, MUNICIPIO, PARTNER, PRODUCT, TEMPLATE, USER

META = {"db": "test", "login": "admin", "password": "admin-secret-pw", "api_key": "test-api-key-secret", "uid": 2}


def build_dataset(
    path: Path,
    moves: int,
    lines_per_move: int = 3,
    *,
    cancelled: set[int] = frozenset(),
    write_date: str = "2026-01-05 10:00:00",
    first_nf: int = 100_000,
    products: int = 50,
    bad_quantity_every: int = 0,
    price: float = 10.25,
) -> Path:
    """`moves` posted NFs of `lines_per_move` distinct products each; move ids in `cancelled` are cancelled."""
    path.mkdir(parents=True, exist_ok=True)
    data: dict[str, list] = {m: [] for m in (LINE, MOVE, PARTNER, PRODUCT, TEMPLATE, MUNICIPIO, USER)}
    data[USER] = [{"id": 1, "name": "Vendedor Um", "write_date": write_date}]
    data[MUNICIPIO] = [{"id": 1, "name": "Campinas (SP)", "state_id": [1, "São Paulo"], "write_date": write_date}]
    data[PARTNER] = [
        {"id": p, "name": f"Cliente {p}", "l10n_br_cnpj": f"{p:08d}/0001-00", "l10n_br_municipio_id": [1, "Campinas (SP)"],
         "state_id": [1, "São Paulo (BR)"], "user_id": [1, "Vendedor Um"], "write_date": write_date}
        for p in range(1, 21)
    ]  # fmt: skip
    for p in range(1, products + 1):
        data[TEMPLATE].append({"id": p, "name": f"Produto {p}", "default_code": f"P{p:05d}", "gross_weight": 1.5, "write_date": write_date})
        data[PRODUCT].append({"id": p, "name": f"Produto {p}", "code": f"P{p:05d}", "weight": 1.2, "product_tmpl_id": [p, f"Produto {p}"], "write_date": write_date})
    line_id = 0
    for m in range(1, moves + 1):
        partner = (m % 20) + 1
        data[MOVE].append({
            "id": m, "name": f"VND/{m}", "state": "cancel" if m in cancelled else "posted",
            "l10n_br_numero_nota_fiscal": str(first_nf + m), "l10n_br_tipo_pedido": "venda", "date": "2026-01-05",
            "invoice_origin": f"PED{m}", "l10n_br_cnpj": False, "invoice_partner_display_name": False,
            "invoice_user_id": [1, "Vendedor Um"], "team_id": [1, "Vendas"], "invoice_incoterm_id": [1, "[CIF] CIF"],
            "write_date": write_date,
        })  # fmt: skip
        for k in range(lines_per_move):
            line_id += 1
            product = ((m * 7 + k) % products) + 1
            qty = 0.0 if bad_quantity_every and line_id % bad_quantity_every == 0 else float(k + 1)
            data[LINE].append({
                "id": line_id, "move_id": [m, f"VND/{m}"], "partner_id": [partner, f"Cliente {partner}"],
                "product_id": [product, f"Produto {product}"], "quantity": qty, "price_unit": price,
                "price_total": round(qty * price, 2), "l10n_br_total_nfe": round(qty * price, 2),
                "date": "2026-01-05", "write_date": write_date,
            })  # fmt: skip
    for model, records in data.items():
        (path / f"{model}.json").write_text(json.dumps(records))
    (path / "meta.json").write_text(json.dumps(META))
    return path
