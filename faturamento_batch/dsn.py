"""The database setting, read the way libpq reads it, rendered for each driver.

`FATURAMENTO_DATABASE_URL` may be any form libpq takes: a ``postgresql://`` or
``postgres://`` URI (also SQLAlchemy's ``postgresql+driver://``), with or
without a host, a socket directory as ``?host=/dir`` or as a percent-encoded
host (``%2Fdir``), percent-encoded user and password, query parameters; or a
key/value string (``host=… dbname=… password='a b\\'c'``). libpq's environment
(``PGHOST``, ``PGPORT``, ``PGUSER``, ``PGPASSWORD``, ``PGDATABASE``,
``PGSSLMODE``, ``PGOPTIONS``, …) fills what the setting leaves out.

Both drivers must reach the same database as the same user with the same TLS
and search path. ADBC is libpq, so it gets a key/value string of the resolved
keywords. connectorx parses URLs itself (rust-postgres): it has no `host=` in
the query (a socket directory goes percent-encoded in the host), knows only
``sslmode`` disable/prefer/require, takes ``sslrootcert`` with ``require`` as
libpq's ``verify-ca``, and rejects keywords it does not know. What it cannot
carry and we cannot emulate is refused here, with `ConfigError`, naming the
keyword; the password never appears in a message.

Pure text in, text out (the environment is passed in): no I/O beyond looking
whether a socket or a certificate file exists.
"""

from __future__ import annotations

import getpass
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote

from .errors import ConfigError

SETTING = "FATURAMENTO_DATABASE_URL"

# libpq's environment variables → the keyword each one fills (only when the setting has none).
ENVIRONMENT = {
    "PGHOST": "host",
    "PGPORT": "port",
    "PGDATABASE": "dbname",
    "PGUSER": "user",
    "PGPASSWORD": "password",
    "PGOPTIONS": "options",
    "PGAPPNAME": "application_name",
    "PGSSLMODE": "sslmode",
    "PGSSLROOTCERT": "sslrootcert",
    "PGSSLCERT": "sslcert",
    "PGSSLKEY": "sslkey",
    "PGCONNECT_TIMEOUT": "connect_timeout",
    "PGPASSFILE": "passfile",
}
# libpq would honour these, connectorx cannot: refused rather than half-applied.
UNSUPPORTED_ENVIRONMENT = ("PGSERVICE", "PGHOSTADDR", "PGTARGETSESSIONATTRS", "PGSSLCRL", "PGREQUIRESSL")

# Keywords both drivers honour (connectorx after the translation below).
SUPPORTED = (
    "host", "port", "dbname", "user", "password", "sslmode", "sslrootcert", "sslcert", "sslkey",
    "options", "connect_timeout", "application_name", "fallback_application_name", "passfile",
    "keepalives", "keepalives_idle", "target_session_attrs",
)  # fmt: skip
# The rest of libpq's keywords: known, but connectorx cannot carry them.
OTHER_LIBPQ = (
    "hostaddr", "channel_binding", "client_encoding", "keepalives_interval", "keepalives_count",
    "tcp_user_timeout", "replication", "gssencmode", "sslnegotiation", "sslcompression", "sslpassword",
    "sslcertmode", "sslcrl", "sslcrldir", "sslsni", "requirepeer", "ssl_min_protocol_version",
    "ssl_max_protocol_version", "krbsrvname", "gsslib", "gssdelegation", "service", "load_balance_hosts",
    "require_auth", "requiressl",
)  # fmt: skip
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# Shown for the password wherever a connection is described.
MASK = "***"


def _refuse(what: str, why: str) -> ConfigError:
    return ConfigError(f"`{SETTING}`: {what} {why}")


