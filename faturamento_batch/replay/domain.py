"""Odoo domains evaluated over plain record dicts, as the replay server needs them.

In:  a domain as Odoo receives it over the wire (a list of ``'&'``, ``'|'``,
     ``'!'`` and ``(field, operator, value)`` leaves, in Polish notation, with
     an implicit AND at the top level), the model it applies to, and a
     `Schema` (field types per model, many2one targets, records by id).
Out: `compile_domain` → a predicate ``record -> bool``; `id_window` → the slice
     of an id-sorted table that can hold matches (the fast path of key paging).

Odoo's semantics, which are not Python's:
- ``('f', '=', False)`` is "f is null"; ``('f', '!=', False)`` is "f is set";
- negative operators with a real value (``!=``, ``not in``, ``not like``,
  ``not ilike``) also match null — Odoo adds ``OR f IS NULL``;
- ``like``/``ilike`` wrap the value in ``%…%`` (``%`` and ``_`` stay
  wildcards); ``=like``/``=ilike`` do not; an empty ``ilike`` matches all;
- a many2one compares by id (``[id, name]`` values count as the id); a string
  compared to a many2one compares against its display name;
- a dotted path (``move_id.state``) goes through the many2one to the related
  record; a missing related record gives null (the LEFT JOIN Odoo does for
  ``auto_join`` fields such as ``account.move.line.move_id``).

Dates and datetimes are ISO strings, so they compare as strings; a date-only
value against a datetime field is widened the way Odoo does it.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Any, Callable

from ..odoo.fields import MODELS, RELATED_IDS_FROM

Predicate = Callable[[dict], bool]

# The many2one fields whose target model the dataset holds: (model, field) -> comodel.
COMODELS: dict[tuple[str, str], str] = {
    (src, fname): target for target, sources in RELATED_IDS_FROM.items() for src, fname in sources
}

NEGATIVE = frozenset({"!=", "not in", "not like", "not ilike"})
LIKE = {  # operator -> (wrap in %...%, case-insensitive, negated)
    "like": (True, False, False),
    "ilike": (True, True, False),
    "not like": (True, False, True),
    "not ilike": (True, True, True),
    "=like": (False, False, False),
    "=ilike": (False, True, False),
}
ORDERING = {"<", "<=", ">", ">="}
OPERATORS = frozenset({"=", "!=", "in", "not in", "=?", "any", "not any"} | ORDERING | set(LIKE))
_NUMERIC = {"integer", "float"}
_TRUE_LEAF, _FALSE_LEAF = (1, "=", 1), (0, "=", 1)


class DomainError(ValueError):
    """A malformed domain or an unknown field; the message is Odoo's."""


@dataclass
class Schema:
    """What a domain needs to know about the data it runs on.

    `fields`: model -> {field: kind} (kinds of `fields.MODELS`);
    `index`: model -> {id: record}, to follow dotted paths;
    `comodels`: (model, many2one field) -> target model.
    """

    fields: dict[str, dict[str, str]] = field(default_factory=lambda: {m: dict(f) for m, f in MODELS.items()})
    index: dict[str, dict[int, dict]] = field(default_factory=dict)
    comodels: dict[tuple[str, str], str] = field(default_factory=lambda: dict(COMODELS))


# --------------------------------------------------------------------- parsing


def parse(domain: Any) -> tuple:
    """A domain → a tree of ``('&', [nodes])``, ``('|', [nodes])``, ``('!', node)``,
    ``('leaf', field, operator, value)``, ``('true',)`` or ``('false',)``."""
    if not isinstance(domain, (list, tuple)):
        raise DomainError(f"Invalid domain {domain!r}: a domain is a list of terms")
    terms = list(domain)
    nodes = []
    pos = 0
    while pos < len(terms):
        node, pos = _parse_term(terms, pos, domain)
        nodes.append(node)
    if not nodes:
        return ("true",)
    return nodes[0] if len(nodes) == 1 else ("&", nodes)


