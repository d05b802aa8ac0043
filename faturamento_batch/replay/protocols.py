"""The RPC wire protocols of the replay server: JSON-RPC, XML-RPC (both routes) and JSON-2.

(The web client's JSON routes, ``/web/...``, that odoorpc uses are `replay.web`.)

In:  an HTTP request (path, headers, body bytes).
Out: a `Call` — the parsed request, whose `key` (``"<model>.<method>"`` or
     ``"<service>.<method>"``) the server uses for stats and fault matching, and
     whose `run` executes it on a `ReplayData` and encodes the answer the way
     Odoo does, faults included — or directly a `Reply` when the request cannot
     be parsed at all.

How Odoo reports errors, reproduced here:
- JSON-RPC: HTTP 200, ``{"error": {"code": 200, "message": "Odoo Server Error",
  "data": {"name", "message", "arguments", "context", "debug"}}}``;
- XML-RPC (``/xmlrpc/2/*``): a Fault with code 3 for AccessDenied, 4 for
  AccessError, 2 for UserError (MissingError is one), else 1 with the server
  traceback as text;
- legacy XML-RPC (``/xmlrpc/*`` without ``/2/``, what odoo-client-lib calls):
  the fault code is a string — ``"AccessDenied"``, ``"warning -- MissingError\n\n<message>"``
  (likewise AccessError, UserError), else the message with the traceback as
  fault string (Odoo's ``xmlrpc_handle_exception_string``);
- JSON-2: the HTTP status says it (401, 403, 404, 422) and the body is the
  same error object as JSON-RPC's ``data``; ``GET /doc-bearer/<model>.json``
  (Odoo 19's API description, which odoo-client-lib's JSON-2 mode reads to name
  positional arguments) answers with the same faults.
"""

from __future__ import annotations

import json
import logging
import xmlrpc.client
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .data import VERSION, ReplayData
from .faults import ACCESS_DENIED, ACCESS_ERROR, MISSING_ERROR, SESSION_EXPIRED, USER_ERROR, OdooFault

logger = logging.getLogger(__name__)

JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "text/xml; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
XMLRPC_CODES = {ACCESS_DENIED: 3, ACCESS_ERROR: 4, USER_ERROR: 2, MISSING_ERROR: 2}
# the legacy route's "warning -- <Name>" faults; AccessDenied has a code of its own
LEGACY_WARNINGS = {MISSING_ERROR: "MissingError", ACCESS_ERROR: "AccessError", USER_ERROR: "UserError"}
JSONRPC_CODES = {SESSION_EXPIRED: (100, "Odoo Session Expired")}
JSON2_PREFIX = "/json/2/"
XMLRPC_PREFIX = "/xmlrpc/2/"
LEGACY_XMLRPC_PREFIX = "/xmlrpc/"
DOC_PREFIX = "/doc-bearer/"
XMLRPC_SERVICES = ("common", "object", "db")


@dataclass
class Reply:
    """An HTTP answer: status, body and content type."""

    status: int
    body: bytes
    content_type: str = JSON_TYPE
    headers: tuple[tuple[str, str], ...] = ()  # more headers (the web routes' Set-Cookie)


@dataclass
class Call:
    """A parsed protocol request, ready to run."""

    key: str
    invoke: Callable[[ReplayData], Any]
    encode: Callable[[Any], Reply]
    encode_fault: Callable[[OdooFault], Reply]

    def run(self, data: ReplayData, transform: Callable[[str, Any], Any] | None = None) -> Reply:
        """Execute on `data`; `transform(key, result)` may alter a result (injected short pages)."""
        try:
            result = self.invoke(data)
            if transform is not None:
                result = transform(self.key, result)
            return self.encode(result)
        except OdooFault as fault:
            return self.encode_fault(fault)
        except Exception as exc:  # a replay bug must still answer like a crashing Odoo
            logger.exception("replay: %s failed", self.key)
            return self.encode_fault(OdooFault(f"builtins.{type(exc).__name__}", str(exc), status=500))


def html_reply(status: int, title: str, text: str = "") -> Reply:
    """The HTML error page a proxy or werkzeug answers with (not an Odoo payload)."""
    body = f"<!doctype html>\n<html><head><title>{status} {title}</title></head><body><h1>{title}</h1><p>{text}</p></body></html>\n"
    return Reply(status, body.encode(), HTML_TYPE)


