"""The whole stock stage against PostgreSQL — reads, `plan_stock`, re-checked writes — for N NFs at once.

``python -m benchmarks.stock_io [N …]`` (default 100 and 10000). Per N, a fresh database
on an embedded server: a generated dataset of about N NFs is imported with
``sync --no-stock``; then the logistics application is played in SQL — one active
shipment item and lot for 2 in 3 orders, a separation row per product of the lot's NF
(every 5th order one unit short) — and ``sync --full`` runs the stage over every posted NF
(the catch-up: none has a FATURAMENTO movement yet). Printed: the stage's phases from the
run's manifest (read, plan, write), its SQL statements, and what it wrote; next to the
old job's figure for the same stage, 30 s for 100 NFs (DESIGN §9). The timings include
the machine's load; run it alone for stable numbers.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

from faturamento_batch.db.admin import init_db
from faturamento_batch.db.embedded import create_database, embedded_url
from faturamento_batch.generator import generate_dataset
from faturamento_batch.pipeline import run_sync
from faturamento_batch.settings import Settings

from . import pg

LINES_PER_NF = 5.2  # the generator's account.move.line records per NF, about (with non-product lines)

# The logistics application: shipments for 2 in 3 orders, separations of each lot.
_SHIPMENTS = (
    "INSERT INTO embarques (id, numero, status) SELECT g, g, 'ativo' FROM generate_series(1, 1000) g",
    """INSERT INTO embarque_itens (embarque_id, separacao_lote_id, cliente, pedido, status, uf_destino, cidade_destino)
       SELECT 1 + o.n % 1000, 'LOTE-' || o.origem, 'cliente', o.origem, 'ativo', 'SP', 'Campinas'
       FROM (SELECT origem, row_number() OVER (ORDER BY origem) AS n
             FROM (SELECT DISTINCT origem FROM faturamento_produto WHERE origem <> '') d) o
       WHERE o.n % 3 <> 0""",
    """INSERT INTO separacao (separacao_lote_id, num_pedido, cod_produto, qtd_saldo, sincronizado_nf, cod_uf)
       SELECT i.separacao_lote_id, i.pedido, f.cod_produto,
              f.qtd_produto_faturado::float - CASE WHEN i.id % 5 = 0 THEN 1 ELSE 0 END, false, 'SP'
       FROM embarque_itens i JOIN faturamento_produto f ON f.origem = i.pedido""",
)


def measure(nfs: int, root: Path, admin_url: str) -> dict:
    name = f"fb_bench_stock_{nfs}"
    pg.drop(admin_url, name)
    create_database(admin_url, name)
    url = pg.db_url(admin_url, name)
    init_db(url)
    dataset = root / f"odoo-{nfs}"
    generate_dataset(dataset, lines=int(nfs * LINES_PER_NF), seed=11)
    settings = Settings(database_url=url, artifacts_dir=root / "runs", state_dir=root / "state", source=dataset,
                        max_reject_ratio=1.0)  # fmt: skip
    from dataclasses import replace

    run_sync(replace(settings, stock=False))
    pg.execute(url, *_SHIPMENTS)
    started = time.perf_counter()
    m = run_sync(replace(settings, full=True)).manifest
    total = time.perf_counter() - started
    s = m["stock"]
    pg.drop(admin_url, name)
    return {
        "nfs": s["nfs_processed"],
        "read+plan": m["timings"]["stock"],
        "write": s["seconds"]["write"],
        "stage": round(m["timings"]["stock"] + s["seconds"]["write"], 3),
        "run": round(total, 3),
        "statements": m["sql_statements"]["total"],
        "with_lot": s["nfs_with_lot"],
        "without_lot": s["nfs_without_lot"],
        "written": s["counts"],
    }


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING)
    sizes = [int(a) for a in argv] or [100, 10_000]
    with tempfile.TemporaryDirectory(prefix="fb-bench-stock-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # pgserver runs the server as another user when started as root
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            admin_url = embedded_url(root / "pgdata")
        for n in sizes:
            r = measure(n, root, admin_url)
            print(
                f"{r['nfs']:>7,} NFs processed: stage {r['stage']:.2f} s (read+plan {r['read+plan']:.2f}, write "
                f"{r['write']:.2f}) · run {r['run']:.2f} s · {r['statements']} SQL statements · "
                f"{r['with_lot']:,} with a lot, {r['without_lot']:,} without · old job ≈ {30 * r['nfs'] / 100:,.0f} s"
            )
            print(f"         written: {r['written']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
