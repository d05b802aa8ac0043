"""Which database a run talks to, and connections to it.

ADBC (libpq) and connectorx both take ``postgresql://user[:password]@host[:port]/db[?host=/socket/dir]``.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from ..errors import DatabasePermanentError, database_error
from ..settings import Settings, redact
from .embedded import embedded_url

log = logging.getLogger(__name__)


def database_url(settings: Settings) -> str:
    """The configured URL, or the embedded server's when none is configured."""
    if settings.database_url:
        url = settings.database_url
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        if url.startswith("postgresql+"):  # SQLAlchemy-style driver suffix
            url = "postgresql://" + url.split("://", 1)[1]
        if not url.startswith("postgresql://"):
            raise DatabasePermanentError(f"`FATURAMENTO_DATABASE_URL` must start with postgresql:// (got `{redact(url)}`)")
        return url
    return embedded_url(settings.pgdata)


APPLICATION_NAME = "faturamento_batch"


def with_session_options(url: str, statement_timeout_s: float = 0, lock_timeout_s: float = 0) -> str:
    """`url` plus libpq parameters naming the job (pg_stat_activity), bounding each statement
    and each wait for a lock (so the logistics application's users never wait on the job
    longer than `lock_timeout_s`: the job gives up the lock instead, SQLSTATE 55P03).

    Passed in the connection string, they cost no extra statement per run. An `options`
    the URL already has is kept and goes after ours, so its own `-c` settings win.
    """
    params = {"application_name": APPLICATION_NAME}
    options = [f"-c {name}={int(seconds * 1000)}" for name, seconds in
               (("statement_timeout", statement_timeout_s), ("lock_timeout", lock_timeout_s)) if seconds > 0]  # fmt: skip
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    if options:
        query["options"] = " ".join([*options, query["options"]] if query.get("options") else options)
    query.update({k: v for k, v in params.items() if k not in query})
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def adbc_connect(url: str, autocommit: bool = False):
    """An ADBC DBAPI connection; errors become a transient (unreachable) or permanent
    (refused: unknown database, role, password) `DatabaseError` with the URL redacted."""
    import adbc_driver_postgresql.dbapi as adbc

    try:
        return adbc.connect(url, autocommit=autocommit)
    except Exception as exc:
        message = f"cannot connect to PostgreSQL at `{redact(url)}`: {redact(str(exc)).strip()}"
        raise database_error(message, exc, connecting=True) from exc
