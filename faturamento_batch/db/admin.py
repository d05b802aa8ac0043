"""Create the schema (`init-db`): what is missing and the job needs, nothing else touched.

The tables go where the connection's `search_path` points (`options=-csearch_path=…`
or `PGOPTIONS`): no statement names a schema. On an empty database: the full schema
(DESIGN appendix). On a database that already holds the logistics tables: the job's own
tables and the indexes it needs, never a table the application dropped, never a unique
index over duplicate rows, never a second copy of an index that exists under another
name (DESIGN §10, `db.existing`). One transaction: on any refusal nothing is created.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..dsn import ConnInfo
from ..errors import ConfigError, DataError, database_error
from ..settings import redact
from .connection import adbc_connect, describe
from .existing import DUPLICATES_SHOWN, IndexNeed, InitPlan, plan_init, read_found_schema


@dataclass
class InitResult:
    """What `init_db` did."""

    existing: bool  # the database already held the logistics tables
    statements: int = 0  # DDL statements sent
    tables: list[str] = field(default_factory=list)  # created
    indexes: list[str] = field(default_factory=list)  # created
    not_created: list[str] = field(default_factory=list)  # logistics tables absent and left absent
    covered: dict[str, str] = field(default_factory=dict)  # our index → the existing index that is it

    @classmethod
    def of(cls, plan: InitPlan) -> "InitResult":
        return cls(
            existing=plan.existing, statements=len(plan.statements()), tables=[t.name for t in plan.tables],
            indexes=[n.index.name or "" for n in plan.indexes], not_created=list(plan.not_created),
            covered=dict(plan.covered),
        )  # fmt: skip


def duplicates_error(need: IndexNeed, rows: list[tuple]) -> DataError:
    """The refusal to build `need` over duplicate keys: the first ones, and the SQL that lists all."""
    total = rows[0][-1]
    shown = "; ".join(
        "(" + ", ".join(f"{c} `{v}`" for c, v in zip(need.columns, r[: len(need.columns)])) + f") × {r[len(need.columns)]}"
        for r in rows
    )
    more = f" and {total - len(rows)} more" if total > len(rows) else ""
    return DataError(
        f"`init-db` did not create the {need.describe()} index `{need.index.name}`: {total} key(s) are held by "
        f"more than one row: {shown}{more}. Nothing was created. Merge or remove the duplicates first; "
        f"this query lists them all:\n  {need.duplicates_sql(limit=False)}"
    )


def init_db(url: str | ConnInfo) -> InitResult:
    """Create what is missing (see the module's docstring) in one transaction; raise `DataError`
    (exit 1) naming the colliding keys when a unique index would not hold, nothing created."""
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
            found = read_found_schema(cur)
            plan = plan_init(found)
            for need in plan.checked_for_duplicates(found):
                cur.execute(need.duplicates_sql())
                rows = cur.fetchall()
                if rows:
                    raise duplicates_error(need, rows[:DUPLICATES_SHOWN])
            for ddl in plan.statements():
                cur.execute(ddl)
        conn.commit()
    except (ConfigError, DataError):
        raise
    except Exception as exc:
        raise database_error(f"creating the schema at `{describe(url)}` failed: {redact(str(exc))[:800]}", exc) from exc
    finally:
        conn.close()
    return InitResult.of(plan)
