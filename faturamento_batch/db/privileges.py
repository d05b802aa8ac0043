"""What `sync` needs from its database role, as data, and one statement that checks it.

`sync` runs under a role with only SELECT/INSERT/UPDATE on the tables it writes,
USAGE on their id sequences, and TEMP on the database (its staged temporary
tables); no CREATE on the schema. Checking it up front turns a missing grant into
a message naming the table and the privilege before anything is read or
written; `permission_message` turns PostgreSQL's own 42501 into the same message
should something slip past it. The README's GRANT statements are this map.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ..errors import PermissionDenied
from .features import Features

# table → privileges the import (DESIGN §5) needs on it.
IMPORT_GRANTS: dict[str, tuple[str, ...]] = {
    "faturamento_produto": ("SELECT", "INSERT", "UPDATE"),
    "relatorio_faturamento_importado": ("SELECT", "INSERT", "UPDATE"),
    "cadastro_palletizacao": ("SELECT", "INSERT"),
    "movimentacao_estoque": ("SELECT", "UPDATE"),  # the cancellation cascade
    "embarque_itens": ("SELECT", "UPDATE"),
    "separacao": ("SELECT", "UPDATE"),
    "sync_state": ("SELECT", "INSERT", "UPDATE"),
    "sync_runs": ("SELECT", "INSERT"),
    "sync_quarantine": ("SELECT", "INSERT", "UPDATE"),  # DESIGN §12
    # Downstream events (DESIGN §11): written, fanned out to the consumers, and retained.
    "sync_events": ("SELECT", "INSERT", "DELETE"),
    "sync_event_deliveries": ("SELECT", "INSERT", "DELETE"),
    "sync_event_consumers": ("SELECT",),
}
# The stock stage (DESIGN §9), added on top unless it is left out (`--no-stock`). Its tables
# may not exist yet in a database without the stock module: those are skipped, not refused.
STOCK_GRANTS: dict[str, tuple[str, ...]] = {
    "inconsistencia_faturamento": ("SELECT", "INSERT", "UPDATE"),
    "faturamento_parcial_justificativa": ("SELECT", "INSERT"),
    "movimentacao_estoque": ("SELECT", "INSERT", "UPDATE"),
    "embarque_itens": ("SELECT", "UPDATE"),
    "separacao": ("SELECT", "UPDATE"),
    "embarques": ("SELECT",),
}
DATABASE_GRANTS = ("TEMP",)  # staged temporary tables


# Optional tables (DESIGN §10) → the feature that says whether the database has them.
FEATURE_TABLES = {"inconsistencia_faturamento": "inconsistencia_faturamento"}


def grants(include_stock: bool = True, dry_run: bool = False, features: Features | None = None) -> dict[str, tuple[str, ...]]:
    """table → privileges a run needs (a dry run only reads: SELECT). With `features`, a table
    the database does not have (production dropped `inconsistencia_faturamento`) is not listed."""
    out = {t: list(p) for t, p in IMPORT_GRANTS.items()}
    if include_stock:
        for table, privileges in STOCK_GRANTS.items():
            if features is not None and table in FEATURE_TABLES and not getattr(features, FEATURE_TABLES[table]):
                continue
            out.setdefault(table, [])
            out[table] += [p for p in privileges if p not in out[table]]
    if dry_run:
        out = {t: [p for p in ps if p == "SELECT"] for t, ps in out.items()}
    return {t: tuple(ps) for t, ps in out.items() if ps}


@dataclass(frozen=True)
class GrantCheck:
    """The map as the bound parameters of `CHECK_SQL` ($3…$6 after the lock statement's own two)."""

    objects: list[str]
    privileges: list[str]
    kinds: list[str]  # table · sequence (the table's serial sequences) · database
    optional: list[bool]  # skipped when the table does not exist

    @classmethod
    def build(cls, include_stock: bool = True, dry_run: bool = False) -> "GrantCheck":
        rows: list[tuple[str, str, str, bool]] = []
        for table, privileges in grants(include_stock, dry_run).items():
            optional = table not in IMPORT_GRANTS
            rows += [(table, p, "table", optional) for p in privileges]
            if "INSERT" in privileges:
                rows.append((table, "USAGE", "sequence", optional))
        if not dry_run:
            rows += [("", p, "database", False) for p in DATABASE_GRANTS]
        return cls(*(list(col) for col in zip(*rows)))  # type: ignore[arg-type]

    def params(self) -> tuple:
        return (self.objects, self.privileges, self.kinds, self.optional)


# A JSON array of what is missing: [{"objeto", "privilegio"}]. Names travel as parameters,
# never pasted into SQL. A table that does not exist is not a grant to ask for: an import
# table then fails its own statement with "relation does not exist" (run `init-db`), a
# stock-stage one means a database without the stock module.
CHECK_SQL = """
(SELECT coalesce(json_agg(json_build_object('objeto', g.objeto, 'privilegio', g.privilegio) ORDER BY g.n), '[]')::text
 FROM unnest($3::text[], $4::text[], $5::text[], $6::bool[]) WITH ORDINALITY AS g(objeto, privilegio, kind, optional, n)
 WHERE CASE
   WHEN g.kind = 'database' THEN NOT has_database_privilege(current_database(), g.privilegio)
   WHEN to_regclass(g.objeto) IS NULL THEN false  -- a missing table fails its own statement, clearly
   WHEN g.kind = 'table' THEN NOT has_table_privilege(to_regclass(g.objeto), g.privilegio)
   -- the table's serial sequences (deptype 'a'; identity columns need no grant)
   -- (CASE, so the planner cannot call has_sequence_privilege on a non-sequence first)
   ELSE EXISTS (SELECT 1 FROM pg_depend d JOIN pg_class s ON s.oid = d.objid
                WHERE d.classid = 'pg_class'::regclass AND d.refobjid = to_regclass(g.objeto) AND d.deptype = 'a'
                  AND CASE WHEN s.relkind = 'S' THEN NOT has_sequence_privilege(s.oid, g.privilegio) ELSE false END)
 END)
"""


def missing_grants_error(missing_json: str, role: str) -> PermissionDenied | None:
    """The error for `CHECK_SQL`'s result, or None when nothing is missing."""
    missing = json.loads(missing_json or "[]")
    if not missing:
        return None
    parts, statements = [], []
    for m in missing:
        obj, priv = m["objeto"], m["privilegio"]
        if priv == "TEMP":
            parts.append("TEMP on the database")
            statements.append(f"GRANT TEMP ON DATABASE <database> TO {role};")
        elif priv == "USAGE":
            parts.append(f"USAGE on the serial sequence of `{obj}`")
            statements.append(f"GRANT USAGE ON SEQUENCE {obj}_id_seq TO {role};")
        else:
            parts.append(f"{priv} on table `{obj}`")
            statements.append(f"GRANT {priv} ON {obj} TO {role};")
    return PermissionDenied(
        f"the database role `{role}` lacks {', '.join(parts)}; nothing was read or written. "
        f"Grant it ({' '.join(statements)}) — the README's \"Privileges\" section lists every grant `sync` needs."
    )


_DENIED = re.compile(r"permission denied for (table|relation|sequence|schema|database) \"?([\w$]+(?:\.[\w$]+)*)\"?")


def permission_message(text: str, role: str) -> str | None:
    """PostgreSQL's 42501 "permission denied for table X" as our message, or None for other errors."""
    m = _DENIED.search(text)
    if not m:
        return None
    kind, name = m.group(1), m.group(2)
    needed = grants().get(name)
    what = f"{', '.join(needed)} on table `{name}`" if needed and kind in ("table", "relation") else f"a privilege on {kind} `{name}`"
    return (
        f"PostgreSQL refused the role `{role}`: permission denied for {kind} `{name}` (`sync` needs {what}); "
        "nothing was written. See the README's \"Privileges\" section for the GRANT statements."
    )
