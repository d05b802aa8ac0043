"""Every data write of a run, in one sequence, from the run's spills and its stock plan.

`write_run(writer, run, exclude)` is a function of what the run computed (the
import stage's spilled parts, the stock stage's plan) and of a set of NFs to leave
out: it can be sent again, e.g. under a SAVEPOINT without the NFs PostgreSQL
refused (quarantine, DESIGN §12). A healthy run passes `exclude=None` and sends
exactly these statements, a constant number whatever the volume (a part with
no rows sends nothing):

  1. COPY the new lines into faturamento_produto — one `adbc_ingest` of a stream
     of Arrow batches read from the `inserts` spill
  2. new products: staged (COPY) + INSERT … ON CONFLICT DO NOTHING
  3. status/drift changes: staged (COPY) + UPDATE … FROM
  4. the cancellation cascade: one statement for every cancelled NF (sparing reversed NFs,
     with the deliveries where that table exists), then the order balance
     (`carteira_principal`, where it exists) of every order the run touched
  5. consolidation: staged (COPY) + INSERT … ON CONFLICT DO UPDATE
  6. the stock stage's writes (`db.write_stock`), last of the data, so the
     logistics application's rows stay locked only until the commit
  7. `write_events`: the downstream events hook (DESIGN §11)
The run record, the cursor and the commit follow (`pipeline`).

Replaying: the staged tables are temporary tables the COPYs create, so a second
`write_run` in the same transaction must follow a `ROLLBACK TO SAVEPOINT` taken
before the first (which drops them again). New products are not per NF and are
never excluded (a code inserted for a left-out NF is harmless and idempotent).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import polars as pl
import pyarrow as pa

from ..db.write import (
    _INSERT_PRODUCTS,
    _UPDATE_LINES,
    _UPSERT_CONSOLIDATION,
    ACTOR,
    Writer,
    cancel_and_rebalance,
    to_arrow,
)
from ..db.write import WriteSummary as LegacySummary
from ..db import events as db_events
from ..db.events import EventsWritten
from ..db.write_stock import StockWriteSummary
from ..errors import ConfigError, DatabaseError
from ..settings import Settings
from ..db.write_stream import Spill, arrow_schema, ingest_stream
from ..schemas import LINE_VALUES
from .import_stage import Imported
from .stock_stage import StockStage

log = logging.getLogger(__name__)


class RunParts(Protocol):
    """What `write_run` reads from the run (`pipeline.Run`)."""

    now: datetime  # the run's timestamp (the database's clock at the lock)
    imported: Imported | None  # None: no import stage (`stock`)
    stock: StockStage | None  # None: the stage is off (`--no-stock`)
    settings: Settings

    def events_to_write(self, exclude: pl.DataFrame | None) -> pl.DataFrame | None:
        """The run's events without `exclude`'s NFs, with the quarantine's own (None: no events)."""


@dataclass(frozen=True)
class WriteSummary:
    """What the writes did: rows per `table.action`, the cascade's rows per NF, the stage's summary."""

    rows: dict[str, int] = field(default_factory=dict)
    cascade: pl.DataFrame | None = None  # tabela, numero_nf, linhas
    stock: StockWriteSummary | None = None
    events: EventsWritten | None = None


