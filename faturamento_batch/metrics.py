"""The run's metrics for Prometheus: a text file for node_exporter's textfile collector.

In:  a run manifest (the dict `pipeline.run_sync` builds, also for a failed run)
     and the metrics file the previous run left, if any.
Out: the Prometheus text exposition format, written atomically (temp file in the
     same directory, then rename), so the collector never reads half a file.

Every sample carries the `job` label (the sync job's name, `--job`). Values
describe the last run, so every metric is a gauge. What the previous file held
carries over where one run alone cannot know it: the last success (kept when
this run failed) and the number of failed runs in a row.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path

PREFIX = "faturamento_batch"
STATUSES = ("success", "dry_run", "failed", "lock_held")

# name → help text; the order here is the order in the file.
HELP = {
    "last_run_timestamp_seconds": "When the last run ended (Unix time).",
    "last_success_timestamp_seconds": "When the last successful (committed) run ended (Unix time); kept across failed runs.",
    "last_run_status": "1 for the last run's status, 0 for the others.",
    "last_run_exit_code": "The last run's exit code: 0 done, 1 fix something, 75 retry later, 3 lock held.",
    "consecutive_failures": "Failed runs since the last success (0 after a success).",
    "run_duration_seconds": "Seconds the last run spent in each phase (phase=\"total\": the whole run).",
    "rows": "Rows of each part the last run computed (ChangeSet parts, read/merged counts, stock parts).",
    "rows_written": "Rows the last run's statements affected, by table and action.",
    "rows_left_alone": "Rows the last run planned and left alone because a re-check refused them (the application changed them), by table.",
    "odoo_calls": "Odoo RPC calls the last run made.",
    "sql_statements": "SQL statements the last run sent to PostgreSQL.",
    "peak_memory_bytes": "Peak resident memory of the last run's process.",
    "write_attempts": "Write transactions the last run needed (more than 1: it retried after a lock timeout or deadlock).",
    "quarantined_nfs": "NFs in quarantine (PostgreSQL refused them; later runs retry them); kept across failed runs.",
    "quarantine_oldest_age_seconds": "Age of the oldest NF still in quarantine (0: none); kept across failed runs.",
    "events_written": "Downstream events the last run committed, by kind (0 for a dry or failed run).",
    "event_consumer_pending": "Events each registered consumer had not acked yet, as the last run found them.",
    "event_consumer_oldest_unacked_seconds": "Age of each consumer's oldest unacked event, as the last run found it (0: none).",
}


def _escape(value: object) -> str:
    return str(value).replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")


def _number(value: float) -> str:
    """Integers without a fraction, others in Python's shortest round-trip form (0.9288, not 0.92879999…)."""
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def _epoch(value) -> float | None:
    """A manifest timestamp (naive UTC datetime or its ISO text) as Unix seconds."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return round(value.timestamp(), 3)


def run_status(manifest: dict) -> str:
    """The status label of a run: a run that found the lock held did not fail, it stood aside."""
    if manifest.get("error_type") == "LockHeld":
        return "lock_held"
    status = manifest.get("status", "failed")
    return status if status in STATUSES else "failed"


def read_previous(path: Path, job: str) -> dict[str, float]:
    """The job's unlabelled-beyond-`job` samples in an earlier metrics file (empty when none)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    pattern = re.compile(rf'^{PREFIX}_(\w+)\{{job="{re.escape(_escape(job))}"\}} (\S+)$', re.M)
    found = {}
    for name, value in pattern.findall(text):
        try:
            found[name] = float(value)
        except ValueError:
            pass
    return found


