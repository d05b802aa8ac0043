"""faturamento_batch's extraction alone, end-to-end only: what the issue's "≤ 1.6× the extraction"
compares a whole run with.

The same extraction a full run does (`OdooSource.extract_chunks`: the moves' index,
then each chunk's moves, lines and related records, JSON-RPC from the replay server,
a cold related-record cache), every chunk pulled and dropped; incremental scenarios
use the incremental extraction (`extract(since)`). No transform, no database.
"""

from __future__ import annotations

from pathlib import Path

from faturamento_batch.odoo.extract import OdooSource
from faturamento_batch.settings import DEFAULT_CHUNK_SIZE, Settings

from .frames import SINCE


def prepare(spec: dict) -> None:
    if spec["mode"] != "e2e":
        raise RuntimeError("the extraction alone is measured end-to-end only")


def run(_state, spec: dict) -> dict:
    odoo = spec["odoo"]
    settings = Settings(odoo_url=odoo["url"], odoo_db=odoo["db"], odoo_user=odoo["login"], odoo_password=odoo["password"],
                        odoo_timeout=600.0, state_dir=Path(spec["tmp"]) / "state")  # fmt: skip
    source = OdooSource.from_settings(settings)
    lines = 0
    if spec["kind"] == "full":
        extraction = source.extract_chunks(spec.get("chunk_size") or DEFAULT_CHUNK_SIZE)
        for batch in extraction.chunks:
            lines += batch.frames["account.move.line"].height
        stats = extraction.stats
    else:
        batch = source.extract(SINCE)
        lines, stats = batch.frames["account.move.line"].height, batch.stats
    return {"statements": 0, "odoo_calls": stats.total_calls, "detail": {"odoo_lines": lines, "odoo": stats.as_dict()}}
