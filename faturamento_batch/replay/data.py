"""The replay server's data: a dataset directory loaded into memory, and the ORM calls on it.

In:  a dataset directory (DESIGN §3): ``<model>.json`` per model of
     `fields.MODELS` (a missing file is an empty model) and ``meta.json``.
Out: `ReplayData`, answering Odoo's ``search_read``/``search``/``read``/
     ``search_count``/``fields_get`` and the credential checks, raising
     `OdooFault` exactly where Odoo would refuse.

Records are kept sorted by id with an id index per model, so the key paging of
the job (``id > N``, ``order='id asc'``, ``limit``) scans only one page's worth.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .domain import COMODELS, DomainError, Schema, compile_tree, id_window, parse
from ..odoo.fields import MODELS, dataset_file

logger = logging.getLogger(__name__)

DEFAULT_META = {"db": "replay", "login": "admin", "password": "admin", "api_key": "replay-api-key", "uid": 2}
VERSION = {
    "server_version": "17.0",
    "server_version_info": [17, 0, 0, "final", 0, ""],
    "server_serie": "17.0",
    "protocol_version": 1,
}

ACCESS_DENIED = "odoo.exceptions.AccessDenied"
ACCESS_ERROR = "odoo.exceptions.AccessError"
USER_ERROR = "odoo.exceptions.UserError"
VALUE_ERROR = "builtins.ValueError"
KEY_ERROR = "builtins.KeyError"

# Positional parameters of the ORM methods served, in Odoo's order.
SIGNATURES: dict[str, tuple[str, ...]] = {
    "search_read": ("domain", "fields", "offset", "limit", "order"),
    "search": ("domain", "offset", "limit", "order"),
    "read": ("ids", "fields"),
    "search_count": ("domain", "limit"),
    "fields_get": ("allfields", "attributes"),
}
IGNORED_KWARGS = {"context", "load"}  # accepted as Odoo does, no effect on a replay
WRITE_METHODS = {"create", "write", "unlink", "copy", "action_post", "button_cancel"}


class OdooFault(Exception):
    """An error as Odoo reports it: exception `name` (``odoo.exceptions.AccessDenied``…),
    `message`, and the HTTP `status` the JSON-2 API answers with."""

    STATUS = {ACCESS_DENIED: 401, ACCESS_ERROR: 403, KEY_ERROR: 404, VALUE_ERROR: 422, USER_ERROR: 422}

    def __init__(self, name: str, message: str, status: int | None = None):
        super().__init__(message)
        self.name, self.message = name, message
        self.status = status or self.STATUS.get(name, 422)

    @property
    def debug(self) -> str:
        """A server-side traceback, shaped like the one Odoo sends in ``data.debug``."""
        exc = self.name.removeprefix("builtins.")  # Python prints builtin exceptions unqualified
        return (
            "Traceback (most recent call last):\n"
            '  File "odoo/service/model.py", line 0, in execute_kw  (odoo-replay)\n'
            f"{exc}: {self.message}\n"
        )

    def as_dict(self) -> dict:
        """The error object of JSON-RPC ``error.data`` and of a JSON-2 error body."""
        return {"name": self.name, "message": self.message, "arguments": [self.message], "context": {}, "debug": self.debug}


def access_denied() -> OdooFault:
    return OdooFault(ACCESS_DENIED, "Access Denied")


def unknown_model(model: Any) -> OdooFault:
    return OdooFault(KEY_ERROR, repr(model))  # Odoo: KeyError('no.such.model') → "'no.such.model'"


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


class ReplayData:
    """A dataset directory in memory: `meta`, `tables` and the ORM methods over them."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        if not self.path.is_dir():
            raise ConfigError(f"dataset `{self.path}` is not a directory (expected one JSON file per Odoo model)")
        self.meta = {**DEFAULT_META, **_read_json(self.path / "meta.json", {})}
        self.tables = {model: Table(model, _read_json(self.path / dataset_file(model), [])) for model in MODELS}
        self.schema = Schema(
            fields={m: t.fields for m, t in self.tables.items()},
            index={m: t.by_id for m, t in self.tables.items()},
        )

    def counts(self) -> dict[str, int]:
        return {m: len(t.records) for m, t in self.tables.items()}

    # -------------------------------------------------------------- credentials

    def login(self, db: Any, login: Any, password: Any) -> int | bool:
        """``common.login``: the uid, or False for a wrong database, login or password."""
        ok = db == self.meta["db"] and login == self.meta["login"] and self._secret_ok(password)
        return self.meta["uid"] if ok else False

    def check(self, db: Any, uid: Any, password: Any) -> None:
        """The credentials of ``execute_kw``; AccessDenied when they are not the dataset's."""
        try:
            uid = int(uid)  # Odoo's dispatch does int(uid) too
        except (TypeError, ValueError):
            raise access_denied() from None
        if db != self.meta["db"] or uid != self.meta["uid"] or not self._secret_ok(password):
            raise access_denied()

    def check_api_key(self, key: str | None) -> None:
        """The bearer key of the JSON-2 API (an API key only, never the password)."""
        if not key or key != self.meta["api_key"]:
            raise access_denied()

    def _secret_ok(self, secret: Any) -> bool:
        # Odoo takes an API key wherever RPC takes a password
        return bool(secret) and secret in (self.meta["password"], self.meta["api_key"])

    # ------------------------------------------------------------------ calls

    def execute(self, model: Any, method: Any, args: list | None = None, kwargs: dict | None = None) -> Any:
        """``execute_kw``: Odoo's positional `args` and keyword `kwargs` mapped to named ones."""
        table, signature = self._method(model, method)
        args, kwargs = args or [], kwargs or {}
        if not isinstance(args, (list, tuple)) or not isinstance(kwargs, dict):
            raise OdooFault(USER_ERROR, "execute_kw takes a list of arguments and a dict of keyword arguments")
        if len(args) > len(signature):
            raise OdooFault(USER_ERROR, f"{method}() takes {len(signature)} positional arguments but {len(args)} were given")
        named = dict(zip(signature, args))
        for key, value in kwargs.items():
            if key in named:
                raise OdooFault(USER_ERROR, f"{method}() got multiple values for argument {key!r}")
            named[key] = value
        return self._run(table, method, signature, named)

    def execute_named(self, model: Any, method: Any, params: dict) -> Any:
        """A JSON-2 call: every argument named."""
        table, signature = self._method(model, method)
        if not isinstance(params, dict):
            raise OdooFault(USER_ERROR, "the request body must be a JSON object of named arguments")
        return self._run(table, method, signature, dict(params))

    def _method(self, model: Any, method: Any) -> tuple[Table, tuple[str, ...]]:
        table = self.tables.get(model) if isinstance(model, str) else None
        if table is None:
            raise unknown_model(model)
        if not isinstance(method, str):
            raise OdooFault(USER_ERROR, f"Invalid method name {method!r}")
        if method.startswith("_"):
            raise OdooFault(ACCESS_ERROR, f"Private methods (such as '{model}.{method}') cannot be called remotely.")
        if method in WRITE_METHODS:
            raise OdooFault(ACCESS_ERROR, f"'{model}.{method}': the replay server is read-only.")
        if method not in SIGNATURES:
            raise OdooFault(USER_ERROR, f"The method '{model}.{method}' does not exist", status=404)
        return table, SIGNATURES[method]

    def _run(self, table: Table, method: str, signature: tuple[str, ...], named: dict) -> Any:
        unknown = set(named) - set(signature) - IGNORED_KWARGS
        if unknown:
            raise OdooFault(USER_ERROR, f"{method}() got an unexpected keyword argument {sorted(unknown)[0]!r}")
        try:
            if method == "search_read":
                found = self.search(table, named.get("domain"), named.get("offset"), named.get("limit"), named.get("order"))
                return project(table, found, named.get("fields"))
            if method == "search":
                found = self.search(table, named.get("domain"), named.get("offset"), named.get("limit"), named.get("order"))
                return [r["id"] for r in found]
            if method == "read":
                return self.read(table, named.get("ids"), named.get("fields"))
            if method == "search_count":
                return self.count(table, named.get("domain"), named.get("limit"))
            return fields_get(table, named.get("allfields"), named.get("attributes"))
        except DomainError as exc:
            raise OdooFault(VALUE_ERROR, str(exc)) from None
        except (TypeError, ValueError) as exc:  # values PostgreSQL would not compare
            raise OdooFault(VALUE_ERROR, f"Invalid domain or arguments for {table.model}.{method}: {exc}") from None

    def search(self, table: Table, domain: Any, offset: Any = 0, limit: Any = None, order: Any = None) -> list[dict]:
        """The stored records matching `domain`, ordered, then sliced by `offset`/`limit`."""
        offset, limit = _count_arg("offset", offset), _count_arg("limit", limit)
        keys = parse_order(order, table)
        tree = parse(domain if domain not in (None, False) else [])
        pred = compile_tree(tree, table.model, self.schema)
        candidates = self._candidates(table, tree)
        if keys == [("id", False)] or keys == [("id", True)]:
            # already in key order: stop as soon as the page is full
            seq = reversed(candidates) if keys[0][1] else candidates
            need = offset + limit if limit else None
            out = []
            for rec in seq:
                if pred is None or pred(rec):
                    out.append(rec)
                    if need is not None and len(out) >= need:
                        break
            return out[offset:]
        found = [r for r in candidates if pred is None or pred(r)]
        found = sort_records(found, keys)
        return found[offset : offset + limit] if limit else found[offset:]

    def count(self, table: Table, domain: Any, limit: Any = None) -> int:
        tree = parse(domain if domain not in (None, False) else [])
        pred = compile_tree(tree, table.model, self.schema)
        candidates = self._candidates(table, tree)
        n = len(candidates) if pred is None else sum(1 for r in candidates if pred(r))
        limit = _count_arg("limit", limit)
        return min(n, limit) if limit else n

    def read(self, table: Table, ids: Any, fields: Any) -> list[dict]:
        """Records by id in the order asked; ids that do not exist are skipped, as Odoo does."""
        if isinstance(ids, int) and not isinstance(ids, bool):
            ids = [ids]
        if not isinstance(ids, list) or not all(type(i) is int for i in ids):
            raise OdooFault(USER_ERROR, f"read() needs a list of integer ids, got {ids!r:.200}")
        found = [table.by_id[i] for i in ids if i in table.by_id]
        return project(table, found, fields)

    def _candidates(self, table: Table, tree: tuple) -> list[dict]:
        """The records in the id window of the domain, in id order (see `domain.id_window`)."""
        start, end, only = id_window(tree, table.ids)
        if only is not None and len(only) < end - start:
            lo = table.ids[start] if start < len(table.ids) else None
            hi = table.ids[end - 1] if end > start else None
            if lo is None or hi is None:
                return []
            return [table.by_id[i] for i in sorted(only) if lo <= i <= hi and i in table.by_id]
        if start == 0 and end == len(table.records):
            return table.records
        return table.records[start:end]


