"""Issue 20's targets, read off one benchmark report, each with what was measured and whether it holds.

Every target is a ratio or a bound within one report (contenders of a scenario ran
back to back); a target whose scenario was not run says so instead of guessing.
Also here: the real legacy job's figure, which this runner cannot produce (it needs
the old job's own code and an XML-RPC Odoo), quoted from issue 20 and labelled so.
"""

from __future__ import annotations

# The old job's own code, unmodified, against the 100k-line generated dataset served by the
# replay server over XML-RPC (measured once for issue 20; not re-run by `python -m benchmarks`).
LEGACY = {
    "dataset_lines": 100_000, "lines_read": 19_886, "search_read_limit": 20_000,
    "seconds": 201, "reread_seconds": 96, "peak_rss_mb": 184, "ms_per_line": 10,
}  # fmt: skip


def _row(summary: list[dict], contender: str, mode: str = "db") -> dict | None:
    return next((r for r in summary if r["contender"] == contender and r["mode"] == mode and r.get("runs")), None)


def _scenario(report: dict, name: str) -> dict | None:
    return next((s for s in report["scenarios"] if s["scenario"] == name), None)


def _pair(report: dict, name: str, a: str, b: str, key: str, mode: str = "db"):
    sc = _scenario(report, name)
    if sc is None:
        return None
    ra, rb = _row(sc["summary"], a, mode), _row(sc["summary"], b, mode)
    return (ra[key], rb[key]) if ra and rb else None


def _fmt(v: float) -> str:
    return f"{v:,.2f}" if v < 100 else f"{v:,.0f}"


def _check(label: str, measured: tuple[str, bool] | None) -> str:
    if measured is None:
        return f"| {label} | not measured in this report | — |"
    text, ok = measured
    return f"| {label} | {text} | **{'yes' if ok else 'no'}** |"


def _ratio(pair, limit: float, unit: str = "s"):
    if pair is None:
        return None
    a, b = pair
    r = a / b if b else float("inf")
    return f"{_fmt(a)} / {_fmt(b)} {unit} = **{r:.2f}×** (≤ {limit}×)", r <= limit


def _bound(value, limit: float, unit: str = "MB"):
    if value is None:
        return None
    return f"**{_fmt(value)} {unit}** (≤ {limit:,.0f} {unit})", value <= limit


def targets_table(report: dict) -> str:
    rows = ["| target (issue 20) | measured | holds? |", "|---|---|---|"]
    rows.append(_check("full 1M, stage on ≤ 1.5× the same run with `--no-stock` (DB-side seconds)",
                       _ratio(_pair(report, "full 1M", "ours", "ours_nostock", "median"), 1.5)))  # fmt: skip
    for mode, what in (("db", "DB-side"), ("e2e", "end to end")):
        one = _row((_scenario(report, "full 1M") or {"summary": []})["summary"], "ours", mode)
        rows.append(_check(f"full 1M, stage on, peak RSS ≤ 800 MB {what}", _bound(one and one["peak_rss_mb"], 800)))
    rss = [(_row(s["summary"], "ours") or {}).get("peak_rss_mb") if s else None
           for s in (_scenario(report, "full 3M"), _scenario(report, "full 1M"))]  # fmt: skip
    rows.append(_check("full 3M peak RSS within 1.15× of 1M (stage on, DB-side)",
                       _ratio(tuple(rss), 1.15, "MB") if None not in rss else None))  # fmt: skip
    rows.append(_check("full run from a dataset directory, 100k → 300k peak RSS within 1.3× (stage on)",
                       _dataset_ratio(report, stock=True)))  # fmt: skip
    rows.append(_check("the same with `--no-stock`", _dataset_ratio(report, stock=False)))
    rows.append(_check("full 100k `--no-stock` ≤ 2× the bare COPY of the same lines (the floor, DB-side)",
                       _ratio(_pair(report, "full 100k", "ours_nostock", "floor", "median"), 2.0)))  # fmt: skip
    inc = _incremental(report, "5M")
    rows.append(_check("incremental 20k on 5M, DB-side ≤ 3× the targeted floor (stage on)",
                       _ratio(_pair(report, inc, "ours", "floor", "median"), 3.0) if inc else None))  # fmt: skip
    one = _row(_scenario(report, inc)["summary"], "ours") if inc else None
    rows.append(_check("incremental 20k on 5M, peak RSS ≤ 200 MB (stage on, DB-side)", _bound(one and one["peak_rss_mb"], 200)))
    rows.append(_check("statements constant per run at every size, ≤ 35 with every kind of write (stage on)", _statements(report)))
    return "\n".join(rows)