def parse_request(path: str, headers: Mapping[str, str], body: bytes) -> Call | Reply:
    """Route `path` to its protocol; a `Reply` when there is nothing to run (404, bad payload)."""
    if path == "/jsonrpc":
        return _parse_jsonrpc(body)
    if path.startswith(XMLRPC_PREFIX):
        return _parse_xmlrpc(path[len(XMLRPC_PREFIX) :], body)
    if path.startswith(LEGACY_XMLRPC_PREFIX):
        return _parse_xmlrpc(path[len(LEGACY_XMLRPC_PREFIX) :], body, legacy=True)
    if path.startswith(JSON2_PREFIX):
        return _parse_json2(path[len(JSON2_PREFIX) :], headers, body)
    if path.startswith(DOC_PREFIX) and path.endswith(".json"):
        return _parse_doc(path[len(DOC_PREFIX) : -len(".json")], headers)
    return html_reply(404, "Not Found", "The requested URL was not found on the server.")


def dispatch_rpc(data: ReplayData, service: Any, method: Any, params: Any) -> Any:
    """Odoo's ``dispatch_rpc``: services ``common``, ``object`` and ``db`` with positional params."""
    if not isinstance(params, (list, tuple)):
        raise OdooFault(USER_ERROR, f"{service}.{method}: the arguments must be a list")
    p = list(params)
    if service == "common":
        if method == "version":
            return dict(VERSION)
        if method == "login" and len(p) == 3:
            return data.login(*p)
        if method == "authenticate" and len(p) == 4:
            return data.login(*p[:3])
    elif service == "object":
        if method == "execute_kw" and 5 <= len(p) <= 7:
            data.check(*p[:3])
            return data.execute(p[3], p[4], p[5] if len(p) > 5 else [], p[6] if len(p) > 6 else {})
        if method == "execute" and len(p) >= 5:
            data.check(*p[:3])
            return data.execute(p[3], p[4], p[5:], {})
    elif service == "db":
        if method == "list":
            return [data.meta["db"]]
        if method == "server_version":
            return VERSION["server_version"]
    raise OdooFault(USER_ERROR, f"Unknown method {service}.{method} or wrong number of arguments ({len(p)})")


def rpc_key(service: Any, method: Any, params: Any) -> str:
    """``"<model>.<method>"`` for ORM calls, ``"<service>.<method>"`` for the others."""
    if service == "object" and isinstance(params, (list, tuple)) and len(params) >= 5:
        return f"{params[3]}.{params[4]}"
    return f"{service}.{method}"


# ------------------------------------------------------------------ JSON-RPC


def _parse_jsonrpc(body: bytes) -> Call | Reply:
    try:
        request = json.loads(body or b"null")
    except ValueError as exc:
        return json_reply(400, jsonrpc_error(None, OdooFault("werkzeug.exceptions.BadRequest", f"Invalid JSON data: {exc}")))
    rid = request.get("id") if isinstance(request, dict) else None
    params = request.get("params") if isinstance(request, dict) else None
    if not isinstance(params, dict):
        fault = OdooFault(USER_ERROR, "a JSON-RPC request needs params {service, method, args}")
        return json_reply(200, jsonrpc_error(rid, fault))
    service, method, args = params.get("service"), params.get("method"), params.get("args", [])
    return Call(
        key=rpc_key(service, method, args),
        invoke=lambda data: dispatch_rpc(data, service, method, args),
        encode=lambda result: json_reply(200, {"jsonrpc": "2.0", "id": rid, "result": result}),
        encode_fault=lambda fault: json_reply(200, jsonrpc_error(rid, fault)),
    )


