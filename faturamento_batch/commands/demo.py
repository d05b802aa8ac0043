"""`faturamento-batch demo`: the whole job on a fresh machine, end to end.

1. Generate a small realistic Odoo dataset (deterministic) and its next day.
2. Serve day 1 from the replay server (a small Odoo) on a free local port.
3. Sync it over JSON-RPC into a fresh `faturamento_demo` database of the
   embedded PostgreSQL (a full run: no cursor yet). Nothing is picked yet, so
   the stock stage leaves every NF without a lot (SEM_LOTE).
4. Play the logistics application: ship and pick part of day 1's orders
   (`_SEED`), one of them short, one NF on another order's shipment.
5. Switch the served data to day 2 (new NFs, cancellations, a reactivation,
   drift, edited partners/products) and run an incremental sync: its stock
   stage matches the picked NFs to their lots, writes the justification and
   flags the divergence (the item's `NF_DIVERGENTE: Pedido NF (…) != Pedido Item (…)`);
   a shipment whose items name one of day 2's new NFs, typed before it was imported,
   is re-validated (one item's CNPJ matches: weight and value from the NF; the
   other's does not: the NF is taken off it with the text). `_show_items` prints them.
Both summaries go to stderr; the artifacts land in ./runs.
"""

from __future__ import annotations

import logging
import shutil
import sys
from dataclasses import replace
from pathlib import Path

from ..db.admin import init_db
from ..db.connection import adbc_connect
from ..db.embedded import create_database, embedded_url
from ..settings import Settings
from ..summary import summary_text

log = logging.getLogger("faturamento_batch")

DEMO_DB = "faturamento_demo"
DEMO_LINES = 3_000
DEMO_SEED = 7


