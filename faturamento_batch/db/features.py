"""The optional parts of the logistics schema, learned in one read at the start of a run (DESIGN §10).

Production's schema moved after the design was written: `inconsistencia_faturamento`
was dropped, columns were added (`faturamento_produto.revertida`, the pallet and
CarVia columns of `embarque_itens`), and tables the job now writes may or may not
exist (`carteira_principal`, `entregas_monitoradas`). The job adapts to what it
finds instead of failing or recreating what the application dropped: each feature
switches the matching behaviour on or off, and the manifest, `runs show` and
`check` list them.

`FEATURES_SQL` is one scalar sub-select (a JSON object of feature → bool) so it can
ride on the run's first statement like the grant check; `read_features` sends it
alone. Names are constants of this module, never input.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

# feature → (table, column or None for "the table exists"). Order = report order.
_PROBES: dict[str, tuple[str, str | None]] = {
    "inconsistencia_faturamento": ("inconsistencia_faturamento", None),
    "revertida": ("faturamento_produto", "revertida"),
    "nf_pallet": ("embarque_itens", "nf_pallet_referencia"),
    "carvia": ("embarque_itens", "carvia_cotacao_id"),
    "carteira_principal": ("carteira_principal", None),
    "entregas_monitoradas": ("entregas_monitoradas", None),
    "entregas_origem": ("entregas_monitoradas", "origem"),
}
# Columns a feature needs besides its probe: all must exist for it to be on.
_ALSO: dict[str, tuple[tuple[str, str], ...]] = {
    "nf_pallet": (
        ("embarque_itens", "nf_pallet_cliente"),
        ("embarque_itens", "nf_pallet_origem"),
        ("embarques", "nf_pallet_transportadora"),
    ),
}


def _exists(table: str, column: str | None) -> str:
    # to_regclass follows the session's search_path, as every statement of the job does.
    if column is None:
        return f"to_regclass('{table}') IS NOT NULL"
    return (
        f"EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('{table}') "
        f"AND attname = '{column}' AND attnum > 0 AND NOT attisdropped)"
    )


def _probe(name: str) -> str:
    table, column = _PROBES[name]
    parts = [_exists(table, column)] + [_exists(t, c) for t, c in _ALSO.get(name, ())]
    return " AND ".join(parts)


FEATURES_SQL = "(SELECT json_build_object(" + ", ".join(f"'{n}', {_probe(n)}" for n in _PROBES) + ")::text)"


@dataclass(frozen=True)
class Features:
    """Which optional tables and columns the database has. Default: everything on (the schema
    `init-db` creates on an empty database)."""

    inconsistencia_faturamento: bool = True
    revertida: bool = True
    nf_pallet: bool = True
    carvia: bool = True
    carteira_principal: bool = True
    entregas_monitoradas: bool = True
    entregas_origem: bool = True

    @classmethod
    def from_json(cls, text: str | None) -> "Features":
        found = json.loads(text or "{}")
        return cls(**{f.name: bool(found.get(f.name, False)) for f in fields(cls)})

    def as_dict(self) -> dict[str, bool]:
        return asdict(self)

    def describe(self) -> str:
        """One line for logs and `runs show`: `on: a, b · off: c`."""
        on = [k for k, v in self.as_dict().items() if v]
        off = [k for k, v in self.as_dict().items() if not v]
        return f"on: {', '.join(on) or '-'} · off: {', '.join(off) or '-'}"


def read_features(cur) -> Features:
    """The features of the database `cur` (a DB-API cursor) is connected to: one statement."""
    cur.execute("SELECT " + FEATURES_SQL)
    (text,) = cur.fetchone()
    return Features.from_json(text)
