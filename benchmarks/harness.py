"""The benchmark runner: ``python -m benchmarks [--sizes small|full] [--repeat N] [--only full|incremental] [--out FILE]``.

For every scenario it prepares the inputs once (`prepare`), then runs each
contender × mode `repeat` times, interleaved (round r runs every contender once
before round r+1 starts, so they share the machine's state), each in its own
subprocess (`worker`) against a fresh database — a file clone of the scenario's
template — dropped right after. The replay server (``faturamento-batch
odoo-replay``) runs in its own process for the end-to-end measurements.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

from faturamento_batch.db.embedded import embedded_url

from . import pg
from .prepare import Prepared, prepare_full, prepare_incremental
from .report import machine_info, render

log = logging.getLogger("benchmarks")
REPO = Path(__file__).resolve().parents[1]

SIZES = {
    # full: invoice lines into empty tables; incremental: (lines already in the table, batch lines)
    "small": {"full": [20_000], "incremental": [(50_000, 5_000)], "repeat": 1},
    "full": {"full": [100_000, 1_000_000], "incremental": [(500_000, 20_000), (5_000_000, 20_000)], "repeat": 3},
    # the memory bound: a run three times the 1M one must peak at (about) the same RSS
    "3m": {"full": [3_000_000], "incremental": [], "repeat": 1},
    # issue 20: every scenario its targets need, in one report (BENCHMARKS.md): stage on/off at
    # 100k/1M/3M, incremental on 500k/5M, and a full run from a dataset directory at 100k and 300k
    "issue20": {"full": [100_000, 1_000_000, 3_000_000], "incremental": [(500_000, 20_000), (5_000_000, 20_000)],
                "dataset": (100_000, 300_000), "repeat": 1},
    # the harness itself, quickly: every kind of scenario at the smallest size the targets read
    "check": {"full": [100_000], "incremental": [(50_000, 5_000)], "dataset": (100_000, 300_000), "repeat": 1},
}
# Above these sizes (invoice lines of a full run) a contender is left out: the re-implemented old
# job needs ~11 min per 1M lines and mode, and its figure there says nothing new.
MAX_FULL_LINES = {"old": 1_000_000}
CONTENDERS = ("ours", "ours_nostock", "old", "dlt", "sling", "floor", "extract")
E2E_CONTENDERS = CONTENDERS  # dlt, sling and the floor get their rows from our extraction + transform end-to-end
DB_CONTENDERS = tuple(c for c in CONTENDERS if c != "extract")  # the extraction alone has no DB-side
RUN_PREFIX = "bench_run_"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--sizes", choices=tuple(SIZES), default="small")
    p.add_argument("--repeat", type=int, help="runs per figure (default: 1 for small, 3 for full)")
    p.add_argument("--only", choices=("full", "incremental", "dataset"), help="only one kind of scenario")
    p.add_argument("--out", type=Path, help="write the report (markdown) to this file, e.g. BENCHMARKS.md")
    p.add_argument("--work-dir", type=Path, default=REPO / ".bench",
                   help="datasets, the embedded server's data directory, logs and raw results (default .bench/)")  # fmt: skip
    p.add_argument("--contenders", default=",".join(CONTENDERS), help=f"subset of {','.join(CONTENDERS)}")
    p.add_argument("--modes", default="db,e2e", help="db (Odoo data in memory → committed), e2e (JSON-RPC included)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunk-size", type=int, help="faturamento_batch's full-run chunk size (default: its own default)")
    p.add_argument("--rebuild", action="store_true", help="prepare inputs and templates again")
    p.add_argument("--prepare-only", action="store_true", help="prepare inputs and templates, measure nothing")
    p.add_argument("--timeout", type=float, default=4 * 3600, help="seconds one measurement may take")
    args = p.parse_args(argv)
    args.repeat = args.repeat or SIZES[args.sizes]["repeat"]
    args.contenders = [c for c in CONTENDERS if c in args.contenders.split(",")]
    args.modes = [m for m in ("db", "e2e") if m in args.modes.split(",")]
    return args


# -- the replay server, in its own process --------------------------------------------------------


class Replay:
    def __init__(self, dataset: Path, log_file: Path):
        self.dataset = dataset
        self.meta = json.loads((dataset / "meta.json").read_text())
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        exe = Path(sys.executable).with_name("faturamento-batch")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from faturamento_batch.cli import main; main()"]
        self.log = open(log_file, "wb")
        self.proc = subprocess.Popen([*cmd, "odoo-replay", str(dataset), "--port", str(self.port)],
                                     stdout=self.log, stderr=subprocess.STDOUT)  # fmt: skip
        self._wait()

    def _wait(self, timeout: float = 1800) -> None:
        body = json.dumps({"jsonrpc": "2.0", "method": "call",
                           "params": {"service": "common", "method": "version", "args": []}}).encode()  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the replay server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                req = urllib.request.Request(self.url + "/jsonrpc", body, {"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=5) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(1)
        raise RuntimeError(f"the replay server did not answer within {timeout:.0f}s")

    def odoo(self) -> dict:
        return {"url": self.url, "db": self.meta["db"], "login": self.meta["login"], "password": self.meta["password"]}

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def worker_command(spec_json: str) -> list[str]:
    """The worker, started by a shell that forks it.

    A process's ru_maxrss includes the peak RSS of the image it was exec'd from: a worker
    spawned straight from this (large) process would report at least this process's peak.
    The shell runs the worker as a child (the `; exit` keeps it from exec'ing in place),
    so the worker inherits only the shell's peak.
    """
    return ["/bin/sh", "-c", '"$0" "$@"; exit $?', sys.executable, "-m", "benchmarks.worker", spec_json]


# -- one measurement ---------------------------------------------------------------------------


def check_state(url: str, contender: str) -> dict:
    """What the database holds after the run: the same numbers for every contender that did the job."""
    if contender == "extract":
        return {"lines": 0, "cancelled_lines": 0}
    rows, cancelled = pg.query(url, "SELECT count(*), count(*) FILTER (WHERE status_nf = 'Cancelado') FROM faturamento_produto")[0]
    out = {"lines": int(rows), "cancelled_lines": int(cancelled)}
    if contender in ("ours", "ours_nostock", "old"):
        out["consolidation_rows"], out["consolidation_inactive"] = map(int, pg.query(
            url, "SELECT count(*), count(*) FILTER (WHERE NOT ativo) FROM relatorio_faturamento_importado")[0])  # fmt: skip
        out["products"] = int(pg.query_one(url, "SELECT count(*) FROM cadastro_palletizacao"))
        out["stock_cancelled"] = int(pg.query_one(url, "SELECT count(*) FROM movimentacao_estoque WHERE status_nf = 'CANCELADO'"))
    return out


def measure(args, admin: str, prepared: Prepared, contender: str, mode: str, rep: int, replay: Replay | None) -> dict:
    name = f"{RUN_PREFIX}{contender}_{mode}_{rep}"
    template = prepared.dlt_template if (contender == "dlt" and prepared.kind == "incremental") else prepared.template
    pg.drop(admin, name)
    started = time.perf_counter()
    url = pg.create(admin, name, template=template)
    clone_seconds = time.perf_counter() - started
    tmp = args.work_dir / "tmp" / name
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    spec = {
        "contender": contender, "mode": mode, "kind": prepared.kind, "url": url, "tmp": str(tmp),
        "raw": str(prepared.raw), "lines": str(prepared.lines), "result": str(tmp / "result.json"),
        "odoo": replay.odoo() if replay else None, "chunk_size": args.chunk_size,
        "dlt_pipeline": str(prepared.dlt_pipeline) if (contender == "dlt" and prepared.kind == "incremental") else None,
    }  # fmt: skip
    log_file = args.work_dir / "logs" / f"{prepared.dir.name}-{contender}-{mode}-{rep}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    result: dict = {"contender": contender, "mode": mode, "rep": rep, "clone_seconds": round(clone_seconds, 2),
                    "load_before": round(os.getloadavg()[0], 2)}  # the machine is shared: say how busy it was
    try:
        with open(log_file, "wb") as out:
            # Own process group: on a timeout or an interrupt, the shell AND the worker are stopped.
            proc = subprocess.Popen(worker_command(json.dumps(spec)), cwd=REPO, env=env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
            try:
                proc.wait(timeout=args.timeout)
            except BaseException:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise
        result["load_after"] = round(os.getloadavg()[0], 2)
        if proc.returncode != 0:
            tail = log_file.read_text(errors="replace")[-1500:]
            result["error"] = f"exit {proc.returncode}: …{tail}"
        else:
            result.update(json.loads((tmp / "result.json").read_text()))
            result["state"] = check_state(url, contender)
    except subprocess.TimeoutExpired:
        result["error"] = f"timed out after {args.timeout:.0f}s"
    finally:
        pg.drop(admin, name)
        shutil.rmtree(tmp, ignore_errors=True)
    if "error" in result:
        log.error("  %s %s #%d FAILED: %s", contender, mode, rep, result["error"][-400:])
    else:
        log.info("  %-5s %-3s #%d %8.2fs  %7s stmts  %4s Odoo calls  %7.1f MB  %s", contender, mode, rep,
                 result["seconds"], result["statements"], result["odoo_calls"], result["peak_rss_mb"],
                 result["state"])  # fmt: skip
    return result


def run_scenario(args, admin: str, prepared: Prepared) -> dict:
    lines = prepared.info.get("target_lines", 0) if prepared.kind == "full" else 0
    contenders = [c for c in args.contenders if lines <= MAX_FULL_LINES.get(c, lines)]
    plan = [(c, "db") for c in contenders if c in DB_CONTENDERS and "db" in args.modes]
    plan += [(c, "e2e") for c in contenders if c in E2E_CONTENDERS and "e2e" in args.modes]
    replay = None
    if any(m == "e2e" for _, m in plan):
        replay = Replay(prepared.dataset, args.work_dir / "logs" / f"{prepared.dir.name}-replay.log")
    results = []
    try:
        for rep in range(args.repeat):
            log.info("%s: round %d/%d", prepared.name, rep + 1, args.repeat)
            for contender, mode in plan:
                results.append(measure(args, admin, prepared, contender, mode, rep, replay))
    finally:
        if replay is not None:
            replay.close()
    return {"scenario": prepared.name, "kind": prepared.kind, "info": prepared.info, "results": results,
            "summary": summarize(results)}  # fmt: skip


def summarize(results: list[dict]) -> list[dict]:
    rows = []
    keys = sorted({(r["mode"], r["contender"]) for r in results},
                  key=lambda k: (("db", "e2e").index(k[0]), CONTENDERS.index(k[1])))  # fmt: skip
    for mode, contender in keys:
        ok = [r for r in results if r["mode"] == mode and r["contender"] == contender and "error" not in r]
        failed = [r for r in results if r["mode"] == mode and r["contender"] == contender and "error" in r]
        row = {"mode": mode, "contender": contender, "runs": len(ok), "failed": len(failed)}
        if ok:
            secs = [r["seconds"] for r in ok]
            row.update(
                median=statistics.median(secs), min=min(secs), max=max(secs),
                statements=int(statistics.median(r["statements"] for r in ok)),
                odoo_calls=int(statistics.median(r["odoo_calls"] for r in ok)),
                peak_rss_mb=statistics.median(r["peak_rss_mb"] for r in ok),
                load=statistics.median(max(r.get("load_before", 0), r.get("load_after", 0)) for r in ok),
                state=ok[-1].get("state"),
            )  # fmt: skip
        rows.append(row)
    floors = {r["mode"]: r for r in rows if r["contender"] == "floor" and r.get("median")}
    extraction = next((r for r in rows if r["contender"] == "extract" and r.get("median")), None)
    for row in rows:
        if extraction and row["mode"] == "e2e" and row.get("median"):
            row["x_extract"] = row["median"] / extraction["median"]
    for row in rows:
        floor = floors.get(row["mode"]) or floors.get("db")
        if floor and row.get("median"):
            row["x_floor"] = row["median"] / floor["median"]
            row["floor_mode"] = floor["mode"]
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("faturamento_batch", "pgserver"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args.work_dir = args.work_dir.resolve()
    (args.work_dir / "logs").mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks " + " ".join(argv)
    admin = embedded_url(args.work_dir / "pgdata")
    for leftover in pg.databases(admin, RUN_PREFIX):
        pg.drop(admin, leftover)
    sizes = SIZES[args.sizes]
    started = datetime.now(timezone.utc)
    scenarios = []
    if args.only in (None, "full"):
        for lines in sizes["full"]:
            prepared = prepare_full(args.work_dir / "data", admin, lines, args.seed, args.rebuild)
            if not args.prepare_only:
                scenarios.append(run_scenario(args, admin, prepared))
    if args.only in (None, "incremental"):
        for table_rows, batch_rows in sizes["incremental"]:
            prepared = prepare_incremental(args.work_dir / "data", admin, table_rows, batch_rows, args.seed,
                                           args.rebuild, with_dlt="dlt" in args.contenders)  # fmt: skip
            if not args.prepare_only:
                scenarios.append(run_scenario(args, admin, prepared))
    dataset_runs = None
    if sizes.get("dataset") and args.only in (None, "dataset") and not args.prepare_only:
        from .dataset_rss import measure as measure_dataset

        log.info("full runs from a dataset directory (sync --full --source), peak RSS at %s lines", sizes["dataset"])
        dataset_runs = [measure_dataset(args.work_dir, n, args.seed, stock, args.chunk_size)
                        for stock in (True, False) for n in sizes["dataset"]]  # fmt: skip
    if args.prepare_only:
        return 0
    report = {
        "command": command, "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "sizes": args.sizes, "repeat": args.repeat, "machine": machine_info(admin, args.work_dir), "scenarios": scenarios,
        "dataset_runs": dataset_runs,
    }  # fmt: skip
    results_dir = args.work_dir / "results"
    results_dir.mkdir(exist_ok=True)
    raw = results_dir / f"{started.strftime('%Y%m%dT%H%M%SZ')}-{args.sizes}.json"
    raw.write_text(json.dumps(report, indent=2, default=str))
    text = render(report)
    print(text)
    if args.out:
        args.out.write_text(text)
        log.info("report written to %s (raw results: %s)", args.out, raw)
    failures = sum(r.get("failed", 0) for s in scenarios for r in s["summary"])
    return 1 if failures else 0