def _fresh_database(settings: Settings) -> str:
    admin = embedded_url(settings.pgdata)
    with adbc_connect(admin, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{DEMO_DB}" WITH (FORCE)')  # constant name
    create_database(admin, DEMO_DB)
    url = embedded_url(settings.pgdata, DEMO_DB)
    init_db(url)
    return url


def _copy_dataset(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for file in src.glob("*.json"):
        shutil.copyfile(file, dst / file.name)


# What the logistics application does after day 1, when every NF is still SEM_LOTE
# (nothing was picked yet): it picks and ships two in three of the orders (one lot per
# order, separated as invoiced — except the first order, picked at half of its first
# product), and one NF of the second order already sits on another order's shipment
# item. Day 2's stock stage then matches those NFs to their lots (movements completed,
# back to Lançado, inconsistencies resolved), writes one justification per short
# product, flags the one divergence, and leaves new NFs without a lot. The first order was
# picked at twice its first product: the NF invoices part of what was separated (a real
# partial invoicing, DESIGN §10), so that product gets a justification for the users.
_SEED = (
    """INSERT INTO embarques (numero, status, data_embarque, criado_em)
       VALUES (1, 'ativo', CURRENT_DATE, LOCALTIMESTAMP), (2, 'ativo', CURRENT_DATE, LOCALTIMESTAMP)""",
    """CREATE TEMPORARY TABLE demo_orders ON COMMIT DROP AS
       SELECT origem, row_number() OVER (ORDER BY origem) AS k
       FROM (SELECT DISTINCT origem FROM faturamento_produto WHERE status_nf = 'SEM_LOTE' AND origem <> '') AS o""",
    "DELETE FROM demo_orders WHERE k % 3 = 0",
    """INSERT INTO embarque_itens (embarque_id, separacao_lote_id, cnpj_cliente, cliente, pedido, uf_destino, cidade_destino)
       SELECT DISTINCT ON (f.origem) (SELECT min(id) FROM embarques), 'LOTE-' || f.origem, f.cnpj_cliente,
              left(f.nome_cliente, 120), f.origem, coalesce(f.estado, 'SP'), coalesce(f.municipio, '?')
       FROM faturamento_produto AS f JOIN demo_orders USING (origem)
       ORDER BY f.origem, f.numero_nf""",
    """INSERT INTO separacao (separacao_lote_id, num_pedido, cnpj_cpf, cod_uf, cod_produto, nome_produto, qtd_saldo, status)
       SELECT 'LOTE-' || f.origem, f.origem, f.cnpj_cliente, coalesce(f.estado, 'SP'), f.cod_produto, f.nome_produto,
              CASE WHEN d.k = 1 AND f.cod_produto = lead.cod_produto THEN f.qtd_produto_faturado * 2
                   ELSE f.qtd_produto_faturado END,
              'ABERTO'
       FROM faturamento_produto AS f
       JOIN demo_orders AS d USING (origem)
       JOIN (SELECT origem, min(cod_produto) AS cod_produto FROM faturamento_produto GROUP BY origem) AS lead USING (origem)""",
    """INSERT INTO embarque_itens (embarque_id, separacao_lote_id, cnpj_cliente, cliente, pedido, nota_fiscal,
                                   uf_destino, cidade_destino)
       SELECT (SELECT max(id) FROM embarques), 'LOTE-OUTRO', f.cnpj_cliente, left(f.nome_cliente, 120), 'OUTRO-PEDIDO',
              f.numero_nf, coalesce(f.estado, 'SP'), coalesce(f.municipio, '?')
       FROM faturamento_produto AS f JOIN demo_orders AS d USING (origem)
       WHERE d.k = 2
       ORDER BY f.numero_nf LIMIT 1""",
)


def _seed_logistics(url: str) -> None:
    with adbc_connect(url) as conn, conn.cursor() as cur:
        for sql in _SEED:
            cur.execute(sql)
        conn.commit()


WAITING_SHIPMENT = 9_000  # the `numero` of the shipment that waits for a day-2 NF


def _seed_waiting_shipment(url: str, day1: Path, day2: Path) -> None:
    """A shipment on which a user typed day 2's first new NF before it was imported (its
    items say `NF_PENDENTE_FATURAMENTO`): one item with the NF's CNPJ written digits-only,
    one with another customer's CNPJ. Day 2's run re-validates both (DESIGN §10)."""
    import json

    known = {m["l10n_br_numero_nota_fiscal"] for m in json.loads((day1 / "account.move.json").read_text())}
    new = [m for m in json.loads((day2 / "account.move.json").read_text())
           if m["state"] == "posted" and m["l10n_br_numero_nota_fiscal"] and m["l10n_br_numero_nota_fiscal"] not in known
           and isinstance(m.get("l10n_br_cnpj"), str)]  # fmt: skip
    if not new:
        return
    move = min(new, key=lambda m: m["id"])  # one record of a small demo file, not the data path
    nf, cnpj, order = move["l10n_br_numero_nota_fiscal"], move["l10n_br_cnpj"], move["invoice_origin"] or "?"
    digits = "".join(ch for ch in cnpj if ch.isdigit())
    with adbc_connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            """WITH e AS (INSERT INTO embarques (numero, status, data_embarque, criado_em)
                          VALUES ($1, 'ativo', CURRENT_DATE, LOCALTIMESTAMP) RETURNING id)
               INSERT INTO embarque_itens (embarque_id, cnpj_cliente, cliente, pedido, nota_fiscal, erro_validacao,
                                           peso, valor, uf_destino, cidade_destino)
               SELECT e.id, c.cnpj, 'Cliente da NF digitada', $4, $2, 'NF_PENDENTE_FATURAMENTO', 0, 0, 'SP', '?'
               FROM e, (VALUES ($3), ('00.000.000/0001-00')) AS c(cnpj)""",
            (WAITING_SHIPMENT, nf, digits, order),
        )
        conn.commit()


def _show_items(url: str) -> str:
    """The shipment items day 2 re-validated or flagged, as text (for the demo's output)."""
    with adbc_connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            """SELECT e.numero, i.pedido, coalesce(i.nota_fiscal, '-'), coalesce(i.erro_validacao, 'ok'), i.peso, i.valor
               FROM embarque_itens AS i JOIN embarques AS e ON e.id = i.embarque_id
               WHERE e.numero = $1 OR i.erro_validacao LIKE 'NF_DIVERGENTE%' ORDER BY i.id LIMIT 10""",
            (WAITING_SHIPMENT,),
        )
        rows = cur.fetchall()
    head = "shipment items re-validated or flagged (shipment · order · NF · erro_validacao · peso · valor):"
    return "\n".join([head, *(f"  {n} · {p} · {nf} · {erro} · {peso} · {valor}" for n, p, nf, erro, peso, valor in rows)])


