"""The embedded PostgreSQL: a real server from the `pgserver` package, in a local directory.

Used when no database URL is configured, so a fresh machine needs no server
install. pgserver runs the server as an unprivileged user when started as root,
and stops it when the last process that asked for it exits.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from urllib.parse import quote

from ..dsn import resolve
from ..errors import DatabasePermanentError

log = logging.getLogger(__name__)

_servers: dict[Path, object] = {}


def embedded_url(pgdata: Path | str, database: str = "postgres") -> str:
    """Start (or join) the embedded server in `pgdata` and return a URL for `database`.

    The URL connects through the server's Unix socket, in the form both
    connectorx and libpq (ADBC) accept: ``postgresql://postgres@localhost/DB?host=/dir``.
    """
    pgdata = Path(pgdata).resolve()
    if pgdata not in _servers:
        pgdata.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs' XDG_RUNTIME_DIR notice
            try:
                import pgserver

                _servers[pgdata] = pgserver.get_server(pgdata)
            except Exception as exc:  # pgserver raises plain exceptions with the server's log
                raise DatabasePermanentError(
                    f"could not start the embedded PostgreSQL in `{pgdata}`: {exc}. "
                    "Remove that directory to start from scratch, or set `FATURAMENTO_DATABASE_URL`."
                ) from exc
        log.info("embedded PostgreSQL running in %s", pgdata)
    return f"postgresql://postgres@localhost/{quote(database)}?host={quote(str(pgdata))}"


def create_database(admin_url: str, name: str) -> None:
    """CREATE DATABASE `name` if it does not exist (tests and the demo use their own)."""
    import adbc_driver_postgresql.dbapi as adbc

    if not name.replace("_", "").isalnum():
        raise DatabasePermanentError(f"database name `{name}` must be letters, digits and underscores")
    with adbc.connect(resolve(admin_url, dict(os.environ)).libpq(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = $1", (name,))
        if not cur.fetchall():
            cur.execute(f'CREATE DATABASE "{name}"')  # name checked above; DDL takes no parameters
