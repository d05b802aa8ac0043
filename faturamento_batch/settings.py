"""Run settings: one frozen dataclass built from flags and the environment.

Secrets (the database password, whatever form the setting or `PGPASSWORD`
spells it in, the Odoo password or API key) stay out of `repr` and are never
logged; `redact` masks a password spelled in a URL or a key/value string.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from .config import Rules, load_rules
from .dsn import password_of
from .errors import ConfigError

DEFAULT_JOB = "faturamento"
DEFAULT_STATE_DIR = ".faturamento"
# Lines per chunk of a full run (DESIGN §8): sets its peak memory; fits a 512 MB container.
DEFAULT_CHUNK_SIZE = 40_000


_URL_PASSWORD = re.compile(r"(\w+://[^:/@\s]*:)[^@\s]*@")
_KV_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")


def redact(text: str) -> str:
    """Mask every password spelled in `text`: a URL's (``postgresql://u:secret@h`` → ``u:***@h``)
    and a key/value string's (``password='a b'`` → ``password=***``)."""
    return _KV_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", text))


@dataclass(frozen=True)
class Settings:
    database_url: str | None = field(default=None, repr=False)  # None: the embedded server
    state_dir: Path = Path(DEFAULT_STATE_DIR)
    artifacts_dir: Path = Path("runs")
    job: str = DEFAULT_JOB
    # Odoo side: a dataset directory read in-process, or a real Odoo.
    source: Path | None = None
    odoo_url: str | None = None
    odoo_db: str | None = None
    odoo_user: str | None = None
    odoo_password: str | None = field(default=None, repr=False)
    odoo_api_key: str | None = field(default=None, repr=False)
    odoo_transport: str = "jsonrpc"
    odoo_timeout: float = 60.0
    odoo_retries: int = 4
    page_size: int = 20_000
    use_cache: bool = True
    # Run behaviour.
    full: bool = False
    since: datetime | None = None
    overlap: timedelta = timedelta(minutes=10)
    dry_run: bool = False
    apply_drift: bool = False
    max_reject_ratio: float = 0.05
    wait_seconds: float = 0.0
    statement_timeout: float = 900.0  # seconds one SQL statement may run; 0 = no limit
    lock_timeout: float = 10.0  # seconds a statement may wait for a row/table lock; 0 = no limit
    write_retries: int = 3  # write transactions retried after a lock timeout, deadlock or serialization failure
    metrics_file: Path | None = None  # Prometheus textfile-collector file written after every run
    chunk_size: int = DEFAULT_CHUNK_SIZE  # lines per chunk of a full run; 0 = the whole run in one piece
    # The stock stage (DESIGN §9): on in `sync` unless `--no-stock`; `stock --nfs` lists NFs.
    stock: bool = True
    stock_nfs: tuple[str, ...] = ()
    # Business rules (DESIGN §10): `config.load_rules` — file < environment < flags.
    rules: Rules = field(default_factory=Rules)
    # Downstream events (DESIGN §11): fully acked events older than this are deleted by the runs.
    events_retention_days: float = 7.0

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in logs, manifests or messages."""
        found = [s for s in (self.odoo_password, self.odoo_api_key) if s]
        # The database's, whatever form it came in (URL, key/value string, PGPASSWORD), and as
        # it reads percent-encoded in a URL.
        password = password_of(self.database_url)
        if password:
            found += [password, quote(password, safe=""), quote(password)]
        return tuple(dict.fromkeys(found))

    def scrub(self, text: str) -> str:
        """`text` with every secret of these settings masked."""
        text = redact(text)
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    @property
    def pgdata(self) -> Path:
        return self.state_dir / "pgdata"

    @property
    def cache_dir(self) -> Path:
        return self.state_dir / "cache"


NF_WIDTH = 20  # faturamento_produto.numero_nf


def parse_nfs(text: str) -> list[str]:
    """`--nfs NF,NF…` → the distinct NF numbers, in the order given; `ConfigError` when unusable."""
    nfs = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not nfs:
        raise ConfigError("`--nfs` lists no NF: give NF numbers separated by commas (`--nfs 123,124`)")
    too_long = [nf for nf in nfs if len(nf) > NF_WIDTH]
    if too_long:
        raise ConfigError(f"`--nfs`: `{too_long[0]}` is longer than an NF number ({NF_WIDTH} characters)")
    return nfs


def env_settings(**overrides) -> Settings:
    """Settings from the environment (FATURAMENTO_*, ODOO_*), then `overrides` (flags) on top."""
    env = os.environ
    values: dict = {
        "database_url": env.get("FATURAMENTO_DATABASE_URL") or None,
        "odoo_url": env.get("ODOO_URL") or None,
        "odoo_db": env.get("ODOO_DB") or None,
        "odoo_user": env.get("ODOO_USER") or None,
        "odoo_password": env.get("ODOO_PASSWORD") or None,
        "odoo_api_key": env.get("ODOO_API_KEY") or None,
    }
    if env.get("FATURAMENTO_CHUNK_SIZE"):
        try:
            values["chunk_size"] = int(env["FATURAMENTO_CHUNK_SIZE"])
        except ValueError:
            raise ConfigError("`FATURAMENTO_CHUNK_SIZE` must be a whole number of lines (0 = one piece)") from None
    if env.get("FATURAMENTO_STATE_DIR"):
        values["state_dir"] = Path(env["FATURAMENTO_STATE_DIR"])
    if env.get("FATURAMENTO_METRICS_FILE"):
        values["metrics_file"] = Path(env["FATURAMENTO_METRICS_FILE"])
    if env.get("FATURAMENTO_EVENTS_RETENTION_DAYS"):
        try:
            values["events_retention_days"] = float(env["FATURAMENTO_EVENTS_RETENTION_DAYS"])
        except ValueError:
            raise ConfigError("`FATURAMENTO_EVENTS_RETENTION_DAYS` must be a number of days") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    if "rules" not in values:  # the caller gave none: the file and environment still apply
        values["rules"] = load_rules()
    settings = Settings(**values)
    if not 0 <= settings.max_reject_ratio <= 1:
        raise ConfigError("`--max-reject-ratio` must be between 0 and 1 (0.05 is 5 %)")
    if settings.lock_timeout < 0 or settings.statement_timeout < 0:
        raise ConfigError("`--lock-timeout` and `--statement-timeout` are seconds, 0 or more (0 = no limit)")
    if settings.write_retries < 0:
        raise ConfigError("`--write-retries` must be 0 or more")
    if settings.chunk_size < 0:
        raise ConfigError("`--chunk-size` must be a number of lines (0 = the whole full run in one piece)")
    if settings.events_retention_days < 0:
        raise ConfigError("the events' retention must be 0 or more days")
    if settings.page_size < 1:
        raise ConfigError("`--page-size` must be a positive number of lines")
    return settings
