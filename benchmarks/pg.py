"""Admin helpers on the embedded PostgreSQL: fresh, cloned and dropped databases.

Every measurement gets its own database: an empty one (full runs, `init_db`
applied) or a file-level clone of a prepared template (incremental runs: the
pre-loaded tables). Clones use ``STRATEGY FILE_COPY`` (PostgreSQL 15+), which
copies the files instead of writing every block to the WAL.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit, urlunsplit

import adbc_driver_postgresql.dbapi as adbc

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def _check(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"database name `{name}` must be lower-case letters, digits and underscores")
    return name


def db_url(admin_url: str, name: str) -> str:
    """`admin_url` pointing at database `name` (same server, same socket)."""
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path="/" + quote(_check(name))))


def execute(url: str, *statements: str, autocommit: bool = True) -> None:
    with adbc.connect(url, autocommit=autocommit) as conn, conn.cursor() as cur:
        for sql in statements:
            cur.execute(sql)
        if not autocommit:
            conn.commit()


def query(url: str, sql: str) -> list[tuple]:
    with adbc.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def query_one(url: str, sql: str, params: tuple = ()):
    with adbc.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]


def exists(admin_url: str, name: str) -> bool:
    with adbc.connect(admin_url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = $1", (_check(name),))
        return bool(cur.fetchall())


def create(admin_url: str, name: str, template: str | None = None) -> str:
    """CREATE DATABASE `name` (a file copy of `template` when given); returns its URL."""
    sql = f'CREATE DATABASE "{_check(name)}"'
    if template:
        sql += f' TEMPLATE "{_check(template)}" STRATEGY FILE_COPY'
    execute(admin_url, sql)
    return db_url(admin_url, name)


def drop(admin_url: str, name: str) -> None:
    execute(admin_url, f'DROP DATABASE IF EXISTS "{_check(name)}" WITH (FORCE)')


def databases(admin_url: str, prefix: str) -> list[str]:
    rows = query(admin_url, "SELECT datname FROM pg_database ORDER BY datname")
    return [r[0] for r in rows if r[0].startswith(prefix)]


def server_version(admin_url: str) -> str:
    return str(query(admin_url, "SELECT current_setting('server_version')")[0][0])


def settings(admin_url: str, names: tuple[str, ...]) -> dict[str, str]:
    return {n: str(query_one(admin_url, "SELECT current_setting($1)", (n,))) for n in names}
