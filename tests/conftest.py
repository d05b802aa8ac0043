"""Shared fixtures: a real PostgreSQL for the whole session, a fresh database per test.

The server is the embedded one (pgserver) unless FATURAMENTO_DATABASE_URL points
at another; each test gets its own database cloned from a template that already
has the schema, so tests never see each other's rows.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import warnings
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from faturamento_batch.db.admin import init_db
from faturamento_batch.db.connection import adbc_connect
from faturamento_batch.db.embedded import create_database, embedded_url

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "data" / "fixtures"
TEMPLATE_DB = "fb_template"
PROD_TEMPLATE_DB = "fb_prod_template"  # production's schema today (tests/prod_schema.py) + init-db
_counter = itertools.count()


def _with_database(url: str, name: str) -> str:
    base, _, query = url.partition("?")
    base = base.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{query}" if query else "")


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    url = os.environ.get("FATURAMENTO_DATABASE_URL")
    if url:
        return url
    # Not under pytest's tmp_path: its 0700 parents keep out the unprivileged
    # user pgserver runs the server as when the tests run as root.
    pgroot = Path(tempfile.mkdtemp(prefix="fb-pg-"))
    pgroot.chmod(0o755)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return embedded_url(pgroot / "pgdata")


def _fresh_template(pg_admin_url: str, name: str, prepare=None) -> str:
    """Database `name` created anew, `prepare(url)` run on it (when given), then `init-db`."""
    with adbc_connect(pg_admin_url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
    create_database(pg_admin_url, name)
    url = _with_database(pg_admin_url, name)
    if prepare is not None:
        prepare(url)
    init_db(url)
    return url


@pytest.fixture(scope="session")
def template_url(pg_admin_url) -> str:
    return _fresh_template(pg_admin_url, TEMPLATE_DB)


@pytest.fixture(scope="session")
def prod_template_url(pg_admin_url) -> str:
    """Production's logistics schema as legacy-rules.md §9 describes it, then `init-db` on it."""
    from .prod_schema import create_prod_schema

    return _fresh_template(pg_admin_url, PROD_TEMPLATE_DB, create_prod_schema)


def clone_template(pg_admin_url: str, template: str = TEMPLATE_DB) -> str:
    """CREATE a new database from a schema template; returns its URL."""
    name = f"fb_test_{os.getpid()}_{next(_counter)}"
    with adbc_connect(pg_admin_url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cur.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return _with_database(pg_admin_url, name)


def drop_database(pg_admin_url: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    with adbc_connect(pg_admin_url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db_url(pg_admin_url, template_url) -> str:
    """A fresh database with the schema and no rows, for this test only."""
    url = clone_template(pg_admin_url)
    yield url
    drop_database(pg_admin_url, url)


@pytest.fixture
def prod_db_url(pg_admin_url, prod_template_url) -> str:
    """A fresh database shaped like production today (no inconsistencia_faturamento, …) with the
    job's own tables `init-db` added, and no rows, for this test only."""
    url = clone_template(pg_admin_url, PROD_TEMPLATE_DB)
    yield url
    drop_database(pg_admin_url, url)


@pytest.fixture
def second_db(pg_admin_url, template_url) -> str:
    """Another fresh database, for side-by-side comparisons."""
    url = clone_template(pg_admin_url)
    yield url
    drop_database(pg_admin_url, url)


@pytest.fixture
def empty_db_url(pg_admin_url) -> str:
    """A fresh database without the schema (for init-db tests)."""
    name = f"fb_empty_{os.getpid()}_{next(_counter)}"
    create_database(pg_admin_url, name)
    yield _with_database(pg_admin_url, name)
    with adbc_connect(pg_admin_url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def tls_server():
    """Debian's PostgreSQL with ssl=on, a test CA and scram password auth on 127.0.0.1 (TLS only).

    Started once per session; skipped, with the reason, where no server binary is installed.
    """
    from .tls_server import start_tls_server, why_unavailable

    reason = why_unavailable()
    if reason:
        pytest.skip(reason)
    server = start_tls_server()
    yield server
    server.stop()
