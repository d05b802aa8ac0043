"""Peak RSS of a full `sync --source DATASET` run at two sizes: does a dataset run stay bounded?

``python -m benchmarks.dataset_rss [--lines 100000,300000] [--no-stock] [--work-dir .bench]``

Issue 20's target: from 100k to 300k lines, the peak RSS of a full run from a
dataset directory grows at most 1.3× (it grew 1.92× when the source parsed
whole JSON files). Each run is the real command, in its own process, into a
fresh database on the embedded server; the peak is the kernel's `ru_maxrss` of
that process (taken through a shell, see `harness.worker_command`), not a
sample. A measurement, not a unit test: the figure depends on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from faturamento_batch.db.embedded import embedded_url

from . import pg

REPO = Path(__file__).resolve().parents[1]
TARGET = 1.3


def _dataset(work: Path, lines: int, seed: int) -> Path:
    """A generated dataset of about `lines` invoice lines (the sizes of the other scenarios)."""
    from .prepare import records_for

    path = work / "data" / f"dataset-{lines}-s{seed}"
    if not (path / "meta.json").exists():
        _cli("generate", str(path), "--lines", str(records_for(lines)), "--seed", str(seed))
    return path


def _cli(*args: str) -> tuple[float, float]:
    """Run `python -m faturamento_batch ARGS` through a shell; (seconds, peak RSS MB of that process)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    cmd = ["/bin/sh", "-c", '"$0" "$@"; exit $?', sys.executable, "-m", "faturamento_batch", *args]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"`faturamento_batch {' '.join(args)}` exited {proc.returncode}: {stderr[-1500:]}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def measure(work: Path, lines: int, seed: int, stock: bool, chunk_size: int | None) -> dict:
    dataset = _dataset(work, lines, seed)
    admin = embedded_url(work / "pgdata")
    name = f"bench_rss_{lines}"
    pg.drop(admin, name)
    url = pg.create(admin, name)
    try:
        _cli("init-db", "--database-url", url)
        args = ["sync", "--full", "--source", str(dataset), "--database-url", url,
                "--artifacts-dir", str(work / "tmp" / name / "runs"), "--state-dir", str(work / "tmp" / name / "state")]  # fmt: skip
        args += [] if stock else ["--no-stock"]
        args += ["--chunk-size", str(chunk_size)] if chunk_size is not None else []
        seconds, peak = _cli(*args)
        rows = pg.query_one(url, "SELECT count(*) FROM faturamento_produto")
    finally:
        pg.drop(admin, name)
    return {"lines": lines, "stock": stock, "seconds": round(seconds, 2), "peak_rss_mb": round(peak, 1), "rows": int(rows),
            "dataset_mb": round(sum(f.stat().st_size for f in dataset.iterdir()) / 2**20, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.dataset_rss", description=__doc__.splitlines()[0])
    p.add_argument("--lines", default="100000,300000", help="two dataset sizes, comma-separated")
    p.add_argument("--no-stock", action="store_true")
    p.add_argument("--chunk-size", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work-dir", type=Path, default=REPO / ".bench")
    args = p.parse_args(argv)
    sizes = [int(x) for x in args.lines.split(",")]
    results = [measure(args.work_dir.resolve(), n, args.seed, not args.no_stock, args.chunk_size) for n in sizes]
    ratio = results[-1]["peak_rss_mb"] / results[0]["peak_rss_mb"]
    print(json.dumps({"results": results, "ratio": round(ratio, 2), "target": TARGET, "holds": ratio <= TARGET}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
