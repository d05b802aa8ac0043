"""Every error the job raises on purpose, and what the user can do about it.

    FaturamentoError                  root: the CLI turns these into a message and an exit code
    ├── ConfigError                   bad flags or environment (exit 2)
    ├── LockHeld                      another run holds the lock (exit 3)
    ├── OdooError                     anything from the Odoo side (exit 1)
    │   ├── OdooTransientError        retry later: unreachable, timeout, HTTP 5xx, broken payload,
    │   │                             after the transport's own retries (exit 75)
    │   └── OdooPermanentError        fix something: login refused, unknown model/field, bad domain (exit 1)
    ├── DataError                     the data cannot be loaded as it is (exit 1)
    │   └── RejectRatioExceeded       too many rejected lines: an upstream change, not data
    └── DatabaseError                 PostgreSQL refused or dropped the run (exit 1)
        ├── DatabaseTransientError    retry later: unreachable, connection lost or terminated, deadlock,
        │                             serialization failure, lock or statement timeout (exit 75)
        └── DatabasePermanentError    fix something: constraint, privilege, missing table/column,
            │                         unknown database or role, bad URL (exit 1)
            ├── PermissionDenied      the role lacks a grant `sync` needs (names the table and privilege)
            └── QuarantineLimit       more NFs refused than a quarantine may hold: systematic, not bad NFs

Exit 75 is `EX_TEMPFAIL` (sysexits.h): the run failed, nothing was written, and
the same run later can succeed without anybody changing anything. Every other
failure is 1: somebody has to fix something first. `database_error` picks the
database side's class from the driver's SQLSTATE. (A connection lost during the
COMMIT itself is also 75, though the server may have committed: a rerun is safe
either way, since a run over data already written changes nothing.)

Messages name the thing in backticks and say what to do. They never carry a
password or API key (see `settings.redact`).
"""

from __future__ import annotations


EX_TEMPFAIL = 75  # sysexits.h: "temporary failure, try again later"


class FaturamentoError(Exception):
    """Root of the job's errors; `exit_code` is what the CLI returns."""

    exit_code = 1


class ConfigError(FaturamentoError):
    exit_code = 2


class LockHeld(FaturamentoError):
    exit_code = 3


class OdooError(FaturamentoError):
    """An Odoo call failed. `transient` tells the caller whether a retry can help."""

    transient = False


class OdooTransientError(OdooError):
    transient = True
    exit_code = EX_TEMPFAIL


class OdooPermanentError(OdooError):
    transient = False


class DataError(FaturamentoError):
    pass


class RejectRatioExceeded(DataError):
    def __init__(self, rejected: int, in_domain: int, limit: float, top_reasons: list[tuple[str, int]]):
        self.rejected, self.in_domain, self.limit, self.top_reasons = rejected, in_domain, limit, top_reasons
        reasons = ", ".join(f"`{r}` × {n}" for r, n in top_reasons)
        super().__init__(
            f"{rejected} of {in_domain} invoice lines were rejected "
            f"({rejected / max(in_domain, 1):.1%} > {limit:.1%}); top reasons: {reasons}. "
            "Nothing was written. This usually means Odoo's data or schema changed upstream: "
            "inspect the `rejected` part of the run artifacts, or raise `--max-reject-ratio` "
            "if the lines are really broken."
        )


class DatabaseError(FaturamentoError):
    """PostgreSQL failed the run. `sqlstate` is the server's code when the driver had one."""

    transient = False

    def __init__(self, message: str, sqlstate: str | None = None):
        super().__init__(message)
        self.sqlstate = sqlstate
        # The server's own fields (libpq's PG_DIAG_*) when the driver had them: the quarantine
        # names an NF from `detail` (a unique violation's key) and keeps `primary` (a trigger's text).
        self.primary: str | None = None
        self.detail: str | None = None


class DatabaseTransientError(DatabaseError):
    transient = True
    exit_code = EX_TEMPFAIL


class DatabasePermanentError(DatabaseError):
    transient = False


class QuarantineLimit(DatabasePermanentError):
    """More NFs were refused than the quarantine takes (DESIGN §12): a systematic failure, exit 1."""


