"""Create the schema (`init-db`): every missing table and index, nothing else touched.

The tables go where the connection's `search_path` points (`options=-csearch_path=…`
or `PGOPTIONS`): no statement names a schema.
"""

from __future__ import annotations

from ..dsn import ConnInfo
from ..errors import ConfigError, database_error
from ..settings import redact
from .connection import adbc_connect, describe


def init_db(url: str | ConnInfo) -> int:
    """Run the guarded DDL in one transaction; returns the number of DDL statements sent."""
    from .schema import ddl_statements  # SQLAlchemy (~30 MB) only when DDL runs, never for a plain sync

    statements = ddl_statements()
    conn = adbc_connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_schema()::text, current_setting('search_path')")
            schema, search_path = cur.fetchone()
            if schema is None:
                raise ConfigError(
                    f"the search_path `{search_path}` names no schema that exists in the database: "
                    "create it first (`CREATE SCHEMA name`) or fix `options=-csearch_path=…`/`PGOPTIONS`"
                )
            for ddl in statements:
                cur.execute(ddl)
        conn.commit()
    except ConfigError:
        raise
    except Exception as exc:
        raise database_error(f"creating the schema at `{describe(url)}` failed: {redact(str(exc))[:800]}", exc) from exc
    finally:
        conn.close()
    return len(statements)
