"""The notebook's downstream-events section (DESIGN §11): a run's events by kind, events per run,
and each consumer's lag, from the run artifacts alone (no database connection).

The `events` part holds the run's rows (a dry run's too: computed, not written); every
manifest keeps the counts per kind and the consumers' backlog its events statement read.
"""

from __future__ import annotations

import polars as pl

from ..events import KINDS
from .loading import Run, load_run, run_dirs

_LAG = pl.Schema({"run_id": pl.String, "consumer": pl.String, "pending": pl.Int64, "oldest_unacked_hours": pl.Float64})


def events_by_kind(run: Run) -> pl.DataFrame:
    """kind, NFs, valor_total (R$ in the payloads) of this run's events; committed or not (dry run)."""
    file = run.path / "events.parquet"
    if not file.is_file():
        return pl.DataFrame(schema={"kind": pl.String, "nfs": pl.UInt32, "valor_total": pl.Float64})
    part = pl.read_parquet(file)
    valor = pl.col("payload").str.json_path_match("$.valor_total").cast(pl.Float64, strict=False)
    out = part.group_by("kind").agg(pl.col("numero_nf").n_unique().alias("nfs"), valor.sum().round(2).alias("valor_total"))
    order = {k: i for i, k in enumerate(KINDS)}
    return out.sort(pl.col("kind").replace_strict(order, default=len(KINDS), return_dtype=pl.Int64))


def _runs(run: Run) -> list[Run]:
    """This run and the others in its folder, oldest first."""
    found = [load_run(d) for d in run_dirs(run.path.parent)]
    return found if any(r.path == run.path for r in found) else [*found, run]


def events_per_run(run: Run) -> pl.DataFrame:
    """One row per run of the folder: run_id, status, events per kind (0 when none), total written."""
    rows = []
    for r in _runs(run):
        section = r.manifest.get("events") or {}
        kinds = section.get("kinds") or {}
        rows.append({"run_id": r.run_id, "status": r.manifest.get("status"),
                     **{k: int(kinds.get(k, 0)) for k in KINDS}, "written": int(section.get("written", 0))})  # fmt: skip
    schema = {"run_id": pl.String, "status": pl.String, **{k: pl.Int64 for k in KINDS}, "written": pl.Int64}
    frame = pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)
    unused = [k for k in KINDS if frame.get_column(k).sum() == 0]
    return frame.drop(unused)


def consumer_lag(run: Run) -> pl.DataFrame:
    """Per run and consumer: the events it had not acked and the age of its oldest one (hours),
    as that run's events statement found them — a growing age is a stuck consumer."""
    rows = [
        {"run_id": r.run_id, "consumer": name, "pending": int(b.get("pending") or 0),
         "oldest_unacked_hours": round((b.get("oldest_unacked_seconds") or 0.0) / 3600, 2)}
        for r in _runs(run) for name, b in sorted(((r.manifest.get("events") or {}).get("consumers") or {}).items())
    ]  # fmt: skip
    return pl.DataFrame(rows, schema=_LAG, orient="row") if rows else pl.DataFrame(schema=_LAG)
