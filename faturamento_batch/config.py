"""Business rules (DESIGN §10): a TOML file, the environment and flags, defaults = production's.

Precedence, lowest first: the defaults below < the file (`--config PATH` or
`FATURAMENTO_CONFIG`) < the environment (`FATURAMENTO_<KEY>`) < flags. An unknown
key or a value of the wrong type is a `ConfigError` (exit 2) naming the key and
where it came from. The effective rules go into every run's manifest
(`Rules.as_dict()` under `manifest["rules"]`).

Keys (flat, top level of the file):
- ``invoice_types``        list of text: `l10n_br_tipo_pedido` values imported
- ``excluded_companies``   list of integers: `account.move.company_id` ids never imported
- ``pallet_codes``         list of text: product codes that get no FATURAMENTO movement
- ``time_zone``            text: the session time zone of every connection (audit columns)
- ``stock_catch_up_days``  integer ≥ 0: the stock catch-up looks this many days back
- ``stock_since``          date: the catch-up never looks before it (default: the day of
                           the first run on the database, recorded in `sync_state`)
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from datetime import date
from pathlib import Path
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError

CONFIG_ENV = "FATURAMENTO_CONFIG"
ENV_PREFIX = "FATURAMENTO_"

# A zone name goes into the libpq `options` (`-c TimeZone=…`): only the characters IANA
# names use, so it can never carry a second option or break the quoting.
_ZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$")


@dataclass(frozen=True)
class Rules:
    """The business rules of a run (DESIGN §10). Defaults are production's."""

    invoice_types: tuple[str, ...] = ("venda", "bonificacao", "industrializacao", "exportacao", "venda-industrializacao")
    excluded_companies: tuple[int, ...] = (5,)  # inter-company NFs of company 5 are not sales
    pallet_codes: tuple[str, ...] = ("208000012",)  # the pallet module writes their movement itself
    time_zone: str = "America/Sao_Paulo"  # the application's wall clock
    stock_catch_up_days: int = 7
    stock_since: date | None = None  # None: the recorded day of the first run on the database

    def as_dict(self) -> dict[str, Any]:
        """The rules as JSON-ready values (lists, ISO date), for the manifest."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        out["stock_since"] = self.stock_since.isoformat() if self.stock_since else None
        return out


# key -> (kind, how an environment value is read)
_KINDS: dict[str, str] = {
    "invoice_types": "text_list",
    "excluded_companies": "int_list",
    "pallet_codes": "text_list",
    "time_zone": "zone",
    "stock_catch_up_days": "days",
    "stock_since": "date",
}
assert set(_KINDS) == {f.name for f in fields(Rules)}


def _known_zone(name: str) -> bool:
    """A zone the IANA database knows (PostgreSQL's names are the same): a typo is exit 2
    here, not a refused connection at the run's start."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def env_name(key: str) -> str:
    return ENV_PREFIX + key.upper()


def _check(key: str, value: Any, origin: str) -> Any:
    """`value` as the rule's type, or `ConfigError` naming `key` and `origin`."""
    kind = _KINDS.get(key)
    where = f"`{key}` ({origin})"
    if kind is None:
        known = ", ".join(_KINDS)
        raise ConfigError(f"unknown rule `{key}` ({origin}); the rules are: {known}")
    if kind in ("text_list", "int_list"):
        item_type = str if kind == "text_list" else int
        if not isinstance(value, (list, tuple)) or any(
            type(v) is not item_type or (item_type is str and not v.strip()) for v in value
        ):
            what = "non-empty texts" if item_type is str else "whole numbers"
            raise ConfigError(f"{where} must be a list of {what}, got {value!r:.200}")
        values = tuple(dict.fromkeys(v.strip() if item_type is str else v for v in value))
        if key == "invoice_types" and not values:
            raise ConfigError(f"{where} lists no invoice type: nothing would ever be imported")
        return values
    if kind == "zone":
        if not isinstance(value, str) or not _ZONE.match(value) or not _known_zone(value):
            raise ConfigError(f"{where} must be an IANA time zone name such as `America/Sao_Paulo` or `UTC`, got {value!r:.200}")
        return value
    if kind == "days":
        if type(value) is not int or value < 0:
            raise ConfigError(f"{where} must be a whole number of days, 0 or more, got {value!r:.200}")
        return value
    # date: TOML gives a date for `2026-08-01`; a datetime or text is refused.
    if value is None or (type(value) is date):
        return value
    raise ConfigError(f"{where} must be a date (YYYY-MM-DD, unquoted in TOML), got {value!r:.200}")


def _from_env_text(key: str, text: str) -> Any:
    """An environment variable's text as the value the file would hold."""
    kind = _KINDS[key]
    name = env_name(key)
    if kind in ("text_list", "int_list"):
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if kind == "text_list":
            return parts
        try:
            return [int(p) for p in parts]
        except ValueError:
            raise ConfigError(f"`{key}` (`{name}`) must be whole numbers separated by commas, got `{text}`") from None
    if kind == "days":
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"`{key}` (`{name}`) must be a whole number of days, got `{text}`") from None
    if kind == "date":
        return parse_date(text, f"`{key}` (`{name}`)")
    return text.strip()


def parse_date(text: str, where: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"{where} must be a date (YYYY-MM-DD), got `{text}`") from None


def read_file(path: Path) -> dict[str, Any]:
    """The rules a TOML file sets (checked), or `ConfigError` naming the file and the key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file `{path}` does not exist (`--config` / `{CONFIG_ENV}`)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file `{path}` cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file `{path}` is not valid TOML: {exc}") from None
    return {key: _check(key, value, f"in `{path}`") for key, value in data.items()}


def load_rules(path: Path | None = None, env: Mapping[str, str] | None = None, flags: Mapping[str, Any] | None = None) -> Rules:
    """The effective rules: defaults < the file (`path`, else `FATURAMENTO_CONFIG`) < the
    environment (`FATURAMENTO_<KEY>`) < `flags` (values already typed; None = not given)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    path = path or (Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else None)
    if path is not None:
        values.update(read_file(path))
    for key in _KINDS:
        text = env.get(env_name(key))
        if text:
            values[key] = _check(key, _from_env_text(key, text), f"`{env_name(key)}`")
    for key, value in (flags or {}).items():
        if value is not None:
            values[key] = _check(key, value, f"`--{key.replace('_', '-')}`")
    return replace(Rules(), **values)


def example_toml(rules: Rules = Rules()) -> str:
    """A TOML file setting every key to `rules`' value (the shipped example is this, with comments)."""
    lines = []
    for key, value in rules.as_dict().items():
        if value is None:
            lines.append(f"# {key} = 2026-08-01")
        elif isinstance(value, list):
            lines.append(f"{key} = [" + ", ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in value) + "]")
        elif isinstance(value, str):
            lines.append(f'{key} = "{value}"')
        else:
            lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"
