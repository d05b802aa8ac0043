"""One measurement, in its own process: ``python -m benchmarks.worker SPEC_JSON``.

The spec names the contender, the mode (``db``: Odoo data already in memory →
committed; ``e2e``: extraction over JSON-RPC included), the kind of run
(``full``/``incremental``), the database URL and the prepared inputs.

Protocol: the contender's `prepare(spec)` loads its input (not timed); then the
garbage is collected, freed heap returned to the OS and the kernel's peak-RSS
mark reset (``/proc/self/clear_refs``, Linux ≥ 4.0), so ``ru_maxrss`` afterwards
is the peak of the timed section — input already resident included, the
loading's transient garbage not; then `run(state, spec)` is timed with
`time.perf_counter`.

``ru_maxrss`` also carries the peak of the memory image the process was exec'd
from; the harness therefore starts workers through ``/bin/sh`` (which forks
before exec), so a worker inherits the shell's few hundred KiB, not the
harness's peak — the result records ``ru_maxrss`` at start to show it. The result (seconds, peak RSS, SQL statements, Odoo calls,
details) is written as JSON to ``spec["result"]``.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import json
import logging
import resource
import sys
import time
from pathlib import Path

CONTENDERS = {"ours": "benchmarks.ours", "ours_nostock": "benchmarks.ours", "old": "benchmarks.old_job", "dlt": "benchmarks.dlt_merge", "floor": "benchmarks.floor",
               "sling": "benchmarks.sling_load", "extract": "benchmarks.extract_only"}


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def vm_hwm_mb() -> float | None:
    """The kernel's peak-RSS mark of this process's memory (what clear_refs resets)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure(spec: dict, rss_at_start: float) -> dict:
    module = importlib.import_module(CONTENDERS[spec["contender"]])
    state = module.prepare(spec)
    rss_before = peak_rss_mb()
    reset = reset_peak_rss()
    started = time.perf_counter()
    stats = module.run(state, spec)
    seconds = time.perf_counter() - started
    own = peak_rss_mb()
    child = stats.pop("child_peak_rss_mb", 0.0)  # a contender that runs a binary (sling)
    return {
        "seconds": round(seconds, 4),
        "peak_rss_mb": max(own, child),
        "worker_peak_rss_mb": own,
        "vm_hwm_mb": vm_hwm_mb(),
        "peak_rss_reset": reset,
        "ru_maxrss_at_start_mb": rss_at_start,
        "ru_maxrss_after_input_mb": rss_before,
        **stats,
    }


def main(argv: list[str]) -> int:
    rss_at_start = peak_rss_mb()  # must be small: see `harness.worker_command`
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    spec = json.loads(argv[0])
    if spec.get("action") == "dlt_seed":
        from .dlt_merge import seed

        print(json.dumps(seed(spec)))
        return 0
    result = measure(spec, rss_at_start)
    Path(spec["result"]).write_text(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