def _parse_term(terms: list, pos: int, domain: Any) -> tuple[tuple, int]:
    term = terms[pos]
    if isinstance(term, str):
        if term not in ("&", "|", "!"):
            raise DomainError(f"Invalid domain term {term!r} in domain {domain!r}")
        if term == "!":
            if pos + 1 >= len(terms):
                raise DomainError(f"Invalid domain {domain!r}: '!' without an operand")
            child, pos = _parse_term(terms, pos + 1, domain)
            return ("!", child), pos
        children = []
        pos += 1
        for _ in range(2):
            if pos >= len(terms):
                raise DomainError(f"Invalid domain {domain!r}: {term!r} needs two operands")
            child, pos = _parse_term(terms, pos, domain)
            children.append(child)
        return (term, children), pos
    if isinstance(term, (list, tuple)) and len(term) == 3:
        leaf = tuple(term)
        if leaf == _TRUE_LEAF:
            return ("true",), pos + 1
        if leaf == _FALSE_LEAF:
            return ("false",), pos + 1
        fname, op, value = leaf
        if not isinstance(fname, str) or not fname:
            raise DomainError(f"Invalid domain term {term!r}: the field must be a name")
        if not isinstance(op, str) or op.lower() not in OPERATORS:
            raise DomainError(f"Invalid operator {op!r} in domain term {term!r}")
        return ("leaf", fname, op.lower(), value), pos + 1
    raise DomainError(f"Invalid domain term {term!r} in domain {domain!r}")


# ------------------------------------------------------------------- compiling


def compile_domain(domain: Any, model: str, schema: Schema) -> Predicate | None:
    """A predicate for `domain` on `model`'s records; None when it matches everything.

    Raises DomainError for a malformed domain, an unknown field or a value of
    the wrong type for its field.
    """
    return compile_tree(parse(domain), model, schema)


def compile_tree(tree: tuple, model: str, schema: Schema) -> Predicate | None:
    """`compile_domain` for a domain already `parse`d (parse once, compile and window it)."""
    if tree == ("true",):
        return None
    return _compile(tree, model, schema)


def _compile(node: tuple, model: str, schema: Schema) -> Predicate:
    kind = node[0]
    if kind == "true":
        return lambda r: True
    if kind == "false":
        return lambda r: False
    if kind == "!":
        inner = _compile(node[1], model, schema)
        return lambda r: not inner(r)
    if kind in ("&", "|"):
        preds = [_compile(child, model, schema) for child in _flatten(node)]
        if len(preds) == 2:  # the common case, without the generator's cost per row
            a, b = preds
            return (lambda r: a(r) and b(r)) if kind == "&" else (lambda r: a(r) or b(r))
        if kind == "&":

            def conjunction(r: dict) -> bool:
                for p in preds:  # a plain loop: cheaper per row than all(<generator>)
                    if not p(r):
                        return False
                return True

            return conjunction

        def disjunction(r: dict) -> bool:
            for p in preds:
                if p(r):
                    return True
            return False

        return disjunction
    _, fname, op, value = node
    return _compile_leaf(model, fname, op, value, schema)


def _flatten(node: tuple) -> list[tuple]:
    """Children of nested nodes of the same kind, so ``& & a b c`` runs as one AND of three."""
    out = []
    for child in node[1]:
        out.extend(_flatten(child) if child[0] == node[0] else [child])
    return out


def _compile_leaf(model: str, path: str, op: str, value: Any, schema: Schema) -> Predicate:
    leaf = (path, op, value)
    get, kind = _resolve(model, path, schema)
    if op == "=?":  # Odoo: "= value, unless the value is unset, then always true"
        if _is_null(value):
            return lambda r: True
        op = "="
    if op in ("any", "not any"):
        return _compile_any(model, path, op, value, schema, get, kind)
    if kind == "many2one":
        get, kind, value = _many2one_operand(get, op, value)
    elif kind == "datetime" and isinstance(value, str):
        value = _widen_datetime(op, value)
    _check_value(kind, op, value, leaf)
    test = _test(op, value)
    return lambda r: test(get(r))