@dataclass(frozen=True)
class ConnInfo:
    """Resolved libpq keywords (host is a name, an address or a socket directory)."""

    params: dict[str, str] = field(default_factory=dict)

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.params.get(key, default)

    @property
    def password(self) -> str | None:
        return self.params.get("password") or None

    @property
    def is_socket(self) -> bool:
        return self.params.get("host", "").startswith("/")

    def replace(self, **changes: str | None) -> "ConnInfo":
        """A copy with `changes` applied (None removes a keyword)."""
        params = dict(self.params)
        for key, value in changes.items():
            if value is None:
                params.pop(key, None)
            else:
                params[key] = value
        return ConnInfo(params)

    def with_session(self, application_name: str, statement_timeout_ms: int = 0, lock_timeout_ms: int = 0,
                     time_zone: str | None = None) -> "ConnInfo":
        """The job's session settings merged into the user's: their `application_name` wins, and
        `statement_timeout`/`lock_timeout`/`TimeZone` go before their `options`, so an explicit one of
        theirs wins too (the server applies `-c` options in order). `time_zone` is a checked zone
        name (`config.Rules.time_zone`: no space, no quote)."""
        settings = [(name, ms) for name, ms in (("statement_timeout", statement_timeout_ms),
                                                ("lock_timeout", lock_timeout_ms)) if ms > 0]  # fmt: skip
        if time_zone:
            settings.append(("TimeZone", time_zone))
        ours = " ".join(f"-c {name}={value}" for name, value in settings)
        options = " ".join(o for o in (ours, self.params.get("options", "")) if o)
        return self.replace(
            application_name=self.params.get("application_name") or application_name,
            options=options or None,
        )

    # -- renderings ------------------------------------------------------------------
    def libpq(self) -> str:
        """A libpq key/value string (what ADBC gets): every value quoted, `\\` and `'` escaped."""
        def q(value: str) -> str:
            return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

        return " ".join(f"{k}={q(v)}" for k, v in self.params.items())

    def connectorx(self) -> str:
        """The URL connectorx gets: same host, port, database, user, TLS and options."""
        p = dict(self.params)
        host = p.pop("host")
        if host.startswith("/"):
            netloc_host = quote(host, safe="")
            # libpq does not use TLS over a Unix socket; rust-postgres would try and fail.
            for key in ("sslmode", "sslrootcert", "sslcert", "sslkey"):
                p.pop(key, None)
        else:
            netloc_host = f"[{host}]" if ":" in host else host
        user = quote(p.pop("user"), safe="")
        password = p.pop("password", None)
        userinfo = user + (":" + quote(password, safe="") if password else "")
        port = p.pop("port")
        dbname = quote(p.pop("dbname"), safe="")
        p.pop("fallback_application_name", None)  # unknown to rust-postgres; the job sets application_name
        mode = p.get("sslmode")
        if mode == "allow":  # neither verifies anything; rust-postgres knows only prefer
            p["sslmode"] = "prefer"
        elif mode in ("verify-ca", "verify-full"):
            # rust-postgres verifies the CA under `require` when given a root certificate. The host
            # name is verified by libpq on the run's own connection, made before any read.
            p["sslmode"] = "require"
        query = "&".join(f"{k}={quote(v, safe='')}" for k, v in p.items())
        return f"postgresql://{userinfo}@{netloc_host}:{port}/{dbname}" + (f"?{query}" if query else "")

    def describe(self) -> str:
        """For messages: the connectorx-style URL with the password masked."""
        return self.replace(password=MASK if self.password else None).connectorx().replace(quote(MASK, safe=""), MASK)


# -- parsing ----------------------------------------------------------------------------
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://")


def is_uri(text: str) -> bool:
    return bool(_SCHEME.match(text.strip()))


def _split_hostport(hostspec: str) -> tuple[str, str | None]:
    if hostspec.startswith("["):
        end = hostspec.find("]")
        if end < 0:
            raise _refuse(f"the host `{hostspec}`", "has an unclosed `[` (an IPv6 address is written `[::1]:5432`)")
        host, rest = hostspec[1:end], hostspec[end + 1 :]
        return host, (rest[1:] if rest.startswith(":") else None)
    host, sep, port = hostspec.rpartition(":") if ":" in hostspec else (hostspec, "", "")
    return unquote(host), (unquote(port) if sep else None)