def _incremental(report: dict, table: str) -> str | None:
    return next((s["scenario"] for s in report["scenarios"] if s["kind"] == "incremental" and f"on {table}" in s["scenario"]), None)


def _dataset_ratio(report: dict, stock: bool):
    runs = [r for r in report.get("dataset_runs") or [] if r["stock"] == stock]
    if len(runs) < 2:
        return None
    small, big = runs[0], runs[-1]
    r = big["peak_rss_mb"] / small["peak_rss_mb"]
    text = (f"{big['lines']:,}: {_fmt(big['peak_rss_mb'])} MB / {small['lines']:,}: {_fmt(small['peak_rss_mb'])} MB "
            f"= **{r:.2f}×** (≤ 1.3×)")  # fmt: skip
    return text, r <= 1.3


def _statements(report: dict):
    counts = {}
    for sc in report["scenarios"]:
        row = _row(sc["summary"], "ours")
        if row:
            counts.setdefault(sc["kind"], {})[sc["scenario"]] = row["statements"]
    if not counts:
        return None
    flat = [n for kind in counts.values() for n in kind.values()]
    constant = all(len(set(kind.values())) == 1 for kind in counts.values())
    text = "; ".join(f"{k}: " + ", ".join(f"{s.split(' ', 1)[-1]} {n}" for s, n in v.items()) for k, v in counts.items())
    return f"{text} (max **{max(flat)}**, {'constant' if constant else 'not constant'} per kind of run)", constant and max(flat) <= 35


def dataset_table(report: dict) -> str:
    runs = report.get("dataset_runs") or []
    if not runs:
        return ""
    rows = ["| invoice lines | dataset on disk | stock stage | seconds | peak RSS MB | rows written |",
            "|--:|--:|---|--:|--:|--:|"]
    for r in runs:
        rows.append(f"| {r['lines']:,} | {r['dataset_mb']:,.0f} MB | {'on' if r['stock'] else 'off'} | {_fmt(r['seconds'])} "
                    f"| {r['peak_rss_mb']:,.0f} | {r['rows']:,} |")  # fmt: skip
    return "\n".join(rows)


def legacy_table(report: dict) -> str:
    """The real legacy job's figure beside the re-implemented old job's, both at 100k."""
    L = LEGACY
    rows = ["| contender | lines read | seconds | re-read unchanged | peak RSS MB | per line |",
            "|---|--:|--:|--:|--:|--:|",
            f"| **the real old job** (its own code, unmodified; XML-RPC; measured once for issue 20, not by this runner) "
            f"| {L['lines_read']:,} of {L['dataset_lines']:,} (its `search_read` limit of {L['search_read_limit']:,} "
            f"silently cut the rest) | {L['seconds']} | {L['reread_seconds']} s | {L['peak_rss_mb']} | ~{L['ms_per_line']} ms |"]  # fmt: skip
    sc = _scenario(report, "full 100k")
    for mode, what in (("e2e", "end to end, JSON-RPC"), ("db", "DB-side")):
        old = _row(sc["summary"], "old", mode) if sc else None
        if old:
            lines = sc["info"]["lines"]
            rows.append(f"| old job re-implemented (`benchmarks/old_job.py`, {what}) | {old['state']['lines']:,} written "
                        f"| {_fmt(old['median'])} | — | {old['peak_rss_mb']:,.0f} | {old['median'] / lines * 1000:.2f} ms |")  # fmt: skip
        ours = _row(sc["summary"], "ours", mode) if sc else None
        if ours:
            lines = sc["info"]["lines"]
            rows.append(f"| faturamento_batch, stage on ({what}) | {ours['state']['lines']:,} written | {_fmt(ours['median'])} "
                        f"| — | {ours['peak_rss_mb']:,.0f} | {ours['median'] / lines * 1000:.3f} ms |")  # fmt: skip
    return "\n".join(rows)
