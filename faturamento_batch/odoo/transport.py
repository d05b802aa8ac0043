"""Odoo's three wire protocols behind one interface, with timeouts and retries.

    JsonRpcTransport  POST /jsonrpc               (default; deprecated from Odoo 19)
    XmlRpcTransport   POST /xmlrpc/2/common|object (deprecated from Odoo 19)
    Json2Transport    POST /json/2/<model>/<method> (Odoo 19+, bearer API key)

`call` returns the raw response body of a successful call (bytes), so that
`search_read` results go straight from JSON into Polars; `decode` turns a body
into Python for the few small answers (login, counts). Every request has a
timeout; network errors, HTTP 5xx and broken bodies are retried with
exponential backoff and jitter; access-denied and faults caused by the request
are raised at once as `OdooPermanentError`.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import re
import socket
import threading
import time
import xmlrpc.client
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import ConfigError, OdooPermanentError, OdooTransientError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Credentials:
    url: str
    db: str
    login: str
    password: str | None = None
    api_key: str | None = None

    def __repr__(self) -> str:  # never show the secret
        return f"Credentials(url={self.url!r}, db={self.db!r}, login={self.login!r})"

    @property
    def secret(self) -> str:
        secret = self.api_key or self.password
        if not secret:
            raise ConfigError("no Odoo password or API key: set `ODOO_PASSWORD` or `ODOO_API_KEY`")
        return secret


class _HttpPool:
    """One keep-alive HTTP connection per thread (parallel fetches run in threads)."""

    def __init__(self, url: str, timeout: float):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"Odoo URL `{url}` must look like http://host:8069 or https://host")
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port
        self.base = parts.path.rstrip("/")
        self.timeout = timeout
        self.local = threading.local()
        self.bytes_received = 0
        self._lock = threading.Lock()

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            conn = cls(self.host, self.port, timeout=self.timeout)
            self.local.conn = conn
        return conn

    def drop(self) -> None:
        conn = getattr(self.local, "conn", None)
        if conn is not None:
            conn.close()
            self.local.conn = None

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        conn = self._conn()
        try:
            conn.request("POST", self.base + path, body=body, headers={"Content-Length": str(len(body)), **headers})
            resp = conn.getresponse()
            data = resp.read()
        except BaseException:
            self.drop()  # a half-used connection cannot be reused
            raise
        if resp.getheader("Connection", "").lower() == "close":
            self.drop()
        with self._lock:
            self.bytes_received += len(data)
        return resp.status, data


_NETWORK_ERRORS = (OSError, http.client.HTTPException, socket.timeout)


class Transport:
    """Base: retries around `_once`; subclasses speak one protocol."""

    name = "base"

    def __init__(self, creds: Credentials, timeout: float = 60.0, retries: int = 4, backoff: float = 0.5):
        self.creds = creds
        self.pool = _HttpPool(creds.url, timeout)
        self.retries = retries
        self.backoff = backoff
        self.uid: int | None = None
        self.calls = 0
        self._lock = threading.Lock()

    @property
    def bytes_received(self) -> int:
        return self.pool.bytes_received

    def _retrying(self, what: str, fn):
        attempt = 0
        while True:
            attempt += 1
            with self._lock:
                self.calls += 1
            try:
                return fn()
            except OdooTransientError as exc:
                error = exc
            except _NETWORK_ERRORS as exc:
                error = OdooTransientError(f"Odoo at `{self.creds.url}` did not answer {what}: {type(exc).__name__}: {exc}")
            if attempt > self.retries:
                raise OdooTransientError(f"{error} (gave up after {attempt} attempts; try again later)") from error
            delay = min(self.backoff * 2 ** (attempt - 1), 30.0) * (0.5 + random.random())
            log.warning("%s failed (%s); retry %d/%d in %.1fs", what, error, attempt, self.retries, delay)
            time.sleep(delay)

    def _check_http(self, status: int, body: bytes, what: str) -> None:
        if status >= 500 or status in (408, 429):
            raise OdooTransientError(f"Odoo at `{self.creds.url}` answered HTTP {status} to {what}")

    def authenticate(self) -> int:
        """Log in once per run; raises `OdooPermanentError` when Odoo refuses."""
        uid = self._login()
        if not uid:
            raise self.login_refused()
        self.uid = int(uid)
        return self.uid

    # protocol hooks
    def _login(self):
        raise NotImplementedError

    def call(self, model: str, method: str, args: list, kwargs: dict, parse=None):
        """Call `model.method`; return `parse(body)` (or the body). Retries inside."""
        raise NotImplementedError

    def decode(self, body: bytes):
        raise NotImplementedError

    def login_refused(self) -> OdooPermanentError:
        return OdooPermanentError(
            f"Odoo at `{self.creds.url}` refused the login for `{self.creds.login}` on database `{self.creds.db}`: "
            "check ODOO_USER and ODOO_PASSWORD (or ODOO_API_KEY)"
        )


def _fault_message(model: str | None, name: str, message: str) -> OdooPermanentError:
    text = f"Odoo refused the call on `{model}`: {name}: {message}" if model else f"Odoo refused the call: {name}: {message}"
    if "Invalid field" in message or "Unknown field" in message:
        text += " — is the Brazilian localization (l10n_br) installed in this database?"
    if name.endswith("KeyError") or "doesn't exist" in message:
        text += " — the model is missing: is the Brazilian localization (l10n_br) installed?"
    return OdooPermanentError(text)


class JsonRpcTransport(Transport):
    name = "jsonrpc"

    def _rpc(self, service: str, method: str, args: list, what: str, model: str | None = None, parse=None):
        payload = json.dumps(
            {"jsonrpc": "2.0", "method": "call", "params": {"service": service, "method": method, "args": args}, "id": 1}
        ).encode()

        def once() -> bytes:
            status, body = self.pool.post("/jsonrpc", payload, {"Content-Type": "application/json"})
            self._check_http(status, body, what)
            if status >= 400:
                raise OdooPermanentError(f"Odoo at `{self.creds.url}` answered HTTP {status} to {what}")
            head = body[:200]
            if b'"error"' in head or b'"result"' not in head:
                doc = _loads(body, what, self.creds.url)
                if "error" in doc:
                    err = doc["error"] or {}
                    data = err.get("data") or {}
                    name, message = data.get("name", ""), data.get("message") or err.get("message", "")
                    if "AccessDenied" in name or "SessionExpired" in name:
                        raise self.login_refused()
                    raise _fault_message(model, name, message)
                if "result" not in doc:
                    raise OdooTransientError(f"Odoo at `{self.creds.url}` sent a JSON-RPC answer without a result to {what}")
            return _parsed(parse, body, what, self.creds.url)

        return self._retrying(what, once)

    def _login(self):
        c = self.creds
        body = self._rpc("common", "authenticate", [c.db, c.login, c.secret, {}], "the login")
        return _loads(body, "the login", c.url).get("result")

    def call(self, model: str, method: str, args: list, kwargs: dict, parse=None):
        c = self.creds
        return self._rpc("object", "execute_kw", [c.db, self.uid, c.secret, model, method, args, kwargs],
                         f"{model}.{method}", model, parse)  # fmt: skip

    def decode(self, body: bytes):
        return _loads(body, "a call", self.creds.url)["result"]


class XmlRpcTransport(Transport):
    name = "xmlrpc"

    def _xml(self, endpoint: str, method: str, params: tuple, what: str, model: str | None = None, parse=None):
        payload = xmlrpc.client.dumps(params, method, allow_none=False).encode()

        def once() -> bytes:
            status, body = self.pool.post(endpoint, payload, {"Content-Type": "text/xml"})
            self._check_http(status, body, what)
            if status >= 400:
                raise OdooPermanentError(f"Odoo at `{self.creds.url}` answered HTTP {status} to {what}")
            try:
                (result,), _ = _xml_loads(body)
            except xmlrpc.client.Fault as fault:
                if fault.faultCode == 3 or "AccessDenied" in str(fault.faultString) or "Access Denied" in str(fault.faultString):
                    raise self.login_refused() from None
                message = str(fault.faultString).strip().splitlines()
                raise _fault_message(model, f"fault {fault.faultCode}", message[-1] if message else "") from None
            except Exception as exc:  # expat errors: a truncated or garbled body
                raise OdooTransientError(f"Odoo at `{self.creds.url}` sent a broken XML-RPC answer to {what}: {exc}") from exc
            return _parsed(parse, result, what, self.creds.url)

        return self._retrying(what, once)

    def _login(self):
        c = self.creds
        return self._xml("/xmlrpc/2/common", "authenticate", (c.db, c.login, c.secret, {}), "the login")

    def call(self, model: str, method: str, args: list, kwargs: dict, parse=None):
        c = self.creds
        return self._xml("/xmlrpc/2/object", "execute_kw", (c.db, self.uid, c.secret, model, method, args, kwargs),
                         f"{model}.{method}", model, parse)  # fmt: skip

    def decode(self, body):
        return body  # already Python objects


class Json2Transport(Transport):
    """Odoo 19+'s JSON-2 API: named arguments, bearer API key, bare JSON results."""

    name = "json2"
    _POSITIONAL = {"search_read": ("domain", "fields"), "search": ("domain",), "read": ("ids", "fields"),
                   "search_count": ("domain",)}  # fmt: skip

    def _headers(self) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "Authorization": f"bearer {self.creds.api_key or self.creds.secret}",
            "X-Odoo-Database": self.creds.db,
        }

    def authenticate(self) -> int:
        # JSON-2 has no login call: the key is checked on every request. A cheap
        # call now turns a bad key into a clear error before any real work.
        # Searching for the impossible id 0 on a model the job reads anyway.
        self.call("account.move.line", "search", [[("id", "=", 0)]], {"limit": 1})
        self.uid = 0  # JSON-2 identifies the user by the key; no uid is needed
        return self.uid

    def call(self, model: str, method: str, args: list, kwargs: dict, parse=None):
        named = dict(zip(self._POSITIONAL.get(method, ()), args))
        named.update(kwargs)
        payload = json.dumps(named).encode()
        what = f"{model}.{method}"

        def once() -> bytes:
            status, body = self.pool.post(f"/json/2/{model}/{method}", payload, self._headers())
            self._check_http(status, body, what)
            if status in (401, 403):
                raise self.login_refused()
            if status >= 400:
                try:
                    err = json.loads(body)
                except ValueError:
                    err = {"name": f"HTTP {status}", "message": body[:200].decode(errors="replace")}
                raise _fault_message(model, err.get("name", ""), err.get("message", ""))
            return _parsed(parse, body, what, self.creds.url)

        return self._retrying(what, once)

    def decode(self, body: bytes):
        return _loads(body, "a call", self.creds.url)