def _samples(manifest: dict, previous: dict[str, float]) -> dict[str, list[tuple[dict, float]]]:
    status = run_status(manifest)
    finished = _epoch(manifest.get("finished_at")) or _epoch(datetime.now(timezone.utc))
    last_success = finished if status == "success" else previous.get("last_success_timestamp_seconds")
    failures = previous.get("consecutive_failures", 0.0)
    failures = 0.0 if status == "success" else failures + 1 if status == "failed" else failures
    out: dict[str, list[tuple[dict, float]]] = {name: [] for name in HELP}
    out["last_run_timestamp_seconds"].append(({}, finished))
    if last_success is not None:
        out["last_success_timestamp_seconds"].append(({}, last_success))
    out["last_run_status"] = [({"status": s}, 1.0 if s == status else 0.0) for s in STATUSES]
    exit_code = manifest.get("exit_code", 0 if status in ("success", "dry_run") else 3 if status == "lock_held" else 1)
    out["last_run_exit_code"].append(({}, float(exit_code)))
    out["consecutive_failures"].append(({}, failures))
    out["run_duration_seconds"] = [({"phase": p}, float(s)) for p, s in manifest.get("timings", {}).items()]
    rows = [({"part": p}, float(n)) for p, n in manifest.get("counts", {}).items() if isinstance(n, (int, float))]
    stock = manifest.get("stock") if isinstance(manifest.get("stock"), dict) else {}
    # The stock stage's NF counts (nfs_processed, nfs_with_lot, …) and its parts (planned or written).
    stock_rows = {k: v for k, v in stock.items() if k.startswith("nfs_")} | (stock.get("counts") or {})
    rows += [({"part": f"stock_{p}"}, float(n)) for p, n in stock_rows.items() if isinstance(n, (int, float))]
    out["rows"] = rows
    for key, n in (manifest.get("written") or {}).items():
        table, _, action = key.rpartition(".")
        out["rows_written"].append(({"table": table or key, "action": action}, float(n)))
    for table, n in (stock.get("left_alone") or {}).items():
        out["rows_left_alone"].append(({"table": table}, float(n)))
    if "odoo" in manifest:
        out["odoo_calls"].append(({}, float(manifest["odoo"].get("total_calls", 0))))
    if "sql_statements" in manifest:
        out["sql_statements"].append(({}, float(manifest["sql_statements"].get("total", 0))))
    if "peak_memory_mb" in manifest:
        out["peak_memory_bytes"].append(({}, float(round(manifest["peak_memory_mb"] * 1024 * 1024))))
    if "write_attempts" in manifest:
        out["write_attempts"].append(({}, float(manifest["write_attempts"])))
    # A failed run learned nothing about the quarantine: the last known values stand.
    q = manifest.get("quarantine") if isinstance(manifest.get("quarantine"), dict) else {}
    for name, key in (("quarantined_nfs", "open"), ("quarantine_oldest_age_seconds", "oldest_age_seconds")):
        value = q.get(key, previous.get(name))
        if value is not None:
            out[name].append(({}, float(value)))
    _event_samples(out, manifest.get("events") if isinstance(manifest.get("events"), dict) else {}, status)
    return out


def _event_samples(out: dict, events: dict, status: str) -> None:
    """Events per kind (committed only), and each consumer's backlog the run's events statement read."""
    written = status == "success"
    out["events_written"] = [({"kind": k}, float(n) if written else 0.0) for k, n in (events.get("kinds") or {}).items()]
    for name, backlog in sorted((events.get("consumers") or {}).items()):
        out["event_consumer_pending"].append(({"consumer": name}, float(backlog.get("pending") or 0)))
        age = backlog.get("oldest_unacked_seconds")
        out["event_consumer_oldest_unacked_seconds"].append(({"consumer": name}, float(age or 0.0)))


def render(manifest: dict, previous: dict[str, float] | None = None) -> str:
    """The Prometheus text format for `manifest`; `previous` is `read_previous` of the old file."""
    job = manifest.get("job", "")
    lines = []
    for name, samples in _samples(manifest, previous or {}).items():
        metric = f"{PREFIX}_{name}"
        lines += [f"# HELP {metric} {HELP[name]}", f"# TYPE {metric} gauge"]
        for labels, value in samples:
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in {"job": job, **labels}.items())
            lines.append(f"{metric}{{{text}}} {_number(value)}")
    return "\n".join(lines) + "\n"


def write_metrics_file(path: Path | str, manifest: dict) -> Path:
    """Render `manifest` into `path` atomically, carrying over what the old file knew.

    The temp file sits in the same directory (a rename is atomic only within one
    file system) and does not end in `.prom`, so the collector skips it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render(manifest, read_previous(path, manifest.get("job", "")))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # node_exporter usually runs as another user
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path
