"""Errors as Odoo reports them, for the replay server.

An `OdooFault` is the exception name Odoo puts in ``error.data.name``
(``odoo.exceptions.AccessDenied``, ``builtins.ValueError``…) with its message;
each protocol (`replay.protocols`, `replay.web`) encodes it the way Odoo does.
"""

from __future__ import annotations

from typing import Any

ACCESS_DENIED = "odoo.exceptions.AccessDenied"
ACCESS_ERROR = "odoo.exceptions.AccessError"
MISSING_ERROR = "odoo.exceptions.MissingError"
USER_ERROR = "odoo.exceptions.UserError"
VALUE_ERROR = "builtins.ValueError"
KEY_ERROR = "builtins.KeyError"
SESSION_EXPIRED = "odoo.http.SessionExpiredException"  # a web route that needs a session got none


class OdooFault(Exception):
    """An error as Odoo reports it: exception `name` (``odoo.exceptions.AccessDenied``…),
    `message`, and the HTTP `status` the JSON-2 API answers with."""

    STATUS = {
        ACCESS_DENIED: 401,
        SESSION_EXPIRED: 401,
        ACCESS_ERROR: 403,
        KEY_ERROR: 404,
        MISSING_ERROR: 404,
        VALUE_ERROR: 422,
        USER_ERROR: 422,
    }

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


def missing_records(model: str, ids: list[int], uid: Any) -> OdooFault:
    """Odoo 17's MissingError for records that are not there, worded as its ORM words it."""
    return OdooFault(MISSING_ERROR, f"Record does not exist or has been deleted.\n(Record: {model}{tuple(ids)!r}, User: {uid})")