def jsonrpc_error(rid: Any, fault: OdooFault) -> dict:
    """The JSON-RPC error envelope; Odoo gives an expired session code 100, everything else 200."""
    code, message = JSONRPC_CODES.get(fault.name, (200, "Odoo Server Error"))
    return {"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message, "data": fault.as_dict()}}


def json_reply(status: int, obj: Any) -> Reply:
    return Reply(status, json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode())


# ------------------------------------------------------------------- XML-RPC


def _parse_xmlrpc(service: str, body: bytes, legacy: bool = False) -> Call | Reply:
    if service not in XMLRPC_SERVICES:
        return html_reply(404, "Not Found", f"No XML-RPC service {service!r}.")
    encode_fault = _legacy_xml_fault if legacy else _xml_fault
    try:
        params, method = xmlrpc.client.loads(body, use_builtin_types=True)
    except Exception as exc:  # expat and xmlrpc raise several unrelated types
        return encode_fault(OdooFault("xml.parsers.expat.ExpatError", f"Invalid XML-RPC request: {exc}"))
    return Call(
        key=rpc_key(service, method, params),
        invoke=lambda data: dispatch_rpc(data, service, method, params),
        encode=_xml_result,
        encode_fault=encode_fault,
    )


def _xml_result(result: Any) -> Reply:
    try:
        text = xmlrpc.client.dumps((result,), methodresponse=True)
    except TypeError:  # a null in a hand-written dataset: Odoo would have sent false
        text = xmlrpc.client.dumps((_no_none(result),), methodresponse=True)
    except OverflowError as exc:
        return _xml_fault(OdooFault("builtins.OverflowError", str(exc)))
    return Reply(200, text.encode(), XML_TYPE)


def _xml_fault(fault: OdooFault) -> Reply:
    code = XMLRPC_CODES.get(fault.name)
    text = fault.message if code else fault.debug  # Odoo sends the traceback for code 1
    xml = xmlrpc.client.dumps(xmlrpc.client.Fault(code or 1, text), methodresponse=True)
    return Reply(200, xml.encode(), XML_TYPE)


def _legacy_xml_fault(fault: OdooFault) -> Reply:
    if fault.name == ACCESS_DENIED:
        code, text = "AccessDenied", fault.message
    elif fault.name in LEGACY_WARNINGS:
        code, text = f"warning -- {LEGACY_WARNINGS[fault.name]}\n\n{fault.message}", ""
    else:
        code, text = fault.message, fault.debug
    xml = xmlrpc.client.dumps(xmlrpc.client.Fault(code, text), methodresponse=True)
    return Reply(200, xml.encode(), XML_TYPE)


def _no_none(value: Any) -> Any:
    if value is None:
        return False
    if isinstance(value, list):
        return [_no_none(v) for v in value]
    if isinstance(value, dict):
        return {k: _no_none(v) for k, v in value.items()}
    return value


# -------------------------------------------------------------------- JSON-2


def _parse_json2(rest: str, headers: Mapping[str, str], body: bytes) -> Call | Reply:
    model, _, method = rest.rpartition("/")
    if not model or not method:
        return _json2_fault(OdooFault("werkzeug.exceptions.NotFound", f"No such endpoint /json/2/{rest}", status=404))
    try:
        params = json.loads(body) if body.strip() else {}
    except ValueError as exc:
        return _json2_fault(OdooFault("werkzeug.exceptions.BadRequest", f"Invalid JSON body: {exc}", status=400))
    key = _bearer(headers)
    database = headers.get("X-Odoo-Database")

    def invoke(data: ReplayData) -> Any:
        data.check_api_key(key)
        if database and database != data.meta["db"]:
            raise OdooFault("werkzeug.exceptions.NotFound", f"Database {database!r} not found", status=404)
        return data.execute_named(model, method, params)

    return Call(
        key=f"{model}.{method}",
        invoke=invoke,
        encode=lambda result: json_reply(200, result),
        encode_fault=_json2_fault,
    )


def _parse_doc(model: str, headers: Mapping[str, str]) -> Call:
    key = _bearer(headers)

    def invoke(data: ReplayData) -> Any:
        data.check_api_key(key)
        return data.describe(model)

    return Call(key=f"{model}.doc", invoke=invoke, encode=lambda result: json_reply(200, result), encode_fault=_json2_fault)


def _bearer(headers: Mapping[str, str]) -> str | None:
    scheme, _, key = (headers.get("Authorization") or "").strip().partition(" ")
    return key.strip() if scheme.lower() == "bearer" else None


def _json2_fault(fault: OdooFault) -> Reply:
    reply = json_reply(fault.status, fault.as_dict())
    return reply
