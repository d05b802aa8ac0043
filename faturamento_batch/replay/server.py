"""A small fake Odoo serving a dataset directory over Odoo's real protocols (DESIGN §3).

In:  a dataset directory (`replay.data`), an address, and optional injected
     latency and faults.
Out: an HTTP server answering ``POST /jsonrpc``, ``/xmlrpc/2/common|object``,
     the legacy ``/xmlrpc/common|object``, ``/json/2/<model>/<method>`` and
     ``GET /doc-bearer/<model>.json`` as Odoo 17/19 would (`replay.protocols`),
     the web client's ``/web/...`` JSON routes with their ``session_id`` cookie
     (`replay.web`), so odoo-client-lib and odoorpc work against it, plus
     control endpoints for tests:
     ``POST /replay/reload`` (re-read the dataset), ``GET /replay/stats``,
     ``GET|POST /replay/faults`` (read / replace the injected faults).

Injected faults (constructor keywords, `set_faults`, ``POST /replay/faults``):
    latency          seconds added to every protocol request
    fail_next        N requests answered with HTTP `fail_status` (503) and an HTML page
    timeout_next     N requests that sleep `hang_seconds` (30) before answering
    reset_next       N requests whose connection is reset without any response
    truncate_next    N responses cut in half (full Content-Length, half the body, close)
    short_page_next  N non-empty search_read results with their last record dropped
    fault_match      only requests whose ``"<path> <model>.<method>"`` contains this text
    missing_error    True (default): ``read`` of ids not in the dataset answers Odoo's MissingError,
                     as the project's contract asks; False: skip them, as Odoo 17's ORM does
A request takes at most one of reset/fail/timeout (in that order); truncation
and short pages apply to requests that are answered.

Usage::

    with ReplayServer("tests/data/small", latency=0.01, fail_next=1) as odoo:
        client = OdooClient(odoo.url, odoo.meta["db"], ...)
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError, FaturamentoError
from .data import ReplayData
from .protocols import DOC_PREFIX, JSON_TYPE, Call, Reply, html_reply, parse_request
from .web import WEB_PREFIX, Sessions, parse_web

logger = logging.getLogger(__name__)

FAULT_DEFAULTS: dict[str, Any] = {
    "fail_next": 0,
    "fail_status": 503,
    "timeout_next": 0,
    "hang_seconds": 30.0,
    "reset_next": 0,
    "truncate_next": 0,
    "short_page_next": 0,
    "fault_match": None,
    "missing_error": True,
}
IDLE_TIMEOUT = 120.0  # seconds a keep-alive connection may stay silent before its thread ends


class ReplayServer:
    """The replay Odoo; `start` serves it from a daemon thread, `stop` ends it."""

    def __init__(self, dataset: Path | str, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0, **faults: Any):
        self.dataset = Path(dataset)
        self.host, self.port = host, port
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._data = ReplayData(self.dataset)  # a bad dataset fails here, not on the first request
        self._latency = float(latency)
        self._faults = _fault_config(faults)
        self._calls: dict[str, int] = {}
        self._requests = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self.sessions = Sessions()  # the web routes' logins; they outlive a reload, as Odoo's do a deploy
        self.url = ""

    @property
    def meta(self) -> dict:
        """The dataset's ``meta.json`` (db, login, password, api_key, uid), defaults filled in."""
        return dict(self._data.meta)

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> "ReplayServer":
        """Bind and serve in a daemon thread; `url` is valid on return."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        try:
            self._httpd = _HTTPServer((self.host, self.port), _Handler)
        except OSError as exc:
            raise ConfigError(f"odoo-replay cannot listen on `{self.host}:{self.port}`: {exc.strerror or exc}") from exc
        self._httpd.replay = self
        host, port = self._httpd.server_address[:2]
        self.url = f"http://{host}:{port}"
        # a short poll interval: `stop` (httpd.shutdown) waits up to one interval
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=f"odoo-replay:{port}", daemon=True
        )
        self._thread.start()
        logger.info("replay Odoo serving %s at %s", self.dataset, self.url)
        return self

    def stop(self) -> None:
        """Stop serving, wake hanging requests and close open keep-alive connections."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            conns, self._connections = list(self._connections), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "ReplayServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def reload(self) -> None:
        """Re-read the dataset from disk; the old data keeps serving if the new one is broken."""
        data = ReplayData(self.dataset)
        with self._lock:
            self._data = data
        logger.info("replay Odoo reloaded %s: %s", self.dataset, data.counts())

    # ------------------------------------------------------------ faults, stats

    def set_faults(self, **faults: Any) -> None:
        """Replace the injected faults (keys of `FAULT_DEFAULTS`; `latency` too, kept if absent)."""
        latency = faults.pop("latency", None)
        config = _fault_config(faults)
        with self._lock:
            self._faults = config
            if latency is not None:
                self._latency = float(latency)

    def faults(self) -> dict:
        with self._lock:
            return {"latency": self._latency, **self._faults}

    def stats(self) -> dict:
        """``{"calls": {"<model>.<method>": n, ...}, "requests": n}`` since start or `reset_stats`."""
        with self._lock:
            return {"calls": dict(sorted(self._calls.items())), "requests": self._requests}

    def reset_stats(self) -> None:
        with self._lock:
            self._calls.clear()
            self._requests = 0

    # ------------------------------------------------- used by the request handler

    def _begin(self, path: str, key: str) -> tuple[ReplayData, float, str | None]:
        """Count a protocol request and take its fault: the data to use, latency, and
        "reset", "fail", "timeout" or None."""
        with self._lock:
            self._requests += 1
            fault = None
            for name in ("reset", "fail", "timeout"):
                if self._take_locked(f"{name}_next", path, key):
                    fault = name
                    break
            if key and fault not in ("reset", "fail"):
                self._calls[key] = self._calls.get(key, 0) + 1
            data = self._data.strict_reads() if self._faults["missing_error"] else self._data
            return data, self._latency, fault

    def _take(self, counter: str, path: str, key: str) -> bool:
        with self._lock:
            return self._take_locked(counter, path, key)

    def _take_locked(self, counter: str, path: str, key: str) -> bool:
        if self._faults[counter] <= 0:
            return False
        match = self._faults["fault_match"]
        if match and match not in f"{path} {key}":
            return False
        self._faults[counter] -= 1
        return True

    def _short_page(self, path: str) -> Any:
        """A result transform that drops the last record of a search_read when a short page is due."""

        def transform(key: str, result: Any) -> Any:
            if key.endswith(".search_read") and isinstance(result, list) and result and self._take("short_page_next", path, key):
                return result[:-1]
            return result

        return transform

    def _wait(self, seconds: float) -> None:
        """Sleep that `stop` interrupts, so a hanging request never outlives the server."""
        if seconds > 0:
            self._stopping.wait(seconds)

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)


