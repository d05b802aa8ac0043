"""Every error the job raises on purpose, and what the user can do about it.

    FaturamentoError                  root: the CLI turns these into a message and an exit code
    ├── ConfigError                   bad flags or environment (exit 2)
    ├── LockHeld                      another run holds the lock (exit 3)
    ├── OdooError                     anything from the Odoo side (exit 1)
    │   ├── OdooTransientError        retry later: unreachable, timeout, HTTP 5xx, broken payload
    │   └── OdooPermanentError        fix something: login refused, unknown model/field, bad domain
    ├── DataError                     the data cannot be loaded as it is (exit 1)
    │   └── RejectRatioExceeded       too many rejected lines: an upstream change, not data
    └── DatabaseError                 PostgreSQL refused or dropped the run (exit 1)
        └── PermissionDenied          the role lacks a grant `sync` needs (names the table and privilege)

Messages name the thing in backticks and say what to do. They never carry a
password or API key (see `settings.redact`).
"""

from __future__ import annotations


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
    pass


class PermissionDenied(DatabaseError):
    pass
