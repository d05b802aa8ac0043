"""The web client's JSON routes (``/web/...``) of the replay server, as odoorpc uses them.

In:  a ``POST /web/<route>`` JSON-RPC request (``{"jsonrpc": "2.0", "method":
     "call", "params": {...}}``, the params being the route's named arguments),
     its ``session_id`` cookie, and the server's `Sessions`.
Out: a `protocols.Call` whose answer is Odoo 17's JSON-RPC envelope (errors
     included, see `protocols.jsonrpc_error`), or a `protocols.Reply` (404 HTML
     page) for a route Odoo does not have.

Routes, as Odoo 17's ``web`` controllers define them:
    /web/webclient/version_info     no session needed: ``common.version``
    /web/database/list              no session needed: the dataset's database
    /web/session/authenticate       {db, login, password}: opens a session, sets
                                    the ``session_id`` cookie and answers the
                                    session info; AccessDenied when refused
    /web/session/get_session_info   the session's info
    /web/session/destroy            ends the session
    /web/dataset/call_kw[/<path>]   {model, method, args, kwargs}: ``execute_kw``
                                    as the session's user
    /web/dataset/call               {model, method, args}: gone in Odoo 17 (16
                                    deprecated it), kept for older scripts
Routes that need a session answer ``odoo.http.SessionExpiredException`` (JSON-RPC
code 100, "Odoo Session Expired") without a valid ``session_id`` cookie.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any, Callable, Mapping

from ..odoo.fields import USER
from .data import VERSION, ReplayData
from .faults import ACCESS_ERROR, SESSION_EXPIRED, USER_ERROR, OdooFault, access_denied
from .protocols import Call, Reply, html_reply, json_reply, jsonrpc_error

WEB_PREFIX = "/web/"
COOKIE = "session_id"
SESSION_LIFETIME = 7 * 24 * 3600  # seconds; Odoo's http.SESSION_LIFETIME
MAX_SESSIONS = 10_000  # a long-running replay that scripts log into again and again stays small
CALL_KW = "/web/dataset/call_kw"


@dataclass(frozen=True)
class Session:
    """A logged-in web session: the database, user id and login it was opened with."""

    db: str
    uid: int
    login: str


class Sessions:
    """The web sessions of one replay server, by ``session_id``; safe across request threads.

    At most `MAX_SESSIONS` are kept: past that the oldest is forgotten (its next
    call answers SessionExpired, as an expired Odoo session does).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_sid: dict[str, Session] = {}

    def open(self, session: Session) -> str:
        """Store `session` under a new random id and return the id (the cookie's value)."""
        sid = secrets.token_hex(20)  # Odoo's session ids are 40 hex characters too
        with self._lock:
            self._by_sid[sid] = session
            while len(self._by_sid) > MAX_SESSIONS:
                del self._by_sid[next(iter(self._by_sid))]  # dicts keep insertion order: the oldest
        return sid

    def get(self, sid: str | None) -> Session | None:
        """The session stored under `sid`, or None (no cookie, unknown or destroyed id)."""
        with self._lock:
            return self._by_sid.get(sid) if sid else None

    def close(self, sid: str | None) -> None:
        """Forget `sid` (logout); an unknown id is a no-op, as in Odoo."""
        with self._lock:
            self._by_sid.pop(sid or "", None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_sid)


def parse_web(path: str, headers: Mapping[str, str], body: bytes, sessions: Sessions) -> Call | Reply:
    """Route a ``/web/...`` request; a `Reply` when there is nothing to run (unknown route, bad JSON)."""
    route = path.rstrip("/")
    if route.startswith(CALL_KW + "/"):
        route = CALL_KW  # the web client appends "<model>/<method>" for its logs only
    handler = ROUTES.get(route)
    if handler is None:
        return html_reply(404, "Not Found", "The requested URL was not found on the server.")
    try:
        request = json.loads(body or b"null")
    except ValueError as exc:
        fault = OdooFault("werkzeug.exceptions.BadRequest", f"Invalid JSON data: {exc}")
        return json_reply(400, jsonrpc_error(None, fault))
    rid = request.get("id") if isinstance(request, dict) else None
    params = request.get("params", {}) if isinstance(request, dict) else None
    if not isinstance(params, dict):
        return json_reply(200, jsonrpc_error(rid, OdooFault(USER_ERROR, "a JSON-RPC request needs params as an object")))
    sid = _cookie(headers)
    cookies: list[tuple[str, str]] = []  # Set-Cookie headers the handler asks for

    def invoke(data: ReplayData) -> Any:
        return handler(_Request(data, params, sessions, sid, cookies))

    def encode(result: Any) -> Reply:
        reply = json_reply(200, {"jsonrpc": "2.0", "id": rid, "result": result})
        reply.headers = tuple(cookies)
        return reply

    return Call(
        key=_key(route, params),
        invoke=invoke,
        encode=encode,
        encode_fault=lambda fault: json_reply(200, jsonrpc_error(rid, fault)),
    )


