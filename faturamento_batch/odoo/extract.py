"""`OdooSource`: the job's extraction from a live Odoo (or the replay server).

1. Lines, keyset-paged (`id > last_id`, `order='id asc'`), never by offset. In an
   incremental run: first the ids of the moves whose lines or which themselves
   changed since the window start, then every in-domain line of those moves, so
   each NF arrives whole.
2. Related records by id, in chunks, independent models in parallel (a thread
   pool): moves, partners and products first, then templates, municipios and users.
3. The related-record cache answers what has not changed since the last run.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import polars as pl

from ..config import Rules
from ..errors import ConfigError
from ..settings import Settings
from .cache import RecordCache
from .chunks import ChunkedExtraction, plan_ranges
from .fields import LINE, MODELS, MOVE, RELATED, RELATED_IDS_FROM, line_domain, move_domain
from .frames import empty_frame, frame_from_json, records_to_frame
from .source import DATETIME_FORMAT, ExtractStats, RawBatch, max_write_date
from .transport import Credentials, Transport, make_transport

log = logging.getLogger(__name__)

ID_CHUNK = 2_000  # ids per `id in [...]` call: keeps each request well under typical body limits
MOVE_CHUNK = 1_000  # moves per widening call
CONTEXT = {"active_test": False}  # archived partners/products still belong to old invoices

# Fetched in two waves: the second needs ids found in the first.
WAVES: tuple[tuple[str, ...], ...] = (tuple(m for m in RELATED if all(src == LINE for src, _ in RELATED_IDS_FROM[m])),)
WAVES += (tuple(m for m in RELATED if m not in WAVES[0]),)


def _fmt(ts: datetime) -> str:
    return ts.strftime(DATETIME_FORMAT)


class OdooClient:
    """search_read into raw frames over one transport, counting calls and bytes."""

    def __init__(self, transport: Transport, stats: ExtractStats):
        self.transport = transport
        self.stats = stats

    def login(self) -> int:
        self.stats.count_call("common", "authenticate")
        return self.transport.authenticate()

    def search_read(self, model: str, domain: list, fields: list[str], *, limit: int | None = None, order: str = "id asc") -> pl.DataFrame:
        kwargs: dict = {"fields": fields, "order": order, "context": CONTEXT}
        if limit:
            kwargs["limit"] = limit
        self.stats.count_call(model, "search_read")
        if self.transport.name == "xmlrpc":
            parse = lambda recs: records_to_frame(model, recs)  # noqa: E731
        elif self.transport.name == "jsonrpc":
            parse = lambda body: frame_from_json(model, body, key="result")  # noqa: E731
        else:
            parse = lambda body: frame_from_json(model, body)  # noqa: E731
        frame = self.transport.call(model, "search_read", [domain], kwargs, parse=parse)
        return frame

    def keyset(self, model: str, domain: list, fields: list[str], page_size: int) -> pl.DataFrame:
        """Every record matching `domain`, in pages of `page_size` by increasing id.

        Stops on an empty page, not a short one: a page that came back with fewer
        rows than promised must not end the read early.
        """
        pages = []
        last_id = 0
        while True:
            page = self.search_read(model, [("id", ">", last_id), *domain], fields, limit=page_size)
            if page.height == 0:
                break
            pages.append(page)
            last_id = int(page.get_column("id").max())  # type: ignore[arg-type]
        return pl.concat(pages) if pages else empty_frame(model)

    def by_ids(self, model: str, ids: list[int], fields: list[str]) -> pl.DataFrame:
        chunks = [self.search_read(model, [("id", "in", chunk)], fields) for chunk in _chunks(ids, ID_CHUNK)]
        return pl.concat(chunks) if chunks else empty_frame(model)


class OdooSource:
    """`Source` over Odoo's wire protocols (see the module docstring)."""

    def __init__(self, transport: Transport, *, page_size: int = 20_000, cache_dir: Path | None = None, workers: int = 3,
                 rules: Rules | None = None):
        self.transport = transport
        # The domain from the business rules (DESIGN §10): invoice types, excluded companies.
        self.line_domain = line_domain(rules)
        self.move_domain = move_domain(rules)  # the same, on moves (chunked full runs page moves)
        self.page_size = page_size
        self.cache = RecordCache(cache_dir)
        self.workers = workers
        self.description = f"Odoo {transport.creds.url} db={transport.creds.db} via {transport.name}"

    @classmethod
    def from_settings(cls, settings: Settings) -> "OdooSource":
        if not (settings.odoo_url and settings.odoo_db and settings.odoo_user):
            raise ConfigError("Odoo needs `ODOO_URL`, `ODOO_DB` and `ODOO_USER` (or --odoo-url/--odoo-db/--odoo-user)")
        creds = Credentials(settings.odoo_url, settings.odoo_db, settings.odoo_user,
                            settings.odoo_password, settings.odoo_api_key)  # fmt: skip
        transport = make_transport(settings.odoo_transport, creds, settings.odoo_timeout, settings.odoo_retries)
        cache_dir = settings.cache_dir / _cache_key(settings) if settings.use_cache else None
        return cls(transport, page_size=settings.page_size, cache_dir=cache_dir, rules=settings.rules)

    def extract(self, since: datetime | None) -> RawBatch:
        started = time.perf_counter()
        stats = ExtractStats()
        client = OdooClient(self.transport, stats)
        client.login()
        line_fields = list(MODELS[LINE])
        if since is None:
            lines = client.keyset(LINE, self.line_domain, line_fields, self.page_size)
        else:
            lines = self._changed_moves_lines(client, since, line_fields)
        frames = {LINE: lines}
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for wave in WAVES:
                jobs = {m: pool.submit(self._related, client, m, _ids_for(m, frames)) for m in wave}
                frames.update({m: job.result() for m, job in jobs.items()})
        stats.records = {m: f.height for m, f in frames.items()}
        stats.bytes_received = self.transport.bytes_received
        stats.seconds = time.perf_counter() - started
        return RawBatch(frames, since, max_write_date(frames), stats)

    def extract_moves(self, move_ids: list[int]) -> RawBatch:
        """The in-domain lines of the moves `move_ids`, fetched by id whatever their write_date
        (the quarantine's retries: the cursor has moved past them), and their related records."""
        started = time.perf_counter()
        stats = ExtractStats()
        client = OdooClient(self.transport, stats)
        client.login()
        fields = list(MODELS[LINE])
        parts = [client.keyset(LINE, [*self.line_domain, ("move_id", "in", chunk)], fields, self.page_size)
                 for chunk in _chunks(sorted(set(move_ids)), MOVE_CHUNK)]  # fmt: skip
        frames = {LINE: pl.concat(parts).sort("id") if parts else empty_frame(LINE)}
        for wave in WAVES:  # few moves: one thread is enough
            frames.update({m: self._related(client, m, _ids_for(m, frames)) for m in wave})
        stats.records = {m: f.height for m, f in frames.items()}
        stats.seconds = time.perf_counter() - started
        return RawBatch(frames, None, max_write_date(frames), stats)

    def extract_chunks(self, chunk_lines: int) -> ChunkedExtraction:
        """The full extraction in chunks of whole moves (see `odoo.chunks`).

        First the in-domain moves' ids and NF numbers (two light fields, keyset
        pages) and the number of in-domain lines (`search_count`); the moves are cut
        into id ranges of about `chunk_lines` lines at the average lines per move.
        Then, chunk by chunk as the caller asks: the range's moves, its lines
        (keyset pages on `move_id` between the range's ends), and the related
        records not yet fetched by an earlier chunk of this run (plus the cache).
        """
        started = time.perf_counter()
        stats = ExtractStats()
        client = OdooClient(self.transport, stats)
        client.login()
        index = client.keyset(MOVE, self.move_domain, ["id", "l10n_br_numero_nota_fiscal"], self.page_size)
        stats.count_call(LINE, "search_count")
        total = int(self.transport.call(LINE, "search_count", [self.line_domain], {"context": CONTEXT}, parse=self.transport.decode))
        per_move = total / max(index.height, 1)
        ranges = plan_ranges(index.select(pl.col("id").alias("move_id"), pl.lit(per_move).alias("lines")), chunk_lines)
        moves_index = index.select(pl.col("id").alias("move_id"), "l10n_br_numero_nota_fiscal")
        known: dict[str, pl.DataFrame] = {}
        stats.seconds = time.perf_counter() - started

        def chunks():
            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                for lo, hi in ranges:
                    t = time.perf_counter()
                    bounds = [("move_id", ">=", lo), ("move_id", "<=", hi)]
                    frames = {LINE: client.keyset(LINE, [*bounds, *self.line_domain], list(MODELS[LINE]), self.page_size)}
                    moves = client.keyset(MOVE, [("id", ">=", lo), ("id", "<=", hi), *self.move_domain], list(MODELS[MOVE]), self.page_size)
                    frames[MOVE] = moves.join(frames[LINE].select(pl.col("move_id").alias("id")).unique(), on="id", how="semi")
                    for wave in WAVES:
                        wanted = {m: _ids_for(m, frames) for m in wave if m != MOVE}
                        jobs = {m: pool.submit(self._related_once, client, known, m, ids) for m, ids in wanted.items()}
                        frames.update({m: job.result() for m, job in jobs.items()})
                    for model, frame in frames.items():
                        stats.records[model] = stats.records.get(model, 0) + frame.height
                    stats.bytes_received = self.transport.bytes_received
                    stats.seconds += time.perf_counter() - t
                    yield RawBatch(frames, None, max_write_date(frames), ExtractStats())

        return ChunkedExtraction(moves_index, chunks(), len(ranges), stats)

    def _related_once(self, client: OdooClient, known: dict[str, pl.DataFrame], model: str, ids: list[int]) -> pl.DataFrame:
        """Related records of `ids`, fetching only those no earlier chunk of the run fetched."""
        have = known.get(model, empty_frame(model))
        wanted = pl.DataFrame({"id": ids}, schema={"id": pl.Int64})
        missing = wanted.join(have.select("id"), on="id", how="anti").get_column("id").to_list()
        if missing:
            have = pl.concat([have, self._related(client, model, missing)])
            known[model] = have
        return have.join(wanted, on="id", how="semi")

    def _changed_moves_lines(self, client: OdooClient, since: datetime, fields: list[str]) -> pl.DataFrame:
        window = ["|", ("write_date", ">=", _fmt(since)), ("move_id.write_date", ">=", _fmt(since))]
        touched = client.keyset(LINE, [*self.line_domain, *window], ["id", "move_id"], self.page_size)
        move_ids = touched.get_column("move_id").drop_nulls().unique().sort().to_list()
        parts = [
            client.keyset(LINE, [*self.line_domain, ("move_id", "in", chunk)], fields, self.page_size)
            for chunk in _chunks(move_ids, MOVE_CHUNK)
        ]
        return pl.concat(parts).sort("id") if parts else empty_frame(LINE)

    def _related(self, client: OdooClient, model: str, ids: list[int]) -> pl.DataFrame:
        fields = list(MODELS[model])
        if not ids:
            return empty_frame(model)
        # Moves carry the NF's state: always read fresh, never from the cache.
        if model == MOVE or self.cache.directory is None:
            return client.by_ids(model, ids, fields)
        cached = self.cache.load(model)
        wanted = pl.DataFrame({"id": ids}, schema={"id": pl.Int64})
        known = cached.join(wanted, on="id", how="semi")
        # Revalidate by write_date: one light call (id, write_date) per chunk, then
        # the full records only of what is new or changed since it was cached.
        stamps = [
            client.search_read(model, [("id", "in", chunk)], ["id", "write_date"])
            for chunk in _chunks(known.get_column("id").to_list(), ID_CHUNK)
        ]
        current = pl.concat(stamps).select("id", "write_date") if stamps else pl.DataFrame(schema={"id": pl.Int64, "write_date": pl.String})
        unchanged = known.join(current, on=["id", "write_date"], how="semi")
        stale = wanted.join(unchanged, on="id", how="anti").get_column("id").to_list()
        fresh = client.by_ids(model, stale, fields) if stale else empty_frame(model)
        client.stats.cache_hits[model] = unchanged.height
        if fresh.height:
            self.cache.save(model, RecordCache.merge(cached, fresh))
        return pl.concat([unchanged, fresh]).join(wanted, on="id", how="semi")


def _chunks(values: list, size: int) -> list[list]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def _ids_for(model: str, frames: dict[str, pl.DataFrame]) -> list[int]:
    cols = [frames[src].get_column(field) for src, field in RELATED_IDS_FROM[model] if src in frames]
    if not cols:
        return []
    return pl.concat(cols).drop_nulls().unique().sort().to_list()


def _cache_key(settings: Settings) -> str:
    """One cache per Odoo database: never serve one company's partners to another."""
    import hashlib

    return hashlib.sha256(f"{settings.odoo_url}|{settings.odoo_db}".encode()).hexdigest()[:16]
