"""Run artifacts: `runs/<run-id>/` with one Parquet file per ChangeSet part and `manifest.json`.

The manifest is the run's summary for people and for the notebook; it never
holds a secret (the pipeline scrubs error messages before they get here).
"""

from __future__ import annotations

import json
import os
from datetime import date, datetime
from pathlib import Path

import polars as pl

MANIFEST = "manifest.json"


def _default(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def write_parts(run_dir: Path, parts: dict[str, pl.DataFrame | pl.LazyFrame]) -> dict[str, str]:
    """One Parquet file per part (written even when empty, so readers find every part); a lazy
    part is streamed to its file, never collected whole."""
    run_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, frame in parts.items():
        file = run_dir / f"{name}.parquet"
        if isinstance(frame, pl.LazyFrame):
            frame.sink_parquet(file)
        else:
            frame.write_parquet(file)
        files[name] = file.name
    return files


def write_manifest(run_dir: Path, manifest: dict) -> Path:
    """Write atomically (temp file + rename): a reader never sees half a manifest."""
    run_dir.mkdir(parents=True, exist_ok=True)
    target = run_dir / MANIFEST
    tmp = run_dir / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, default=_default, ensure_ascii=False) + "\n")
    os.replace(tmp, target)
    return target


def read_manifest(run_dir: Path | str) -> dict:
    return json.loads((Path(run_dir) / MANIFEST).read_text())


def read_part(run_dir: Path | str, part: str) -> pl.DataFrame:
    return pl.read_parquet(Path(run_dir) / f"{part}.parquet")
