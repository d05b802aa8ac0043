"""Which database a run talks to, and connections to it.

The setting is read once into libpq keywords (`faturamento_batch.dsn`); ADBC
gets them as a libpq key/value string, connectorx as the URL it can parse.
Every function here takes either the setting's text or a resolved `ConnInfo`.
"""

from __future__ import annotations

import logging
import os

from ..dsn import ConnInfo, resolve
from ..errors import database_error
from ..settings import Settings, redact
from .embedded import embedded_url

log = logging.getLogger(__name__)

APPLICATION_NAME = "faturamento_batch"


def conninfo(target: str | ConnInfo) -> ConnInfo:
    """`target` resolved (the environment fills gaps); raises `ConfigError` for a form we cannot honour."""
    return target if isinstance(target, ConnInfo) else resolve(target, dict(os.environ))


def database_url(settings: Settings) -> str:
    """The configured setting (checked: a form we cannot honour raises `ConfigError` here),
    or the embedded server's URL when none is configured."""
    if settings.database_url:
        conninfo(settings.database_url)
        return settings.database_url
    return embedded_url(settings.pgdata)


def database(settings: Settings) -> ConnInfo:
    """The run's database as resolved libpq keywords."""
    return conninfo(database_url(settings))


def with_session_options(target: str | ConnInfo, statement_timeout_s: float = 0, lock_timeout_s: float = 0,
                         time_zone: str | None = None) -> ConnInfo:
    """`target` plus the job's name (pg_stat_activity), a bound on each statement and on each wait
    for a lock (so the logistics application's users never wait on the job longer than
    `lock_timeout_s`: the job gives up instead, SQLSTATE 55P03), and the session `TimeZone`
    (`time_zone`, the rules' zone: audit columns stamped from `LOCALTIMESTAMP` are the
    application's wall clock), merged into the user's own `application_name`/`options` (theirs
    win). In the startup packet — ADBC's and connectorx's alike —: no extra statement per run."""
    return conninfo(target).with_session(
        APPLICATION_NAME, int(statement_timeout_s * 1000), int(lock_timeout_s * 1000), time_zone
    )


def session_target(settings: Settings) -> ConnInfo:
    """The run's database with every session option of `settings` (timeouts, time zone)."""
    return with_session_options(database_url(settings), settings.statement_timeout, settings.lock_timeout,
                                settings.rules.time_zone)  # fmt: skip


def connectorx_url(target: str | ConnInfo) -> str:
    """The URL connectorx gets for `target`."""
    return conninfo(target).connectorx()


def describe(target: str | ConnInfo) -> str:
    """`target` for messages, password masked."""
    try:
        return conninfo(target).describe()
    except Exception:  # a message must never fail; the setting's own error is raised elsewhere
        return redact(str(target))


def adbc_connect(target: str | ConnInfo, autocommit: bool = False):
    """An ADBC DBAPI connection; errors become a transient (unreachable) or permanent (refused:
    unknown database, role, password) `DatabaseError` naming the server, password masked."""
    import adbc_driver_postgresql.dbapi as adbc

    info = conninfo(target)
    try:
        return adbc.connect(info.libpq(), autocommit=autocommit)
    except Exception as exc:
        text = str(exc)
        if info.password:
            text = text.replace(info.password, "***")
        message = f"cannot connect to PostgreSQL at `{info.describe()}`: {redact(text).strip()}"
        raise database_error(message, exc, connecting=True) from exc
