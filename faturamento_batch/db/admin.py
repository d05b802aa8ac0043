"""Create the schema (`init-db`): every missing table and index, nothing else touched."""

from __future__ import annotations

from ..errors import database_error
from ..settings import redact
from .connection import adbc_connect
from .schema import ddl_statements


def init_db(url: str) -> int:
    """Run the guarded DDL in one transaction; returns the number of statements sent."""
    statements = ddl_statements()
    conn = adbc_connect(url)
    try:
        with conn.cursor() as cur:
            for ddl in statements:
                cur.execute(ddl)
        conn.commit()
    except Exception as exc:
        raise database_error(f"creating the schema at `{redact(url)}` failed: {redact(str(exc))[:800]}", exc) from exc
    finally:
        conn.close()
    return len(statements)