# Characters XML 1.0 forbids; Odoo's XML-RPC writes them raw when the data holds them.
_XML_ILLEGAL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _xml_loads(body: bytes):
    """Parse an XML-RPC answer; data with control characters or invalid UTF-8 is repaired
    (control characters dropped, bad bytes replaced by U+FFFD) rather than refused."""
    try:
        return xmlrpc.client.loads(body, use_builtin_types=True)
    except xmlrpc.client.Fault:
        raise
    except Exception:
        repaired = _XML_ILLEGAL.sub(b"", body).decode("utf-8", errors="replace").encode("utf-8")
        if repaired == body:
            raise
        return xmlrpc.client.loads(repaired, use_builtin_types=True)


def _parsed(parse, body, what: str, url: str):
    """Run `parse` inside the retry loop: a body cut short is a network fault, retried."""
    if parse is None:
        return body
    try:
        return parse(body)
    except OdooPermanentError as exc:
        raise OdooTransientError(f"Odoo at `{url}` sent an unreadable answer to {what}: {exc}") from exc


def _loads(body: bytes, what: str, url: str):
    try:
        return json.loads(body)
    except ValueError as exc:
        # A cut or garbled body is a network-level failure: worth a retry.
        raise OdooTransientError(f"Odoo at `{url}` sent a broken JSON answer to {what}: {exc}") from exc


TRANSPORTS = {t.name: t for t in (JsonRpcTransport, XmlRpcTransport, Json2Transport)}


def make_transport(name: str, creds: Credentials, timeout: float = 60.0, retries: int = 4, backoff: float = 0.5) -> Transport:
    try:
        cls = TRANSPORTS[name]
    except KeyError:
        raise ConfigError(f"unknown Odoo transport `{name}` (use one of {', '.join(TRANSPORTS)})") from None
    return cls(creds, timeout=timeout, retries=retries, backoff=backoff)