def project(table: Table, records: list[dict], fields: Any) -> list[dict]:
    """Copies of `records` with only `fields` (all when empty), ``id`` always first."""
    if fields in (None, False, []):
        return [dict(r) for r in records]
    if isinstance(fields, str) or not isinstance(fields, (list, tuple)):
        raise OdooFault(USER_ERROR, f"fields must be a list of field names, got {fields!r:.200}")
    for name in fields:
        if name not in table.fields:
            raise OdooFault(VALUE_ERROR, f"Invalid field {name!r} on model {table.model!r}")
    names = [f for f in dict.fromkeys(fields) if f != "id"]
    return [{"id": r["id"], **{f: r.get(f, False) for f in names}} for r in records]


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
            raise OdooFault(VALUE_ERROR, f"Invalid \"order\" specified ({order}).")
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
    """``fields_get``: each field's type and label (and ``relation`` for a known many2one)."""
    out = {}
    for name, kind in table.fields.items():
        if allfields and name not in allfields:
            continue
        desc = {"type": kind, "string": name.replace("_", " ").strip().title(), "store": True}
        if (table.model, name) in COMODELS:
            desc["relation"] = COMODELS[(table.model, name)]
        out[name] = {k: v for k, v in desc.items() if not attributes or k in attributes}
    return out


def _count_arg(name: str, value: Any) -> int:
    """`offset`/`limit` as Odoo reads them: None/False/0 mean "none"."""
    if value in (None, False):
        return 0
    if type(value) is not int or value < 0:
        raise OdooFault(VALUE_ERROR, f"Invalid {name} {value!r}: expected a non-negative integer")
    return value


def _read_json(file: Path, default: Any) -> Any:
    if not file.exists():
        return default
    try:
        data = json.loads(file.read_bytes())
    except ValueError as exc:
        raise ConfigError(f"`{file}` is not valid JSON: {exc}") from exc
    if type(data) is not type(default):
        raise ConfigError(f"`{file}` must hold a JSON {'list' if isinstance(default, list) else 'object'}")
    return data