class PermissionDenied(DatabasePermanentError):
    """The job's role lacks a grant; the message names the table and the privilege."""

    def __init__(self, message: str, sqlstate: str | None = "42501"):
        super().__init__(message, sqlstate)


# SQLSTATEs after which the same run, later, can succeed (PostgreSQL appendix A).
TRANSIENT_SQLSTATES = {
    "40001": "serialization failure",
    "40P01": "deadlock",
    "55P03": "lock timeout",
    "57014": "statement timeout or query cancelled",
    "57P01": "server shut down by an administrator (or the backend was terminated)",
    "57P02": "server crash shutdown",
    "57P03": "server starting up or shutting down",
    "53300": "too many connections",
}
# Transient ones the write transaction retries by itself (the others need a new connection).
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "55P03"})
# What libpq says at connect time when the server answered and refused, or the URL itself
# is wrong (libpq reports both with the same IO status as an unreachable server). The
# driver gives no SQLSTATE before a session exists, so this is the one place a message is read.
_REFUSED_AT_CONNECT = ("does not exist", "password authentication failed", "no pg_hba.conf entry",
                       "permission denied", "invalid", "missing \"=\"", "end of string reached",
                       "unrecognized",
                       # TLS that cannot verify or is refused: a certificate or sslmode to fix
                       "certificate", "does not match host name", "no encryption", "SSL")  # fmt: skip


# SQLSTATEs that blame a row, not the run (DESIGN §12): data exceptions (class 22), integrity
# constraint violations (class 23) and a trigger's RAISE EXCEPTION (P0001). Anything else —
# connection, privilege, lock, timeout, deadlock — is systematic and fails the run as before.
ROW_SPECIFIC_CLASSES = ("22", "23")
ROW_SPECIFIC_SQLSTATES = frozenset({"P0001"})


def is_row_specific(exc: BaseException) -> bool:
    """A write refused because of some row's values: the quarantine may take that row's NF out."""
    if not isinstance(exc, DatabasePermanentError) or isinstance(exc, (PermissionDenied, QuarantineLimit)):
        return False
    state = exc.sqlstate or ""
    return state[:2] in ROW_SPECIFIC_CLASSES or state in ROW_SPECIFIC_SQLSTATES


def is_transient_sqlstate(sqlstate: str | None) -> bool:
    """Class 08 (connection exception) and the codes in `TRANSIENT_SQLSTATES`."""
    return bool(sqlstate) and (sqlstate.startswith("08") or sqlstate in TRANSIENT_SQLSTATES)


def database_error(message: str, cause: BaseException, *, connecting: bool = False) -> DatabaseError:
    """The transient or permanent `DatabaseError` for a driver exception `cause`.

    The SQLSTATE comes from the ADBC exception's `sqlstate`. Without one, an ADBC
    `IO` status (libpq lost or never got a connection: unreachable, terminated
    backend) is transient — unless, `connecting`, the server answered and
    refused (unknown database or role, bad password): that needs a fix.
    """
    sqlstate = getattr(cause, "sqlstate", None) or None
    if sqlstate:
        cls = DatabaseTransientError if is_transient_sqlstate(sqlstate) else DatabasePermanentError
        error = cls(message, sqlstate)
        error.primary, error.detail = _diagnostics(cause)
        return error
    status = getattr(getattr(cause, "status_code", None), "name", None)
    if status == "IO" or connecting:
        if connecting and any(text in str(cause) for text in _REFUSED_AT_CONNECT):
            return DatabasePermanentError(message)
        return DatabaseTransientError(message)
    return DatabasePermanentError(message)


def _diagnostics(cause: BaseException) -> tuple[str | None, str | None]:
    """The server's primary message and detail from an ADBC exception's `details` (libpq PG_DIAG_*)."""
    fields: dict[str, str] = {}
    for key, value in getattr(cause, "details", None) or []:
        k = key.decode(errors="replace") if isinstance(key, bytes) else str(key)
        fields[k] = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return fields.get("PG_DIAG_MESSAGE_PRIMARY"), fields.get("PG_DIAG_MESSAGE_DETAIL")
