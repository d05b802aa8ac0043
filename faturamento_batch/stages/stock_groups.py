"""The stock stage by groups of orders (DESIGN §8, §9): bounded whatever the run's size.

§9 assigns lots per order, but orders meet: a lot two orders' items share is taken
by one NF only, and an item may name an NF of another order. So the unit planned
together is a connected component of orders, lots and NFs (an order and the lots of
its items; an NF and the order and lot of an item naming it); an NF without an
order is one on its own. The components are spread over `count` groups by a hash,
each about `budget` candidate lines.

The stock state is read ONCE (three streamed statements, `db.read_stock.
stream_stock_state`). The items come first: spilled as they arrive, their (order,
lot, NF) links give the components; then the items, the separations and the NFs'
own state are spread over the groups batch by batch, and the stage plans group by
group, holding one group's lines and state at a time. A run of at most `budget`
lines is one group, held in memory. Spilled groups live in the run's temporary
directory, one Parquet file per group and part.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ..db.full_state import bucket_of
from ..db.read_stock import STATE_PARTS, StockState
from ..db.write_stream import Spill
from ..schemas import STOCK_NF_LINE
from ..stock.lots import POSTED

log = logging.getLogger(__name__)

# Rounds of label propagation before giving up on components (then: one group, correct but
# held whole). Each round reaches one step further along an order–lot–order chain.
MAX_ROUNDS = 64
INSERTED = "_inserted"  # a candidate line this run inserts (its status can be COPYed with it)
LINES = pl.Schema({**STOCK_NF_LINE, INSERTED: pl.Boolean})


def posted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.filter(pl.col("status_nf").is_in(POSTED))


def _node(nf: str, order: str) -> pl.Expr:
    """An NF's node: its order's, else its own."""
    return pl.when(pl.col(order).is_not_null()).then(pl.lit("o\x00") + pl.col(order)).otherwise(pl.lit("n\x00") + pl.col(nf))


def components(links: pl.DataFrame) -> pl.DataFrame | None:
    """node, label: every node of `links` (a, b) with the smallest node of its connected
    component (label propagation, in frames); None when it takes more than `MAX_ROUNDS` rounds."""
    both = pl.concat([links.select("a", "b"), links.select(pl.col("b").alias("a"), pl.col("a").alias("b"))]).unique()
    labels = both.select(pl.col("a").alias("node")).unique().sort("node").with_columns(pl.col("node").alias("label"))
    for _ in range(MAX_ROUNDS):
        reached = both.join(labels, left_on="b", right_on="node").group_by("a").agg(pl.col("label").min().alias("_min"))
        new = labels.join(reached, left_on="node", right_on="a", how="left", maintain_order="left")
        new = new.select("node", pl.min_horizontal("label", "_min").alias("label"))
        if new.get_column("label").equals(labels.get_column("label")):
            return labels
        labels = new
    return None


@dataclass
class Groups:
    """Which group every candidate NF and order belongs to."""

    count: int
    nfs: pl.DataFrame  # numero_nf, _group: the NFs with a posted line
    orders: pl.DataFrame  # order, _group: their orders
    candidates: int  # NFs looked at, posted or not

    @classmethod
    def of(cls, frames: Callable[[], Iterable[pl.DataFrame]], budget: int) -> "Groups":
        """One pass over the candidate lines (`frames()`, schema `LINES`): each NF's order is
        its smallest non-blank `origem` among its posted lines, as `stock.lots.nf_headers` has it."""
        pairs, seen, lines = [], [], 0
        for frame in frames():
            seen.append(frame.select("numero_nf").unique())
            kept = posted(frame)
            lines += kept.height
            pairs.append(kept.select("numero_nf", pl.col("origem").str.strip_chars().ne("").alias("_has"), "origem").unique())
        all_pairs = pl.concat(pairs) if pairs else pl.DataFrame(schema={"numero_nf": pl.String, "_has": pl.Boolean, "origem": pl.String})
        candidates = pl.concat(seen).n_unique() if seen else 0
        count = max(1, math.ceil(lines / budget)) if budget > 0 else 1
        nfs = (
            all_pairs.group_by("numero_nf")
            .agg(pl.col("origem").filter(pl.col("_has")).min().alias("order"))
            .with_columns(_node("numero_nf", "order").alias("_node"))
        )
        groups = cls(count, nfs.select("numero_nf", "order", "_node"), nfs.select("order", "_node").clear(), candidates)
        groups.connect(pl.DataFrame(schema={"a": pl.String, "b": pl.String}))
        return groups

    def connect(self, links: pl.DataFrame) -> None:
        """Give every NF and order the group of its connected component over `links` (a, b:
        nodes, see `item_links`); an NF without links is a component of its own."""
        nodes = self.nfs.select("numero_nf", "order", "_node")
        if self.count > 1 and links.height:
            labels = components(links)
            if labels is None:
                log.warning("stock stage: order-lot links too long to follow; planning the run as one group")
                self.count = 1
            else:
                nodes = nodes.join(labels, left_on="_node", right_on="node", how="left")
                nodes = nodes.with_columns(pl.coalesce("label", "_node").alias("_node")).drop("label")
        self.nfs = nodes.with_columns(bucket_of(pl.col("_node"), self.count).alias("_group"))
        self.orders = self.nfs.select("order", "_group").drop_nulls("order").unique("order")

    def item_links(self, items: pl.DataFrame) -> pl.DataFrame:
        """The component links an items batch (STOCK_ITEM) brings: its order and its lot; the NF
        it names (a candidate), its order and its lot."""
        order = pl.lit("o\x00") + pl.col("pedido")
        lot = pl.lit("l\x00") + pl.col("separacao_lote_id")
        named = items.join(self.nfs.select(pl.col("numero_nf").alias("nota_fiscal"), "_node"), on="nota_fiscal")
        return pl.concat([
            items.select(order.alias("a"), lot.alias("b")),
            named.select(pl.col("_node").alias("a"), order.alias("b")),
            named.select(pl.col("_node").alias("a"), lot.alias("b")),
        ]).drop_nulls().unique()  # fmt: skip

    def of_nfs(self, frame: pl.DataFrame, column: str = "numero_nf") -> pl.DataFrame:
        """`frame` with the group of its NF (`column`); rows of no candidate NF are dropped."""
        keys = self.nfs.select(pl.col("numero_nf").alias(column), "_group")
        return frame.join(keys, on=column, how="inner")

    def of_orders(self, frame: pl.DataFrame, column: str) -> pl.DataFrame:
        keys = self.orders.select(pl.col("order").alias(column), "_group")
        return frame.join(keys, on=column, how="inner")

    def of_state(self, part: str, frame: pl.DataFrame) -> pl.DataFrame:
        """A batch of the stock state with its group(s): items by order and by the NF they name,
        separations by order, the rest by NF (one group: all of it, group 0)."""
        if self.count == 1:
            return frame.with_columns(pl.lit(0).alias("_group"))
        if part == "items":
            both = pl.concat([self.of_orders(frame, "pedido"), self.of_nfs(frame, "nota_fiscal")])
            return both.unique(["id", "_group"], keep="first", maintain_order=True)
        if part == "separations":
            return self.of_orders(frame, "num_pedido")
        return self.of_nfs(frame)


class Grouped:
    """Frames of one kind spread over the groups: held whole when there is one group, else
    appended to one Parquet file per group under `spill`."""

    def __init__(self, name: str, schema: pl.Schema, spilled: bool, spill: Path):
        self.name, self.schema, self.spilled, self.spill = name, schema, spilled, spill
        self.held: list[pl.DataFrame] = []
        self.files: dict[int, Spill] = {}

    def add(self, frame: pl.DataFrame) -> None:
        """`frame` with a `_group` column."""
        if not self.spilled:
            self.held.append(frame.drop("_group"))
            return
        for (g,), part in frame.partition_by("_group", as_dict=True, include_key=False).items():
            if g not in self.files:
                self.spill.mkdir(parents=True, exist_ok=True)
                self.files[g] = Spill(self.spill / f"{self.name}-{g}.parquet")
            self.files[g].append(part)

    def group(self, g: int) -> pl.DataFrame:
        """Group `g`'s rows, handed over once (a held frame is the one group's)."""
        if not self.spilled:
            frames, self.held = self.held, []
        else:
            spill = self.files.pop(g, None)
            if spill is not None:
                spill.close()
            frames = [pl.read_parquet(spill.file)] if spill is not None else []
        frames = [f for f in frames if f.height]
        if not frames:
            return pl.DataFrame(schema=self.schema)
        return pl.concat(frames, how="vertical_relaxed").cast(dict(self.schema))  # type: ignore[arg-type]


def spread(groups: Groups, lines: Callable[[], Iterable[pl.DataFrame]], state: Iterator[tuple[str, pl.DataFrame]],
           spill: Path) -> tuple[Grouped, dict[str, Grouped]]:
    """The streamed stock `state` (items first) and the posted candidate lines (a second pass of
    `lines()`), spread over `groups` — whose components the items' links settle first."""
    several = groups.count > 1
    parts = {name: Grouped(name, schema, several, spill) for name, schema in STATE_PARTS.items()}
    held: Spill | None = None  # several groups: the items wait in one file until every link is known
    if several:
        spill.mkdir(parents=True, exist_ok=True)
        held = Spill(spill / "items-read.parquet")
    links: list[pl.DataFrame] = []
    for name, frame in state:
        if name == "items" and held is not None:
            links.append(groups.item_links(frame))
            held.append(frame)
            continue
        if held is not None:
            _settle(groups, links, held, parts)
            held = None
        parts[name].add(groups.of_state(name, frame))
    if held is not None:
        _settle(groups, links, held, parts)
    by_group = Grouped("lines", LINES, groups.count > 1, spill)
    for frame in lines():
        by_group.add(groups.of_nfs(posted(frame).select(LINES.names())))
    return by_group, parts


def _settle(groups: Groups, links: list[pl.DataFrame], held: Spill, parts: dict[str, Grouped]) -> None:
    """The components, then the items set aside, spread over them batch by batch."""
    groups.connect(pl.concat(links) if links else pl.DataFrame(schema={"a": pl.String, "b": pl.String}))
    if groups.count == 1:  # the links were too long to follow: everything is one group, held
        for grouped in parts.values():
            grouped.spilled = False
    if held.rows:
        for batch in held.batches():
            parts["items"].add(groups.of_state("items", pl.from_arrow(batch)))  # type: ignore[arg-type]


def state_of(parts: dict[str, Grouped], g: int) -> StockState:
    return StockState(**{name: grouped.group(g) for name, grouped in parts.items()})


def put_together(plans: list[dict[str, pl.DataFrame]]) -> dict[str, pl.DataFrame]:
    """Each part of the groups' plans in one frame, group after group (no copy: the frames'
    chunks are chained; a group's rows keep the order `plan_stock` gave them)."""
    return {name: pl.concat([p[name] for p in plans], how="vertical_relaxed", rechunk=False) for name in plans[0]}
