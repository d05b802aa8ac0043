"""The database as `init-db` and `check` find it (DESIGN §10): which of our tables exist, which
of the indexes the job needs are already there under any name, and the duplicate keys that
would break a unique index.

Production's logistics database was not created by us: `inconsistencia_faturamento` was
dropped on purpose, its (numero_nf, cod_produto) index is not unique and may cover duplicate
rows (the old job never merged them), and its indexes have the application's names. So on
a database that already holds the logistics tables, `init-db` creates only the job's own
tables (`schema.JOB_TABLES`) and the indexes the job needs that no existing index already
is (same columns in the same order, same uniqueness, same predicate — read from
`pg_index`); on an empty database it creates the full schema. Every name in the SQL here
comes from `schema.metadata`, never from input.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from sqlalchemy import Index, Table

from .schema import JOB_TABLES, create_index_sql, create_table_sql, metadata

# One statement: per table of ours (search_path applies, as for every statement of the job),
# whether it exists and its valid plain-column indexes.
CATALOG_SQL = """
SELECT t.name::text, to_regclass(t.name) IS NOT NULL,
  (SELECT coalesce(json_agg(json_build_object(
      'name', ic.relname::text,
      'unique', i.indisunique,
      'columns', (SELECT array_agg(a.attname::text ORDER BY k.ord)
                  FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                  WHERE k.ord <= i.indnkeyatts),
      'predicate', pg_get_expr(i.indpred, i.indrelid))), '[]')::text
   FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
   WHERE i.indrelid = to_regclass(t.name) AND i.indisvalid AND i.indexprs IS NULL)
FROM unnest($1::text[]) AS t(name)
"""

DUPLICATES_SHOWN = 10  # colliding keys named in the message; the printed SQL finds them all


def _normalized(predicate: str | None) -> str | None:
    """A predicate as comparable text: PostgreSQL prints `((status_nf)::text = 'SEM_LOTE'::text)`
    for our `status_nf = 'SEM_LOTE'`. A difference left over means "not the same index", and
    ours is created: the safe side."""
    if not predicate:
        return None
    text = re.sub(r"::(character varying|[a-z_]+)(\[\])?", "", predicate.lower())
    return re.sub(r"[\s()]", "", text)


@dataclass(frozen=True)
class IndexNeed:
    """One index of ours on one table."""

    index: Index

    @property
    def table(self) -> str:
        return self.index.table.name  # type: ignore[union-attr]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.index.columns)

    @property
    def predicate(self) -> str | None:
        where = self.index.dialect_options["postgresql"].get("where")
        return None if where is None else str(where)

    def matches(self, found: dict) -> bool:
        return (
            tuple(found.get("columns") or ()) == self.columns
            and bool(found.get("unique")) == bool(self.index.unique)
            and _normalized(found.get("predicate")) == _normalized(self.predicate)
        )

    def describe(self) -> str:
        kind = "unique " if self.index.unique else ""
        where = f" WHERE {self.predicate}" if self.predicate else ""
        return f"{kind}{self.table} ({', '.join(self.columns)}){where}"

    def duplicates_sql(self, limit: bool = True) -> str:
        """The keys more than one row holds (what a unique index over them would refuse)."""
        cols = ", ".join(self.columns)
        where = " AND ".join([f"{c} IS NOT NULL" for c in self.columns] + ([self.predicate] if self.predicate else []))
        head = f"SELECT {cols}, count(*) AS linhas" + (", count(*) OVER () AS chaves" if limit else "")
        tail = f" ORDER BY {cols} LIMIT {DUPLICATES_SHOWN}" if limit else f" ORDER BY {cols};"
        return f"{head} FROM {self.table} WHERE {where} GROUP BY {cols} HAVING count(*) > 1{tail}"


@dataclass
class FoundSchema:
    """What `CATALOG_SQL` found: table → its indexes (absent tables are not keys)."""

    indexes: dict[str, list[dict]]

    @property
    def tables(self) -> set[str]:
        return set(self.indexes)

    @property
    def holds_logistics_tables(self) -> bool:
        own = {t.name for t in JOB_TABLES}
        return any(name not in own for name in self.tables)

    def covering(self, need: IndexNeed) -> str | None:
        """The name of an existing index that is `need` (ours under our name counts), or None."""
        for found in self.indexes.get(need.table, []):
            if need.matches(found):
                return found["name"]
        return None


def read_found_schema(cur) -> FoundSchema:
    """Our tables as the database at `cur` (DB-API cursor) holds them: one statement."""
    cur.execute(CATALOG_SQL, ([t.name for t in metadata.sorted_tables],))
    return FoundSchema({name: json.loads(ix) for name, exists, ix in cur.fetchall() if exists})


@dataclass
class InitPlan:
    """What `init-db` does on the database it found."""

    existing: bool  # the database already held logistics tables
    tables: list[Table] = field(default_factory=list)  # to create
    not_created: list[str] = field(default_factory=list)  # logistics tables absent, left absent
    indexes: list[IndexNeed] = field(default_factory=list)  # to create
    covered: dict[str, str] = field(default_factory=dict)  # our index → the existing one that is it

    def statements(self) -> list[str]:
        return [create_table_sql(t) for t in self.tables] + [create_index_sql(n.index) for n in self.indexes]

    def checked_for_duplicates(self, found: FoundSchema) -> list[IndexNeed]:
        """The unique indexes to create on tables that already exist (and may hold rows)."""
        return [n for n in self.indexes if n.index.unique and n.table in found.tables]


def plan_init(found: FoundSchema) -> InitPlan:
    """The tables and indexes `init-db` creates on the database `found` describes."""
    own = {t.name for t in JOB_TABLES}
    plan = InitPlan(existing=found.holds_logistics_tables)
    for table in metadata.sorted_tables:
        if table.name in found.tables:
            pass
        elif plan.existing and table.name not in own:
            plan.not_created.append(table.name)  # the application does not have it (it may have dropped it)
            continue
        else:
            plan.tables.append(table)
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            need = IndexNeed(index)
            name = found.covering(need)
            if name is not None and name != index.name:
                plan.covered[index.name or ""] = name
            elif name is None:
                plan.indexes.append(need)
    return plan


def missing_indexes(found: FoundSchema) -> list[IndexNeed]:
    """The indexes the job needs on the tables that exist and no existing index is (for `check`)."""
    return [n for n in plan_init(found).indexes if n.table in found.tables]