def _resolve(model: str, path: str, schema: Schema) -> tuple[Callable[[dict], Any], str]:
    """A getter for `path` on `model`'s records (following many2one) and the field's kind."""
    fields = schema.fields.get(model)
    if fields is None:
        raise DomainError(f"Unknown model {model!r}")
    head, _, rest = path.partition(".")
    if head not in fields:
        raise DomainError(f"Invalid field {path!r} on model {model!r}")
    if not rest:
        return (lambda r: r.get(head)), fields[head]
    comodel = schema.comodels.get((model, head))
    if fields[head] != "many2one" or comodel is None or comodel not in schema.fields:
        raise DomainError(
            f"Invalid field {path!r} on model {model!r}: "
            f"{head!r} is not a many2one to a model the replay dataset holds"
        )
    sub_get, kind = _resolve(comodel, rest, schema)
    index = schema.index.get(comodel, {})
    leaf_field = None if "." in rest else rest

    def get(r: dict) -> Any:
        # per row on every page of lines: the common [id, name] case inlined
        v = r.get(head)
        related = (index.get(v[0]) if v else None) if v.__class__ is list else index.get(many2one_id(v))
        if related is None:
            return None
        return related.get(leaf_field) if leaf_field is not None else sub_get(related)

    return get, kind


def _compile_any(model, path, op, value, schema, get, kind) -> Predicate:
    """``(m2o, 'any', domain)``: the related record exists and matches the sub-domain."""
    comodel = schema.comodels.get((model, path))
    if kind != "many2one" or comodel is None or comodel not in schema.fields:
        raise DomainError(f"Invalid domain term {(path, op, value)!r}: 'any' needs a many2one of the dataset")
    sub = compile_domain(value, comodel, schema) or (lambda r: True)
    index = schema.index.get(comodel, {})
    if op == "any":
        return lambda r: (rel := index.get(many2one_id(get(r)))) is not None and sub(rel)
    return lambda r: (rel := index.get(many2one_id(get(r)))) is None or not sub(rel)


def many2one_id(value: Any) -> int | None:
    """The id of a many2one value (``[id, name]``, a bare id, or false/null → None)."""
    if value.__class__ is list or value.__class__ is tuple:
        return value[0] if value else None
    return value if value.__class__ is int else None


def _many2one_name(value: Any) -> str | None:
    if (value.__class__ is list or value.__class__ is tuple) and len(value) > 1:
        return value[1]
    return None


def _many2one_operand(get, op: str, value: Any):
    """Compare a many2one by id, or by display name when the value is text."""
    if isinstance(value, (list, tuple)) and len(value) == 2 and type(value[0]) is int and isinstance(value[1], str):
        if op in ("=", "!="):  # a many2one value [id, name] as the domain value: its id
            value = value[0]
    values = value if isinstance(value, (list, tuple)) else [value]
    by_name = op in LIKE or (values and all(isinstance(v, str) for v in values))
    if by_name:
        return (lambda r: _many2one_name(get(r))), "char", value
    return (lambda r: many2one_id(get(r))), "integer", value


def _widen_datetime(op: str, value: str) -> str:
    """A date-only value against a datetime field: the day's end for > and <=, its start otherwise."""
    if len(value) == 10:
        return value + (" 23:59:59" if op in (">", "<=") else " 00:00:00")
    if len(value) > 10 and value[10] == "T":
        return value[:10] + " " + value[11:19]
    return value


def _check_value(kind: str, op: str, value: Any, leaf: tuple) -> None:
    """Reject values Odoo (PostgreSQL) would refuse for the field, before scanning any row."""
    if op in ORDERING and not _is_null(value):
        ok = _is_number(value) if kind in _NUMERIC else isinstance(value, str)
        if not ok:
            raise DomainError(f"Invalid value {value!r} for a {kind} field in domain term {leaf!r}")
    if op in ("in", "not in"):
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if isinstance(item, (list, dict)):
                raise DomainError(f"Invalid value {item!r} in domain term {leaf!r}")