def _summary(result) -> str:
    return summary_text(result.manifest, result.run_dir)


def _rules_note(dataset: Path, manifest: dict) -> str:
    """What production's rules (DESIGN §10) made of the demo's Odoo: the invoice types read,
    the excluded company's moves never read, the NFs without an order rejected."""
    import polars as pl

    from ..odoo.dataset import load_frames
    from ..odoo.fields import MOVE

    rules = manifest["rules"]
    moves = load_frames(dataset)[MOVE]
    types = moves.filter(pl.col("l10n_br_tipo_pedido").is_in(rules["invoice_types"])).group_by("l10n_br_tipo_pedido").len()
    by_type = ", ".join(f"{t} {n}" for t, n in sorted(types.rows()))
    excluded = moves.filter(pl.col("company_id").is_in(rules["excluded_companies"])).height
    return (f"  rules: moves by invoice type read: {by_type}; {excluded} moves of company "
            f"{'/'.join(map(str, rules['excluded_companies'])) or '-'} never read; "
            f"{manifest['counts'].get('policy_rejected', 0)} lines of NFs without an order rejected as "
            "no_origin (outside the reject ratio)")  # fmt: skip


def run_demo(settings: Settings) -> int:
    from ..generator import generate_dataset, generate_next_day
    from ..odoo.dataset import read_meta
    from ..replay import ReplayServer
    from ..pipeline import run_sync

    root = settings.state_dir / "demo"
    day1, day2, served = root / "day1", root / "day2", root / "served"
    if not (day1 / "meta.json").exists():
        log.info("generating the demo dataset (%d lines) in %s", DEMO_LINES, day1)
        generate_dataset(day1, DEMO_LINES, seed=DEMO_SEED)
    if not (day2 / "meta.json").exists():
        generate_next_day(day1, day2, seed=DEMO_SEED)
    _copy_dataset(day1, served)
    url = _fresh_database(settings)
    log.info("demo database: `%s` in the embedded PostgreSQL at %s", DEMO_DB, settings.pgdata.resolve())
    meta = read_meta(day1)
    with ReplayServer(served) as odoo:
        run = replace(
            settings, database_url=url, source=None, odoo_url=odoo.url, odoo_db=meta["db"],
            odoo_user=meta["login"], odoo_password=meta["password"], odoo_transport="jsonrpc",
            state_dir=root / "state",
        )  # fmt: skip
        shutil.rmtree(root / "state" / "cache", ignore_errors=True)
        print("\n== day 1: first run (full) over JSON-RPC ==", file=sys.stderr)
        first = run_sync(run)
        print(_summary(first), file=sys.stderr)
        print(_rules_note(day1, first.manifest), file=sys.stderr)

        _seed_logistics(url)
        _seed_waiting_shipment(url, day1, day2)
        _copy_dataset(day2, served)
        odoo.reload()
        print(
            "\n== day 2: incremental run after new NFs, cancellations, a reactivation and edits;"
            " part of day 1's orders picked and shipped meanwhile ==",
            file=sys.stderr,
        )
        print(_summary(run_sync(run)), file=sys.stderr)
        print(_show_items(url), file=sys.stderr)
    print(
        "\nInspect with `faturamento-batch runs show` (the latest run, from ./runs) or open "
        "notebooks/sync_diff_analysis.ipynb (pip install -e '.[notebook]'; it reads ./runs).",
        file=sys.stderr,
    )
    return 0
