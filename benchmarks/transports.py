"""Extraction speed per Odoo transport, against reading the same payload from disk.

`python -m benchmarks.transports [--lines 100000] [--repeat 3]`: one replay server in
its own process; for each transport a full extraction (`OdooSource.extract(None)`,
keyset pages of 20,000 lines, related models in parallel, no cache) — lines per
second and Odoo calls — and, as the floor, the same lines parsed from the dataset
file on disk (`frame_from_json`), plus a quiet incremental run's calls.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime, timedelta
from pathlib import Path

from faturamento_batch.generator import generate_dataset
from faturamento_batch.odoo.extract import OdooSource
from faturamento_batch.odoo.frames import frame_from_json
from faturamento_batch.odoo.source import max_write_date
from faturamento_batch.odoo.transport import Credentials, make_transport

from .harness import Replay


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.transports")
    p.add_argument("--lines", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--work-dir", type=Path, default=Path(".bench"))
    args = p.parse_args(argv)
    dataset = args.work_dir / "data" / f"transports-{args.lines}"
    if not (dataset / "meta.json").exists():
        generate_dataset(dataset, args.lines, seed=0)
    payload = (dataset / "account.move.line.json").read_bytes()
    disk = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        frame = frame_from_json("account.move.line", payload)
        disk.append(time.perf_counter() - t)
    rows = [f"| disk (frame_from_json of the lines file, {len(payload) / 1e6:.0f} MB) | {frame.height:,} | "
            f"{statistics.median(disk):.2f} | {frame.height / statistics.median(disk):,.0f} | – |"]  # fmt: skip
    (args.work_dir / "logs").mkdir(parents=True, exist_ok=True)
    replay = Replay(dataset, args.work_dir / "logs" / "transports-replay.log")
    try:
        meta = replay.meta
        for name in ("jsonrpc", "xmlrpc", "json2"):
            creds = Credentials(replay.url, meta["db"], meta["login"], meta["password"], meta["api_key"] if name == "json2" else None)
            times, lines, calls, mbytes = [], 0, 0, 0.0
            for _ in range(args.repeat):
                source = OdooSource(make_transport(name, creds), page_size=20_000)
                t = time.perf_counter()
                batch = source.extract(None)
                times.append(time.perf_counter() - t)
                lines, calls, mbytes = batch.frames["account.move.line"].height, batch.stats.total_calls, batch.stats.bytes_received / 1e6
            med = statistics.median(times)
            rows.append(f"| {name} (full extraction, {calls} calls, {mbytes:.0f} MB received) | {lines:,} | {med:.2f} | {lines / med:,.0f} | {calls} |")
        creds = Credentials(replay.url, meta["db"], meta["login"], meta["password"])
        source = OdooSource(make_transport("jsonrpc", creds), page_size=20_000, cache_dir=args.work_dir / "tmp" / "transport-cache")
        first = source.extract(None)
        cursor = max_write_date(first.frames)
        quiet = source.extract(cursor - timedelta(minutes=10))
        rows.append(f"| jsonrpc quiet incremental (cursor − 10 min, warm cache) | {quiet.frames['account.move.line'].height:,} | "
                    f"{quiet.stats.seconds:.2f} | – | {quiet.stats.total_calls} ({', '.join(f'{k} {v}' for k, v in quiet.stats.calls.items())}) |")  # fmt: skip
    finally:
        replay.close()
    print(f"# Extraction by transport — {args.lines:,}-line dataset, median of {args.repeat}, {datetime.now():%Y-%m-%d}\n")
    print("| path | lines | seconds | lines/s | Odoo calls |\n|---|--:|--:|--:|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