@dataclass
class _Request:
    """What a route handler sees: the data, its params, the sessions and the request's cookie."""

    data: ReplayData
    params: dict
    sessions: Sessions
    sid: str | None
    cookies: list[tuple[str, str]]

    def session(self) -> Session:
        """The request's session (``auth="user"`` routes); SessionExpired when there is none."""
        session = self.sessions.get(self.sid)
        if session is None or session.db != self.data.meta["db"]:
            raise OdooFault(SESSION_EXPIRED, "Session expired", status=401)
        return session

    def arg(self, name: str) -> Any:
        """A required route argument; missing, it fails as Odoo's route function call would."""
        if name not in self.params:  # Odoo calls the route function, so Python words it
            raise OdooFault("builtins.TypeError", f"missing 1 required positional argument: {name!r}")
        return self.params[name]


def _version_info(req: _Request) -> dict:
    return dict(VERSION)


def _database_list(req: _Request) -> list[str]:
    return [req.data.meta["db"]]


def _authenticate(req: _Request) -> dict:
    db, login, password = req.arg("db"), req.arg("login"), req.arg("password")
    if db != req.data.meta["db"]:
        raise OdooFault(ACCESS_ERROR, "Database not found.")
    uid = req.data.login(db, login, password)
    if not uid:
        raise access_denied()
    session = Session(db=db, uid=uid, login=login)
    sid = req.sessions.open(session)
    req.cookies.append(("Set-Cookie", f"{COOKIE}={sid}; Max-Age={SESSION_LIFETIME}; HttpOnly; Path=/"))
    return _session_info(req.data, session)


def _get_session_info(req: _Request) -> dict:
    return _session_info(req.data, req.session())


def _destroy(req: _Request) -> None:
    req.sessions.close(req.sid)
    return None


def _call_kw(req: _Request) -> Any:
    req.session()  # the session is the credential: no db/uid/password travel with the call
    kwargs = req.params.get("kwargs", {})
    return req.data.execute(req.arg("model"), req.arg("method"), req.arg("args"), kwargs)


def _call(req: _Request) -> Any:
    req.session()
    return req.data.execute(req.arg("model"), req.arg("method"), req.arg("args"), {})


ROUTES: dict[str, Callable[[_Request], Any]] = {
    "/web/webclient/version_info": _version_info,
    "/web/database/list": _database_list,
    "/web/session/authenticate": _authenticate,
    "/web/session/get_session_info": _get_session_info,
    "/web/session/destroy": _destroy,
    CALL_KW: _call_kw,
    "/web/dataset/call": _call,
}


def _session_info(data: ReplayData, session: Session) -> dict:
    """The part of Odoo 17's ``ir.http.session_info()`` a script reads (uid, context, versions, names)."""
    user = data.tables[USER].by_id.get(session.uid, {})
    name = user.get("name") or session.login
    return {
        "uid": session.uid,
        "is_system": True,
        "is_admin": True,
        "is_internal_user": True,
        "user_context": {"lang": "en_US", "tz": "UTC", "uid": session.uid},
        "db": session.db,
        "server_version": VERSION["server_version"],
        "server_version_info": VERSION["server_version_info"],
        "name": name,
        "username": session.login,
        "partner_display_name": name,
        "partner_id": False,  # the dataset holds no partner for its user
        "show_effect": True,
    }


def _cookie(headers: Mapping[str, str]) -> str | None:
    raw = headers.get("Cookie")
    if not raw:
        return None
    try:
        jar = SimpleCookie(raw)
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel else None


def _key(route: str, params: dict) -> str:
    """``"<model>.<method>"`` for ORM calls (as the other protocols), else ``"web.<route>"``."""
    if route in (CALL_KW, "/web/dataset/call"):
        return f"{params.get('model')}.{params.get('method')}"
    return "web." + route[len(WEB_PREFIX) :].replace("/", ".")
