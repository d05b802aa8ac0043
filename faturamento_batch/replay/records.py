"""One model's records in the replay server, and how they go out on the wire.

In:  a model's records as stored in the dataset (`Table`), and the ``fields``,
     ``order`` and ``load`` arguments of an ORM call.
Out: records projected to ``fields`` (`project`), ordered as PostgreSQL would
     (`parse_order`, `sort_records`), and ``fields_get`` descriptions.
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import ConfigError
from ..odoo.fields import MODELS, MOVE, MUNICIPIO, PARTNER, dataset_file
from .domain import COMODELS
from .faults import USER_ERROR, VALUE_ERROR, OdooFault

logger = logging.getLogger(__name__)

# The targets Odoo's fields_get names for the many2ones whose model the dataset
# does not hold (odoorpc browses a many2one through its ``relation``).
OUTSIDE_COMODELS = {
    (MOVE, "team_id"): "crm.team",
    (MOVE, "invoice_incoterm_id"): "account.incoterms",
    (MOVE, "company_id"): "res.company",
    (PARTNER, "state_id"): "res.country.state",
    (MUNICIPIO, "state_id"): "res.country.state",
}


class Table:
    """One model: records sorted by id, their ids, an id index and the field kinds."""

    def __init__(self, model: str, records: list[dict]):
        self.model = model
        kept: dict[int, dict] = {}
        for rec in records:
            if not isinstance(rec, dict) or type(rec.get("id")) is not int:
                raise ConfigError(f"`{dataset_file(model)}`: every record needs an integer `id`, got {rec!r:.200}")
            kept.setdefault(rec["id"], rec)
        if len(kept) < len(records):
            logger.warning("%s: %d records with a repeated id ignored", model, len(records) - len(kept))
        self.by_id = kept
        self.ids = sorted(kept)
        self.records = [kept[i] for i in self.ids]
        self.fields = dict(MODELS.get(model, {"id": "integer"}))
        # fields a recorded dataset carries beyond the declared ones are real Odoo fields too
        seen: set[str] = set()
        for rec in self.records:
            seen.update(rec.keys())
        for name in seen - self.fields.keys():
            sample = next((r[name] for r in self.records if r.get(name) not in (None, False)), None)
            self.fields[name] = _kind_of(sample)


def _kind_of(value: Any) -> str:
    if isinstance(value, list):
        return "many2one"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    return "char"


CLASSIC_READ = "_classic_read"


def project(table: Table, records: list[dict], fields: Any, load: Any = CLASSIC_READ) -> list[dict]:
    """Copies of `records` with only `fields` (all when empty), ``id`` always first.

    `load` other than ``"_classic_read"`` (odoorpc sends ``"_classic_write"``)
    gives a many2one as its bare id instead of ``[id, "name"]``, as Odoo does.
    """
    if fields in (None, False, []):
        out = [dict(r) for r in records]
    else:
        if isinstance(fields, str) or not isinstance(fields, (list, tuple)):
            raise OdooFault(USER_ERROR, f"fields must be a list of field names, got {fields!r:.200}")
        for name in fields:
            if name not in table.fields:
                raise OdooFault(VALUE_ERROR, f"Invalid field {name!r} on model {table.model!r}")
        names = [f for f in dict.fromkeys(fields) if f != "id"]
        out = [{"id": r["id"], **{f: r.get(f, False) for f in names}} for r in records]
    if load != CLASSIC_READ:
        many2one = [f for f, kind in table.fields.items() if kind == "many2one"]
        for rec in out:
            for name in many2one:
                if isinstance(rec.get(name), list):
                    rec[name] = rec[name][0] if rec[name] else False
    return out


def parse_order(order: Any, table: Table) -> list[tuple[str, bool]]:
    """``'write_date desc, id'`` → ``[('write_date', True), ('id', False)]`` (True = descending)."""
    if order in (None, False, ""):
        return [("id", False)]
    if not isinstance(order, str):
        raise OdooFault(VALUE_ERROR, f"Invalid order {order!r}")
    keys = []
    for part in order.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise OdooFault(VALUE_ERROR, f'Invalid "order" specified ({order}).')
        if words[0] not in table.fields:
            raise OdooFault(VALUE_ERROR, f"Invalid field {words[0]!r} on model {table.model!r}")
        keys.append((words[0], len(words) == 2 and words[1].lower() == "desc"))
    return keys


def sort_records(records: list[dict], keys: list[tuple[str, bool]]) -> list[dict]:
    """Stable multi-key sort as PostgreSQL orders: nulls last ascending, first descending.

    A many2one sorts by id (Odoo would use the target model's own order).
    """
    out = list(records)
    for name, desc in reversed(keys):
        nulls = [r for r in out if _sort_value(r.get(name)) is None]
        values = [r for r in out if _sort_value(r.get(name)) is not None]
        values.sort(key=lambda r: _sort_value(r.get(name)), reverse=desc)
        out = nulls + values if desc else values + nulls
    return out


def _sort_value(v: Any) -> Any:
    if v is None or v is False:
        return None
    if isinstance(v, list):
        return v[0] if v else None
    return v


def fields_get(table: Table, allfields: Any = None, attributes: Any = None) -> dict:
    """``fields_get``: each field's type and label, a many2one's ``relation`` and a
    selection's values (those the dataset holds: the replay knows no others)."""
    out = {}
    for name, kind in table.fields.items():
        if allfields and name not in allfields:
            continue
        desc: dict[str, Any] = {"type": kind, "string": name.replace("_", " ").strip().title(), "store": True}
        relation = COMODELS.get((table.model, name)) or OUTSIDE_COMODELS.get((table.model, name))
        if relation:
            desc["relation"] = relation
        if kind == "selection":
            values = sorted({r[name] for r in table.records if isinstance(r.get(name), str)})
            desc["selection"] = [[v, v] for v in values]
        out[name] = {k: v for k, v in desc.items() if not attributes or k in attributes}
    return out
