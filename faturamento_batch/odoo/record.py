"""`faturamento-batch record`: capture a real Odoo's payloads into a dataset directory.

Turns a production incident into a regression test: the invoice lines of the
moves dated in [since, until) that the job's domain selects — every line of
those moves, product or not, so the dataset is what Odoo holds — and the
related records they point at, written exactly as `search_read` returned them
(the DESIGN §3 format). With `anonymize`, CNPJs, people's and companies' names
and e-mail addresses are replaced consistently (the same input gives the same
output within one recording, with a random key so the CNPJs cannot be guessed
back from their replacements).

This is a capture tool, not the sync's data path: it edits records one by one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from .fields import LINE, MODELS, MOVE, MOVE_STATES, PARTNER, RELATED_IDS_FROM, TIPOS_PEDIDO, USER, dataset_file
from .transport import Transport

ID_CHUNK = 2_000
REPLAY_META = {"db": "recorded", "login": "admin", "password": "admin", "api_key": "recorded-api-key", "uid": 2}
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


@dataclass(frozen=True)
class RecordSummary:
    path: Path
    records: dict[str, int]
    calls: int


class Anonymizer:
    def __init__(self) -> None:
        self.key = secrets.token_bytes(16)

    def _digest(self, kind: str, value: str) -> str:
        return hmac.new(self.key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()

    def name(self, value, prefix: str):
        return value if not value else f"{prefix} {self._digest('name', value)[:8].upper()}"

    def cnpj(self, value):
        if not value:
            return value
        base = [int(c, 16) % 10 for c in self._digest("cnpj", value)[:8]] + [0, 0, 0, 1]
        for weights in ([5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2], [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]):
            rest = sum(d * w for d, w in zip(base, weights)) % 11
            base.append(0 if rest < 2 else 11 - rest)
        d = "".join(map(str, base))
        return f"{d[:2]}.{d[2:5]}.{d[5:8]}/{d[8:12]}-{d[12:]}"

    def text(self, value):
        if not isinstance(value, str):
            return value
        return _EMAIL.sub(lambda m: f"user{self._digest('email', m.group(0))[:8]}@example.com", value)

    def link(self, value, prefix: str):
        return [value[0], self.name(value[1], prefix)] if isinstance(value, list) and len(value) == 2 else value

    def apply(self, model: str, rec: dict) -> dict:
        rec = {k: self.text(v) for k, v in rec.items()}
        if model == PARTNER:
            rec["name"] = self.name(rec.get("name"), "Cliente")
            rec["l10n_br_cnpj"] = self.cnpj(rec.get("l10n_br_cnpj"))
            rec["user_id"] = self.link(rec.get("user_id"), "Vendedor")
        elif model == MOVE:
            rec["l10n_br_cnpj"] = self.cnpj(rec.get("l10n_br_cnpj"))
            rec["invoice_partner_display_name"] = self.name(rec.get("invoice_partner_display_name"), "Cliente")
            rec["invoice_user_id"] = self.link(rec.get("invoice_user_id"), "Vendedor")
        elif model == LINE:
            rec["partner_id"] = self.link(rec.get("partner_id"), "Cliente")
        elif model == USER:
            rec["name"] = self.name(rec.get("name"), "Vendedor")
        return rec


def _search_read(transport: Transport, model: str, domain: list, fields: list[str]) -> list[dict]:
    out: list[dict] = []
    last_id = 0
    while True:
        body = transport.call(model, "search_read", [[("id", ">", last_id), *domain]],
                              {"fields": fields, "order": "id asc", "limit": ID_CHUNK, "context": {"active_test": False}})  # fmt: skip
        page = transport.decode(body)
        if not page:
            return out
        out.extend(page)
        last_id = max(r["id"] for r in page)


def record(transport: Transport, dest: Path | str, since: date, until: date, anonymize: bool = False) -> RecordSummary:
    """Write the dataset of moves dated in [since, until) to `dest`; returns what was written."""
    dest = Path(dest)
    transport.authenticate()
    move_domain = [("l10n_br_tipo_pedido", "in", list(TIPOS_PEDIDO)), ("state", "in", list(MOVE_STATES)),
                   ("date", ">=", since.isoformat()), ("date", "<", until.isoformat())]  # fmt: skip
    data: dict[str, list[dict]] = {MOVE: _search_read(transport, MOVE, move_domain, list(MODELS[MOVE]))}
    move_ids = [m["id"] for m in data[MOVE]]
    data[LINE] = [
        rec
        for i in range(0, len(move_ids), ID_CHUNK)
        for rec in _search_read(transport, LINE, [("move_id", "in", move_ids[i : i + ID_CHUNK])], list(MODELS[LINE]))
    ]
    for model, sources in RELATED_IDS_FROM.items():
        if model == MOVE:
            continue
        ids = sorted({r[f][0] for src, f in sources for r in data.get(src, []) if isinstance(r.get(f), list) and r[f]})
        data[model] = [
            rec
            for i in range(0, len(ids), ID_CHUNK)
            for rec in _search_read(transport, model, [("id", "in", ids[i : i + ID_CHUNK])], list(MODELS[model]))
        ]
    if anonymize:
        anon = Anonymizer()
        data = {model: [anon.apply(model, r) for r in recs] for model, recs in data.items()}
    dest.mkdir(parents=True, exist_ok=True)
    for model, recs in data.items():
        (dest / dataset_file(model)).write_text(json.dumps(recs, ensure_ascii=False))
    (dest / "meta.json").write_text(json.dumps(REPLAY_META))
    return RecordSummary(dest, {m: len(r) for m, r in data.items()}, transport.calls)