def parse_uri(text: str) -> dict[str, str]:
    """libpq's URI form → keywords. Raises `ConfigError` for a scheme other than postgres(ql)."""
    m = _SCHEME.match(text)
    assert m is not None
    scheme = m.group("scheme").lower()
    if scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
        raise _refuse(f"the scheme `{m.group('scheme')}://`", "is not PostgreSQL: use `postgresql://…` or a `host=… dbname=…` string")
    rest = text[m.end() :]
    out: dict[str, str] = {}
    # Like libpq: user info is what comes before an `@` ahead of the first `/`, so a raw `?`
    # or `#` in a password still reads as libpq reads it.
    head = rest.split("/", 1)[0]
    if "@" in head:
        userinfo = head.rpartition("@")[0]
        rest = rest[len(userinfo) + 1 :]
        user, colon, password = userinfo.partition(":")
        if user:
            out["user"] = unquote(user)
        if colon and password:
            out["password"] = unquote(password)
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, rest = rest[:end], rest[end:]
    path, _, query = rest.partition("?")
    path = path[1:] if path.startswith("/") else path
    if "," in authority:
        raise _refuse(f"several hosts (`{authority}`)", "are not supported: connectorx takes one host; name one")
    if authority:
        host, port = _split_hostport(authority)
        if host:
            out["host"] = host
        if port:
            out["port"] = port
    if path:
        out["dbname"] = unquote(path)
    for pair in filter(None, query.split("&")):
        key, eq, value = pair.partition("=")
        if not eq:
            raise _refuse(f"the URL parameter `{unquote(key)}`", "has no value (write `key=value`)")
        key, value = unquote(key), unquote(value)  # not `+` → space: libpq does not
        if key == "ssl" and value == "true":  # JDBC's spelling, which libpq accepts too
            key, value = "sslmode", "require"
        out[key] = value
    return out


def parse_keyword_value(text: str) -> dict[str, str]:
    """libpq's key/value form (``k=v k='quoted \\' value'``) → keywords."""
    out: dict[str, str] = {}
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            return out
        start = i
        while i < n and text[i] != "=" and not text[i].isspace():
            i += 1
        key = text[start:i]
        while i < n and text[i].isspace():
            i += 1
        if i >= n or text[i] != "=":
            raise _refuse(f"`{key}`", "is missing `=` (a key/value string reads `host=… dbname=… user=…`)")
        i += 1
        while i < n and text[i].isspace():
            i += 1
        value: list[str] = []
        if i < n and text[i] == "'":
            i += 1
            while True:
                if i >= n:
                    raise _refuse(f"the value of `{key}`", "has an unterminated quote")
                ch = text[i]
                if ch == "\\" and i + 1 < n:
                    value.append(text[i + 1])
                    i += 2
                elif ch == "'":
                    i += 1
                    break
                else:
                    value.append(ch)
                    i += 1
        else:
            while i < n and not text[i].isspace():
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                value.append(text[i])
                i += 1
        out[key] = "".join(value)


def raw_keywords(text: str) -> dict[str, str]:
    """The keywords the setting itself spells (no environment, no defaults, nothing checked)."""
    text = text.strip()
    if is_uri(text):
        return parse_uri(text)
    if "=" in text:
        return parse_keyword_value(text)
    raise _refuse("the value", "is neither a `postgresql://` URL nor a `host=… dbname=…` string")


def password_of(text: str | None, env: dict[str, str] | None = None) -> str | None:
    """The password the setting (or `PGPASSWORD`) carries, for masking; never raises."""
    env = os.environ if env is None else env
    try:
        found = raw_keywords(text).get("password") if text else None
    except ConfigError:
        found = None
    return found or env.get("PGPASSWORD") or None


def _default_host(port: str) -> str:
    # libpq's default is its compiled-in socket directory; rust-postgres has none, so pick
    # one for both: a directory where a server's socket is, else localhost over TCP.
    for directory in ("/var/run/postgresql", "/run/postgresql", "/tmp"):
        if Path(directory, f".s.PGSQL.{port}").exists():
            return directory
    return "localhost"


