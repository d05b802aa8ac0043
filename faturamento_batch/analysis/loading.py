"""Find and load a run's artifacts (`runs/<run-id>/`): the schema every part reads as.

A part that a run did not write (`cascade` exists only when NFs were
cancelled; the stock stage's parts not with `--no-stock`; a failed run may stop
before the diff) reads as an empty frame of the right schema, so every shaping
function also works on it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from .. import artifacts
from ..schemas import (
    CONSOLIDATION,
    DRIFT_COLUMNS,
    KEY,
    LINE_VALUES,
    NEW_PRODUCT,
    NF_LIST,
    REJECTED,
    STATUS_CHANGE,
    STOCK_ASSIGNMENT,
    STOCK_INCONSISTENCY,
    STOCK_JUSTIFICATION,
    STOCK_LINKS_PART,
    STOCK_MOVEMENTS_PART,
    STOCK_STATUS_CHANGE,
)

RUN_ENV = "FATURAMENTO_RUN_DIR"
COMPARE_ENV = "FATURAMENTO_COMPARE_RUN_DIR"
# Relative to the notebook's working directory: ./runs when started from the
# repository root (where `faturamento-batch demo` writes), ../runs from notebooks/.
SEARCH_ROOTS = (Path("runs"), Path("..") / "runs")

# ChangeSet parts in the order of `diff.ChangeSet`, with the schema an absent part reads as.
PART_SCHEMAS: dict[str, pl.Schema] = {
    "inserts": LINE_VALUES,
    "status_changes": STATUS_CHANGE,
    "drift": pl.Schema(
        {
            **{k: LINE_VALUES[k] for k in KEY},
            "drift_fields": pl.List(pl.String),
            **{c: LINE_VALUES[c] for c in DRIFT_COLUMNS},
            **{f"old_{c}": LINE_VALUES[c] for c in DRIFT_COLUMNS},
        }
    ),
    "cancellations": NF_LIST,
    "reactivations": NF_LIST,
    "new_products": NEW_PRODUCT,
    "consolidation": CONSOLIDATION,
    "orphans": pl.Schema({"numero_nf": pl.String, "cod_produto": pl.String, "status_nf": pl.String}),
    "rejected": REJECTED,
}
CHANGESET_PARTS = tuple(PART_SCHEMAS)
# Written after the load, only when NFs were cancelled: rows each cascade UPDATE touched.
CASCADE_SCHEMA = pl.Schema({"tabela": pl.String, "numero_nf": pl.String, "linhas": pl.Int64})
PART_SCHEMAS["cascade"] = CASCADE_SCHEMA
# The stock stage's parts (DESIGN §9; absent when the run used `--no-stock`).
STOCK_PART_SCHEMAS: dict[str, pl.Schema] = {
    "stock_movements": STOCK_MOVEMENTS_PART,
    "stock_links": STOCK_LINKS_PART,
    "inconsistencies": STOCK_INCONSISTENCY,
    "justifications": STOCK_JUSTIFICATION,
    "stock_status_changes": STOCK_STATUS_CHANGE,
    "stock_assignments": STOCK_ASSIGNMENT,
}
STOCK_PARTS = tuple(STOCK_PART_SCHEMAS)
PART_SCHEMAS.update(STOCK_PART_SCHEMAS)

# Cascade table → the column name used here.
CASCADE_COLUMNS = {
    "movimentacao_estoque": "stock_movements",
    "embarque_itens": "shipment_items",
    "separacao": "separations",
    "inconsistencia_faturamento": "inconsistencies",  # closed (NF_CANCELADA); with the stock module
}
# Numeric drift columns → the delta column name used here.
DELTA_COLUMNS = {
    "qtd_produto_faturado": "delta_qtd",
    "preco_produto_faturado": "delta_preco",
    "valor_produto_faturado": "delta_valor",
    "peso_total": "delta_peso",
}


# -- finding and loading runs -------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One run directory: its manifest, and its parts read on demand (and kept)."""

    path: Path
    manifest: dict
    _parts: dict[str, pl.DataFrame] = field(default_factory=dict, repr=False, compare=False)

    @property
    def run_id(self) -> str:
        return self.manifest.get("run_id", self.path.name)

    @property
    def counts(self) -> dict:
        return self.manifest.get("counts") or {}

    def part(self, name: str) -> pl.DataFrame:
        """The part's frame; an empty frame of its schema when the run did not write it."""
        if name not in self._parts:
            file = self.path / f"{name}.parquet"
            self._parts[name] = pl.read_parquet(file) if file.is_file() else pl.DataFrame(schema=PART_SCHEMAS[name])
        return self._parts[name]


def load_run(run_dir: Path | str) -> Run:
    """`run_dir` (holding manifest.json) → `Run`. Raises FileNotFoundError without a manifest."""
    path = Path(run_dir)
    if not (path / artifacts.MANIFEST).is_file():
        raise FileNotFoundError(f"`{path}` is not a run directory (no {artifacts.MANIFEST})")
    return Run(path.resolve(), artifacts.read_manifest(path))


def run_dirs(root: Path | str) -> list[Path]:
    """Run directories under `root`, oldest first.

    Ordered by the manifest's `started_at`, not by name: two runs in the same
    second share the id's timestamp and differ only by a random suffix.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for d in root.iterdir():
        try:
            started = str(artifacts.read_manifest(d).get("started_at") or "")
        except (OSError, ValueError):  # not a run, or a manifest being written
            continue
        found.append((started, d.name, d))
    return [d for _, _, d in sorted(found)]


def _as_run_dir(path: Path) -> Path:
    """A run directory as given, or the latest run inside a folder of runs."""
    if (path / artifacts.MANIFEST).is_file():
        return path
    runs = run_dirs(path)
    if not runs:
        raise FileNotFoundError(f"`{path}` is neither a run directory nor a folder holding runs")
    return runs[-1]


def resolve_run_dir(
    run_dir: Path | str | None = None, *, env: Mapping[str, str] | None = None, search: tuple[Path, ...] = SEARCH_ROOTS
) -> Path:
    """The run to analyse: `run_dir` if given, else $FATURAMENTO_RUN_DIR, else the latest under ./runs or ../runs.

    `run_dir` (or the variable) may also name a folder of runs: its latest run is taken.
    """
    env = os.environ if env is None else env
    chosen = run_dir or env.get(RUN_ENV)
    if chosen:
        return _as_run_dir(Path(chosen))
    for root in search:
        runs = run_dirs(root)
        if runs:
            return runs[-1]
    looked = ", ".join(str(r.resolve()) for r in search)
    raise FileNotFoundError(
        f"no run found (looked in {looked}): run `faturamento-batch demo` or a sync first, "
        f"or set RUN_DIR in the notebook or ${RUN_ENV}"
    )


def resolve_compare_dir(
    compare: Path | str | None, run_dir: Path, *, env: Mapping[str, str] | None = None
) -> Path | None:
    """The run to compare with: `compare`, else $FATURAMENTO_COMPARE_RUN_DIR, else the run just before `run_dir`.

    None when there is no earlier run in `run_dir`'s folder.
    """
    env = os.environ if env is None else env
    chosen = compare or env.get(COMPARE_ENV)
    if chosen:
        return _as_run_dir(Path(chosen))
    siblings = [d.resolve() for d in run_dirs(Path(run_dir).resolve().parent)]
    here = Path(run_dir).resolve()
    if here not in siblings or siblings.index(here) == 0:
        return None
    return siblings[siblings.index(here) - 1]