def _is_null(v: Any) -> bool:
    return v is None or v is False


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _test(op: str, value: Any) -> Callable[[Any], bool]:
    """The test of one leaf on a field value, with Odoo's NULL rules."""
    if op == "=":
        if _is_null(value):
            return _is_null
        return lambda v: v is not None and v is not False and v == value
    if op == "!=":
        if _is_null(value):
            return lambda v: v is not None and v is not False
        return lambda v: v is None or v is False or v != value
    if op in ("in", "not in"):
        items = value if isinstance(value, (list, tuple, set, frozenset)) else [value]
        null_in = any(_is_null(x) for x in items)
        # bools are left out of the set: in Python True == 1, in Odoo they never meet
        members = frozenset(x for x in items if not _is_null(x) and x is not True)
        if op == "in":
            return lambda v: null_in if (v is None or v is False) else v in members
        return lambda v: (not null_in) if (v is None or v is False) else v not in members
    if op in ORDERING:
        if _is_null(value):  # SQL "f < NULL" is never true
            return lambda v: False
        cmp = {"<": _lt, "<=": _le, ">": _gt, ">=": _ge}[op]
        return lambda v: v is not None and v is not False and cmp(v, value)
    wrap, icase, negated = LIKE[op]
    text = "" if _is_null(value) else str(value)
    if wrap and not text:  # Odoo: an empty ilike matches everything, its negation nothing
        return (lambda v: False) if negated else (lambda v: True)
    match = like_matcher(text, wrap, icase)
    if negated:
        return lambda v: v is None or v is False or not match(v if isinstance(v, str) else str(v))
    return lambda v: v is not None and v is not False and match(v if isinstance(v, str) else str(v))


def _lt(a, b):
    return a < b


def _le(a, b):
    return a <= b


def _gt(a, b):
    return a > b


def _ge(a, b):
    return a >= b


def like_matcher(pattern: str, wrap: bool, icase: bool) -> Callable[[str], bool]:
    """SQL LIKE as a regex: ``%`` any run, ``_`` one character, ``\\`` escapes."""
    if wrap:
        pattern = f"%{pattern}%"
    out = []
    chars = iter(pattern)
    for c in chars:
        if c == "\\":
            out.append(re.escape(next(chars, "\\")))
        elif c == "%":
            out.append(".*")
        elif c == "_":
            out.append(".")
        else:
            out.append(re.escape(c))
    regex = re.compile("".join(out), re.DOTALL | (re.IGNORECASE if icase else 0))
    return lambda s: regex.fullmatch(s) is not None


# ------------------------------------------------------------------ id window


def id_window(tree: tuple, ids: list[int]) -> tuple[int, int, frozenset | None]:
    """Where matches can be in a table sorted by id.

    In:  a `parse`d domain and the table's ids, sorted ascending.
    Out: ``(start, end, only)``: matches lie in ``ids[start:end]``, and when
    `only` is not None their ids are in it. Only ``id`` leaves that every match
    must satisfy (the top-level AND) narrow the window; the full predicate is
    still applied to each candidate, so this is a pure speed-up.
    """
    conjuncts = _flatten(tree) if tree[0] == "&" else [tree]
    start, end, only = 0, len(ids), None
    for node in conjuncts:
        if node[0] != "leaf" or node[1] != "id":
            continue
        _, _, op, value = node
        if op in ORDERING and _is_number(value):
            if op == ">":
                start = max(start, bisect_right(ids, value))
            elif op == ">=":
                start = max(start, bisect_left(ids, value))
            elif op == "<":
                end = min(end, bisect_left(ids, value))
            else:
                end = min(end, bisect_right(ids, value))
        elif op in ("=", "in"):
            items = value if isinstance(value, (list, tuple)) else [value]
            if not all(_is_number(x) or _is_null(x) for x in items):
                continue
            wanted = frozenset(x for x in items if _is_number(x))
            only = wanted if only is None else only & wanted
    return start, max(start, end), only