def resolve(text: str, env: dict[str, str] | None = None) -> ConnInfo:
    """The setting → every keyword both drivers need, gaps filled like libpq. Raises `ConfigError`."""
    env = os.environ if env is None else env
    given = raw_keywords(text)
    for key in given:
        if key in OTHER_LIBPQ:
            raise _refuse(f"the parameter `{key}`", "is one libpq knows but connectorx cannot carry: leave it out")
        if key not in SUPPORTED:
            raise _refuse(f"the parameter `{key}`", f"is not a libpq connection parameter (known: {', '.join(SUPPORTED)})")
    for var in UNSUPPORTED_ENVIRONMENT:
        if env.get(var):
            raise ConfigError(f"`{var}` is set: connectorx cannot honour it; unset it and put what it means in `{SETTING}`")
    params = {k: v for k, v in given.items() if v != ""}
    for var, key in ENVIRONMENT.items():
        if key not in params and env.get(var):
            params[key] = env[var]
    params.setdefault("port", "5432")
    if not params["port"].isdigit() or not 0 < int(params["port"]) < 65536:
        raise _refuse(f"the port `{params['port']}`", "is not a port number (1–65535)")
    if "," in params.get("host", ""):
        raise _refuse(f"several hosts (`{params['host']}`)", "are not supported: connectorx takes one host; name one")
    params.setdefault("host", _default_host(params["port"]))
    params.setdefault("user", getpass.getuser())
    params.setdefault("dbname", params["user"])
    _check_tls(params, env)
    # libpq reads the password file itself; connectorx cannot, so it is read here for both.
    passfile = params.pop("passfile", None) or str(Path(env.get("HOME") or str(Path.home()), ".pgpass"))
    if "password" not in params:
        found = pgpass_lookup(Path(passfile), params["host"], params["port"], params["dbname"], params["user"])
        if found:
            params["password"] = found
    for key in ("connect_timeout", "keepalives", "keepalives_idle"):
        if key in params and not params[key].lstrip("-").isdigit():
            raise _refuse(f"`{key}={params[key]}`", "must be a whole number (of seconds)")
    if params.get("target_session_attrs", "any") not in ("any", "read-write"):
        raise _refuse(f"`target_session_attrs={params['target_session_attrs']}`", "is not supported by connectorx (only `any` or `read-write`)")
    order = [k for k in SUPPORTED if k in params]
    return ConnInfo({k: params[k] for k in order})


def _check_tls(params: dict[str, str], env: dict[str, str]) -> None:
    mode = params.get("sslmode")
    if mode is not None and mode not in SSLMODES:
        raise _refuse(f"`sslmode={mode}`", f"is not an sslmode (one of {', '.join(SSLMODES)})")
    if ("sslcert" in params) != ("sslkey" in params):
        raise _refuse("a client certificate", "needs both `sslcert` and `sslkey` (connectorx takes them as a pair)")
    if params.get("sslrootcert") == "system":
        raise _refuse("`sslrootcert=system`", "cannot be passed to connectorx: give the CA file's path")
    if mode in ("verify-ca", "verify-full") and "sslrootcert" not in params and not params["host"].startswith("/"):
        # libpq's default root certificate; connectorx has none, so name it for both.
        home = env.get("HOME") or str(Path.home())
        default = Path(home, ".postgresql", "root.crt")
        if not default.is_file():
            raise _refuse(f"`sslmode={mode}`", f"needs the server's CA: set `sslrootcert=/path/ca.crt` (libpq's default `{default}` does not exist)")
        params["sslrootcert"] = str(default)
    for key in ("sslrootcert", "sslcert", "sslkey"):
        if key in params and not Path(params[key]).is_file():
            raise _refuse(f"`{key}={params[key]}`", "names no readable file")


def _pgpass_fields(line: str) -> list[str]:
    fields, current, i = [], [], 0
    while i < len(line):
        if line[i] == "\\" and i + 1 < len(line):
            current.append(line[i + 1])
            i += 2
            continue
        if line[i] == ":" and len(fields) < 4:
            fields.append("".join(current))
            current = []
        else:
            current.append(line[i])
        i += 1
    return fields + ["".join(current)]


def pgpass_lookup(path: Path, host: str, port: str, dbname: str, user: str) -> str | None:
    """The password libpq would take from the password file `path` (``host:port:db:user:password``,
    `*` matches anything, a socket directory matches `localhost`), or None. Like libpq, a file
    others can read is ignored."""
    try:
        if not path.is_file() or path.stat().st_mode & 0o077:
            return None
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    wanted = ("localhost" if host.startswith("/") else host, port, dbname, user)
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = _pgpass_fields(line)
        if len(fields) == 5 and all(f in ("*", w) for f, w in zip(fields[:4], wanted)):
            return fields[4] or None
    return None
