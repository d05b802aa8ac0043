"""The replay server's data: a dataset directory loaded into memory, and the ORM calls on it.

In:  a dataset directory (DESIGN §3): ``<model>.json`` per model of
     `fields.MODELS` (a missing file is an empty model) and ``meta.json``.
Out: `ReplayData`, answering Odoo's ``search_read``/``search``/``read``/
     ``search_count``/``fields_get`` (and ``res.users.context_get``, which
     odoorpc calls on login) and the credential checks, raising `OdooFault`
     exactly where Odoo would refuse.

``read`` of ids that do not exist: `ReplayData` itself skips them, as Odoo 17's
ORM does (its test "read() should skip deleted records"); `strict_reads`
answers Odoo's MissingError instead. The server uses `strict_reads` by default
(the project's contract: a client under test must meet a record deleted under
it); `missing_error=False` / `odoo-replay --read-missing skip` gives Odoo 17's
skipping.

Records are kept sorted by id with an id index per model, so the key paging of
the job (``id > N``, ``order='id asc'``, ``limit``) scans only one page's worth.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..odoo.fields import MODELS, USER, dataset_file
from .domain import DomainError, Schema, compile_tree, id_window, parse
from .faults import ACCESS_ERROR, USER_ERROR, VALUE_ERROR, OdooFault, access_denied, missing_records, unknown_model
from .records import CLASSIC_READ, Table, fields_get, parse_order, project, sort_records

logger = logging.getLogger(__name__)

DEFAULT_META = {"db": "replay", "login": "admin", "password": "admin", "api_key": "replay-api-key", "uid": 2}
VERSION = {
    "server_version": "17.0",
    "server_version_info": [17, 0, 0, "final", 0, ""],
    "server_serie": "17.0",
    "protocol_version": 1,
}

# Positional parameters of the ORM methods served, in Odoo's order.
SIGNATURES: dict[str, tuple[str, ...]] = {
    "search_read": ("domain", "fields", "offset", "limit", "order"),
    "search": ("domain", "offset", "limit", "order"),
    "read": ("ids", "fields", "load"),
    "search_count": ("domain", "limit"),
    "fields_get": ("allfields", "attributes"),
    "context_get": (),
}
MODEL_METHODS = {"context_get": USER}  # methods only one model has
IGNORED_KWARGS = {"context", "load"}  # accepted as Odoo does (load: see `project`)
WRITE_METHODS = {"create", "write", "unlink", "copy", "action_post", "button_cancel"}


class ReplayData:
    """A dataset directory in memory: `meta`, `tables` and the ORM methods over them."""

    missing_error = False  # read of ids that do not exist: skip them (Odoo 17) or raise MissingError

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

    def strict_reads(self) -> "ReplayData":
        """The same data (shared, not copied) whose ``read`` of missing ids raises MissingError."""
        strict = copy.copy(self)
        strict.missing_error = True
        return strict

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

    def describe(self, model: Any) -> dict:
        """Odoo 19's ``/doc-bearer/<model>.json`` for what the replay serves: the model's
        fields and methods, each with its parameters (a record method's ``ids`` not
        among them) and ``api: ["model"]`` for the methods that take no ids."""
        table = self.tables.get(model) if isinstance(model, str) else None
        if table is None:
            raise unknown_model(model)
        methods = {}
        for name, params in SIGNATURES.items():
            if MODEL_METHODS.get(name, model) != model:
                continue
            on_records = params[:1] == ("ids",)
            methods[name] = {
                "parameters": {p: {} for p in (params[1:] if on_records else params)},
                "api": [] if on_records else ["model"],
            }
        return {"model": model, "fields": fields_get(table, None, ["type", "string", "relation"]), "methods": methods}

    def _method(self, model: Any, method: Any) -> tuple[Table, tuple[str, ...]]:
        table = self.tables.get(model) if isinstance(model, str) else None
        if table is None:
            raise unknown_model(model)
        if not isinstance(method, str):
            raise OdooFault(USER_ERROR, f"Invalid method name {method!r}")
        if method in MODEL_METHODS and MODEL_METHODS[method] != model:
            raise OdooFault(USER_ERROR, f"The method '{model}.{method}' does not exist", status=404)
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
                return project(table, found, named.get("fields"), named.get("load", CLASSIC_READ))
            if method == "search":
                found = self.search(table, named.get("domain"), named.get("offset"), named.get("limit"), named.get("order"))
                return [r["id"] for r in found]
            if method == "read":
                return self.read(table, named.get("ids"), named.get("fields"), named.get("load", CLASSIC_READ))
            if method == "search_count":
                return self.count(table, named.get("domain"), named.get("limit"))
            if method == "context_get":
                return {"lang": "en_US", "tz": "UTC", "uid": self.meta["uid"]}
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

    def read(self, table: Table, ids: Any, fields: Any, load: Any = CLASSIC_READ) -> list[dict]:
        """Records by id in the order asked; ids that do not exist are skipped, as Odoo does,
        or raise MissingError when `missing_error` is set (`strict_reads`)."""
        if isinstance(ids, int) and not isinstance(ids, bool):
            ids = [ids]
        if not isinstance(ids, list) or not all(type(i) is int for i in ids):
            raise OdooFault(USER_ERROR, f"read() needs a list of integer ids, got {ids!r:.200}")
        found = [table.by_id[i] for i in ids if i in table.by_id]
        if self.missing_error and len(found) < len(ids):
            raise missing_records(table.model, [i for i in dict.fromkeys(ids) if i not in table.by_id], self.meta["uid"])
        return project(table, found, fields, load)

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