def write_run(writer: Writer, run: RunParts, exclude: pl.DataFrame | None = None) -> WriteSummary:
    """Send every data write of `run` inside the open transaction (not committed here).

    `exclude` (a frame with `numero_nf`): NFs left out whole — their new lines,
    changes, cascade, consolidation, stock writes and events."""
    rows: dict[str, int] = {}
    cascade = None
    imported = run.imported
    at_insert = run.stock.status_at_insert if run.stock is not None else None
    lines_at_insert: list[int] = []
    if imported is not None:
        parts, staged = imported.parts, imported.staged
        if parts["inserts"].rows:
            log.info("write: COPY %d new lines into faturamento_produto", parts["inserts"].rows)
            schema = arrow_schema(insert_rows(pl.DataFrame(schema=LINE_VALUES), run.now))
            lines = (insert_rows(_planned_status(frame, at_insert, lines_at_insert), run.now)
                     for frame in _frames(parts["inserts"], exclude))  # fmt: skip
            rows["faturamento_produto.insert"] = ingest_stream(writer, "faturamento_produto", schema, _batches(lines, schema),
                                                               temporary=False)  # fmt: skip
        if staged["new_products"].rows:
            _stage(writer, "_fb_new_products", staged["new_products"], None)  # products are not per NF
            writer.execute(_INSERT_PRODUCTS, (run.now,))
            rows["cadastro_palletizacao.insert"] = writer.rowcount()
        if staged["changes"].rows:
            _stage(writer, "_fb_changes", staged["changes"], exclude)
            writer.execute(_UPDATE_LINES, (run.now, ACTOR))
            rows["faturamento_produto.update"] = writer.rowcount()
        # The cascade, then the order balance (§10) of the orders the run inserted, changed or cancelled.
        cancelled = _without(imported.cancelled, exclude).get_column("numero_nf")
        balance = _without(imported.balance_nfs(), exclude).get_column("numero_nf")
        done = LegacySummary()
        cancel_and_rebalance(writer, done, cancelled, balance, run.now, stock=run.settings.stock)
        rows.update(done.rows)
        cascade = done.cascade
        if staged["consolidation"].rows:
            _stage(writer, "_fb_consolidation", staged["consolidation"], exclude)
            writer.execute(_UPSERT_CONSOLIDATION, (run.now, ACTOR))
            rows["relatorio_faturamento_importado.upsert"] = writer.rowcount()
    stock = None
    if run.stock is not None:
        stock = run.stock.write(writer, run.now, exclude, lines_at_insert=sum(lines_at_insert))
    events = write_events(writer, run, exclude)
    return WriteSummary(rows, cascade, stock, events)


def write_events(writer: Writer, run: RunParts, exclude: pl.DataFrame | None) -> EventsWritten | None:
    """The downstream events of the run (DESIGN §11), in the run's transaction, after the stock
    stage's writes: one staged COPY and one set-based statement (insert, fan-out to the
    consumers, retention, NOTIFY at commit)."""
    events = run.events_to_write(exclude)
    if events is None:
        return None
    try:
        return db_events.write_events(writer, events, run.now, run.settings.events_retention_days)
    except DatabaseError as exc:
        if "sync_event" in str(exc) and "does not exist" in str(exc):
            raise ConfigError("the database has no events tables (`sync_events`, `sync_event_consumers`, "
                              "`sync_event_deliveries`): run `faturamento-batch init-db` (it adds only what is missing)") from exc
        raise


def insert_rows(inserts: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """New lines as faturamento_produto rows (the audit columns of the run)."""
    return inserts.select(LINE_VALUES.names()).with_columns(
        pl.lit(now).alias("created_at"), pl.lit(now).alias("updated_at"),
        pl.lit(ACTOR).alias("created_by"), pl.lit(ACTOR).alias("updated_by"),
    )  # fmt: skip


def _planned_status(lines: pl.DataFrame, at_insert: pl.DataFrame | None, changed: list[int]) -> pl.DataFrame:
    """New lines with the status the stock stage planned for their NF (a first run's `SEM_LOTE`),
    where the line still has the status the plan was computed from; `changed` counts them."""
    if at_insert is None or at_insert.height == 0:
        return lines
    joined = lines.join(at_insert.rename({"status_nf": "_planned"}), on="numero_nf", how="left")
    hit = pl.col("_planned").is_not_null() & (pl.col("status_nf") == pl.col("status_from"))
    joined = joined.with_columns(hit.alias("_hit"))
    changed.append(int(joined.get_column("_hit").sum()))
    return joined.with_columns(pl.when("_hit").then(pl.col("_planned")).otherwise(pl.col("status_nf")).alias("status_nf")).select(lines.columns)


def _without(frame: pl.DataFrame, exclude: pl.DataFrame | None) -> pl.DataFrame:
    if exclude is None or exclude.height == 0:
        return frame
    return frame.join(exclude.select("numero_nf").unique(), on="numero_nf", how="anti")


def _frames(spill: Spill, exclude: pl.DataFrame | None) -> Iterator[pl.DataFrame]:
    """The spill's rows as frames of one Parquet batch each, `exclude`'s NFs left out."""
    for batch in spill.batches():
        yield _without(pl.from_arrow(batch), exclude)  # type: ignore[arg-type]


def _batches(frames: Iterable[pl.DataFrame], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    for frame in frames:
        yield from to_arrow(frame).cast(schema).to_batches()


def _stage(writer: Writer, table: str, spill: Spill, exclude: pl.DataFrame | None) -> None:
    """One COPY of the spill into a temporary table (the COPY creates it)."""
    if exclude is None:
        ingest_stream(writer, table, spill.schema, spill.batches(), temporary=True)
        return
    ingest_stream(writer, table, spill.schema, _batches(_frames(spill, exclude), spill.schema), temporary=True)