def _fault_config(faults: dict) -> dict:
    unknown = set(faults) - FAULT_DEFAULTS.keys()
    if unknown:
        raise TypeError(f"unknown replay fault(s) {sorted(unknown)}; known: {sorted(FAULT_DEFAULTS)} and latency")
    config = {**FAULT_DEFAULTS, **faults}
    for name in ("fail_next", "timeout_next", "reset_next", "truncate_next", "short_page_next", "fail_status"):
        config[name] = int(config[name])
    config["hang_seconds"] = float(config["hang_seconds"])
    config["missing_error"] = bool(config["missing_error"])
    return config


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    replay: ReplayServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that hangs up mid-request is normal here (timeouts, injected resets)
        logger.debug("replay: connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: benchmarks page through one connection
    server_version = "odoo-replay/17.0"
    timeout = IDLE_TIMEOUT
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.replay._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.replay._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("replay %s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, verb: str) -> None:
        replay = self.server.replay
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if path.startswith("/replay/"):
            self._send(self._control(replay, verb, path, body))
            return
        parsed: Call | Reply
        if verb != "POST" and not path.startswith(DOC_PREFIX):
            parsed = html_reply(405, "Method Not Allowed", "Odoo's RPC endpoints take POST only.")
        elif path.startswith(WEB_PREFIX):
            parsed = parse_web(path, self.headers, body, replay.sessions)
        else:
            parsed = parse_request(path, self.headers, body)
        key = parsed.key if isinstance(parsed, Call) else ""
        data, latency, fault = replay._begin(path, key)
        replay._wait(latency)
        if fault == "reset":
            self._reset()
            return
        if fault == "fail":
            status = replay.faults()["fail_status"]
            self._send(html_reply(status, "Service Unavailable" if status == 503 else "Error", "Injected failure."))
            return
        if fault == "timeout":
            replay._wait(replay.faults()["hang_seconds"])
        reply = parsed.run(data, replay._short_page(path)) if isinstance(parsed, Call) else parsed
        self._send(reply, truncate=replay._take("truncate_next", path, key))

    def _control(self, replay: ReplayServer, verb: str, path: str, body: bytes) -> Reply:
        try:
            if path == "/replay/stats" and verb == "GET":
                return _json(200, replay.stats())
            if path == "/replay/reload" and verb == "POST":
                replay.reload()
                return _json(200, {"reloaded": True, "records": replay._data.counts()})
            if path == "/replay/faults":
                if verb == "POST":
                    replay.set_faults(**json.loads(body or b"{}"))
                return _json(200, replay.faults())
            if path == "/replay/stats/reset" and verb == "POST":
                replay.reset_stats()
                return _json(200, replay.stats())
        except (TypeError, ValueError) as exc:  # bad fault settings
            return _json(400, {"error": str(exc)})
        except FaturamentoError as exc:  # a broken dataset on reload: the old one keeps serving
            return _json(500, {"error": str(exc)})
        return html_reply(404, "Not Found", f"No replay control endpoint {verb} {path}.")

    def _send(self, reply: Reply, truncate: bool = False) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body[: len(reply.body) // 2] if truncate else reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout fired): nothing left to answer
        if truncate:
            self.close_connection = True

    def _reset(self) -> None:
        """Close the connection with a TCP reset, before any byte of response."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        self.connection.close()  # the fd really closes (RST) once rfile/wfile are closed in finish()


def _json(status: int, obj: Any) -> Reply:
    return Reply(status, json.dumps(obj).encode(), JSON_TYPE)


def serve_forever(
    dataset: Path | str, host: str = "127.0.0.1", port: int = 8069, latency: float = 0.0, missing_error: bool = True
) -> None:
    """Serve `dataset` in the foreground until Ctrl-C or SIGTERM; SIGHUP reloads it.

    Prints the URL, database and login to stderr (never the password or API key).
    """
    server = ReplayServer(dataset, host=host, port=port, latency=latency, missing_error=missing_error).start()
    done = threading.Event()

    def reload(*_: Any) -> None:
        try:
            server.reload()
            print(f"odoo-replay: reloaded {dataset}", file=sys.stderr)
        except Exception as exc:  # keep serving the old data
            print(f"odoo-replay: reload failed, still serving the previous data: {exc}", file=sys.stderr)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, lambda *_: done.set())
        previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, lambda *_: done.set())
        if hasattr(signal, "SIGHUP"):
            previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, reload)
    meta = server.meta
    print(
        f"odoo-replay: serving {dataset} at {server.url}  db={meta['db']!r} login={meta['login']!r} "
        f"uid={meta['uid']} (password and API key: {Path(dataset) / 'meta.json'})",
        file=sys.stderr,
    )
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print("odoo-replay: stopped", file=sys.stderr)
