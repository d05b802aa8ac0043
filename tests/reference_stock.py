"""A row-by-row reference of the stock stage (DESIGN §9, readings in docs/rules.md "Stock stage").

Plain Python on purpose — dicts, `Decimal`, integers, loops over NFs, one pair at a
time for the greedy assignment — written from the design text, not from the Polars
code, so `tests/test_stock_property.py` can check that `plan_stock` agrees with it.
Per-row code is allowed here and only here.

`reference_stock(state)` takes the stage's inputs as lists of dicts (keys named as
the `schemas.STOCK_*` input columns: `nf_lines`, `items`, `separations`, `movements`,
`open_inconsistencies`, `justification_keys`) and returns every `StockPlan` part as a
list of dicts. `apply_plan(state, plan)` returns the state as the writes would leave it
(for the second-run property).
"""

from __future__ import annotations

import math
from decimal import Decimal

POSTED = ("Lançado", "SEM_LOTE")
PALLET_CODES = ("208000012",)
SCALE = 10**9  # a product's ratio counts truncated to 9 decimals
MILLI = Decimal("0.001")


def nf_key(n: str) -> tuple:
    """Lowest NF number first: digit-only numbers by value, then the rest as text."""
    if n.isascii() and n.isdigit():
        significant = n.lstrip("0")
        return (False, len(significant), significant, n)
    return (True, 0, n, n)


def blank(text: str | None) -> bool:
    return text is None or text.strip() == ""


def empty_nf(text: str | None) -> bool:
    return text is None or text == ""


def active(item: dict) -> bool:
    return item["status"] == "ativo" and item["embarque_status"] == "ativo"


def milli_of_decimal(q: Decimal | None) -> int:
    return 0 if q is None else int(q * 1000)


def milli_of_float(x: float | None) -> int:
    if x is None or math.isnan(x):
        return 0
    return round(x * 1000)  # half to even, like the documented rule


def as_decimal(milli: int) -> Decimal:
    return (Decimal(milli) * MILLI).quantize(MILLI)


def percent(ratio: float) -> str:
    """docs/rules.md: round(ratio × 10⁴), half to even, as a percentage with two decimals. (The old
    job's `{ratio:.2%}` rounds the binary value of ratio × 100 and can differ by 0.01 at a tie.)"""
    cents = round(ratio * 10000)
    return f"{cents // 100}.{cents % 100:02d}"


def carvia(item: dict) -> bool:
    return (item.get("carvia_cotacao_id") or 0) != 0 or (item["separacao_lote_id"] or "").startswith("CARVIA-")


def reference_stock(state: dict[str, list[dict]], pallet_codes: tuple[str, ...] = PALLET_CODES) -> dict[str, list[dict]]:
    # ---- the NFs processed: posted lines only
    nfs: dict[str, list[dict]] = {}
    for line in state["nf_lines"]:
        if line["status_nf"] in POSTED:
            nfs.setdefault(line["numero_nf"], []).append(line)
    order_of = {}
    for n, lines in nfs.items():
        origens = [ln["origem"] for ln in lines if not blank(ln["origem"])]
        order_of[n] = min(origens) if origens else None
    nf_order = sorted(nfs, key=nf_key)

    # Only pending separations (sincronizado_nf false, not null) count (§10).
    separated: dict[tuple, int] = {}
    for s in state["separations"]:
        if s["separacao_lote_id"] is None or s["sincronizado_nf"] is not False:
            continue
        key = (s["separacao_lote_id"], s["num_pedido"], s["cod_produto"])
        separated[key] = separated.get(key, 0) + milli_of_float(s["qtd_saldo"])

    items = [it for it in state["items"] if not carvia(it)]
    decision: dict[str, dict] = {}

    # ---- rule 1: linked items
    for n in nf_order:
        o = order_of[n]
        linked = [it for it in items if active(it) and it["nota_fiscal"] == n]
        if not linked:
            continue
        same = [it for it in linked if o is not None and it["pedido"] == o]
        other = [it for it in linked if not (o is not None and it["pedido"] == o)]
        lots = [it["separacao_lote_id"] for it in same if it["separacao_lote_id"] is not None]
        if lots:
            decision[n] = {"how": "linked", "lot": min(lots)}
        elif other:
            first = min(other, key=lambda it: (it["pedido"], it["embarque_id"], it["id"]))
            decision[n] = {"how": "linked", "lot": None, "tipo": "DIVERGENCIA_NF_EMBARQUE",
                           "why": "divergence", "div_pedido": first["pedido"], "div_embarque": first["embarque_id"]}
        else:
            first = min(same, key=lambda it: (it["embarque_id"], it["id"]))
            decision[n] = {"how": "linked", "lot": None, "tipo": "NF_SEM_SEPARACAO",
                           "why": "linked_no_lot", "linked_embarque": first["embarque_id"]}  # fmt: skip
    taken_by_link = {d["lot"] for d in decision.values() if d["lot"] is not None}

    # ---- rule 2: candidate lots and scores
    pairs = []
    for n in nf_order:
        o = order_of[n]
        if n in decision or o is None:
            continue
        lots = sorted(
            {
                it["separacao_lote_id"]
                for it in items
                if it["pedido"] == o and active(it) and it["separacao_lote_id"] is not None and empty_nf(it["nota_fiscal"])
            }
            - taken_by_link
        )
        pending = {lt for (lt, od, _p) in separated if od == o}
        candidates = [lot for lot in lots if lot in pending or len(lots) == 1]
        for lot in candidates:
            units = 0
            held = {p: q for (lt, od, p), q in separated.items() if lt == lot and od == o}
            for line in nfs[n]:
                q_nf = milli_of_decimal(line["qtd_produto_faturado"])
                q_sep = held.get(line["cod_produto"], 0)
                lo, hi = min(q_nf, q_sep), max(q_nf, q_sep)
                ratio = lo / hi if lo > 0 else 0.0
                units += math.floor(ratio * SCALE)
            n_sep = len(held)
            extras = len(set(held) - {ln["cod_produto"] for ln in nfs[n]})
            if n_sep:  # × (1 − 0.2 × extras / n_sep), in integers
                units = units * (5 * n_sep - extras) // (5 * n_sep)
            score = float(units) / (float(len(nfs[n])) * SCALE)
            if units > 0 or len(lots) == 1:
                pairs.append((score, n, lot))

    # ---- rule 3: greedy, one pair at a time
    pairs.sort(key=lambda p: (-p[0], nf_key(p[1]), p[2]))
    nf_taken, lot_taken = set(), set()
    for score, n, lot in pairs:
        if n in nf_taken or lot in lot_taken:
            continue
        nf_taken.add(n)
        lot_taken.add(lot)
        decision[n] = {"how": "candidate", "lot": lot, "score": score}
    for n in nf_order:
        if n not in decision:
            why = "no_order" if order_of[n] is None else "no_free_lot"
            decision[n] = {"how": "none", "lot": None, "tipo": "NF_SEM_SEPARACAO", "why": why}

    # ---- the claimant of (lot, order): the lowest NF number holding it
    claimant: dict[tuple, str] = {}
    for n in nf_order:
        d = decision[n]
        if d["lot"] is not None:
            claimant.setdefault((d["lot"], order_of[n]), n)

    def is_claimant(n: str) -> bool:
        d = decision[n]
        return d["lot"] is not None and claimant[(d["lot"], order_of[n])] == n

    def embarque_of(n: str) -> int | None:
        d = decision[n]
        if d["lot"] is None:
            return None
        ids = [
            it["embarque_id"]
            for it in items
            if active(it) and it["separacao_lote_id"] == d["lot"] and it["pedido"] == order_of[n]
            and (it["nota_fiscal"] == n or (empty_nf(it["nota_fiscal"]) and is_claimant(n)))
        ]  # fmt: skip
        return min(ids)

    plan: dict[str, list[dict]] = {k: [] for k in (
        "assignments", "movement_inserts", "movement_completions", "item_links", "item_flags", "separation_links",
        "separation_statuses", "status_changes", "inconsistencies", "justifications")}  # fmt: skip

    status_done: set = set()
    synced_ids: set = set()
    for n in nf_order:
        d, o, lines = decision[n], order_of[n], nfs[n]
        lot, embarque = d["lot"], embarque_of(n)
        plan["assignments"].append({
            "numero_nf": n, "origem": o, "how": d["how"], "separacao_lote_id": lot, "embarque_id": embarque,
            "score": d.get("score"), "tipo": d.get("tipo"), "divergent_pedido": d.get("div_pedido"),
            "divergent_embarque_id": d.get("div_embarque"),
        })  # fmt: skip
        data = min(ln["data_fatura"] for ln in lines)

        # movements
        for line in lines:
            p = line["cod_produto"]
            existing = [m for m in state["movements"] if m["numero_nf"] == n and m["cod_produto"] == p]
            observacao = f"Baixa automática NF {n} - lote separação {lot}" if lot is not None else (
                f"Baixa automática NF {n} - Sem Separação")  # fmt: skip
            if not existing and p not in pallet_codes:
                plan["movement_inserts"].append({
                    "cod_produto": p, "nome_produto": line["nome_produto"], "data_movimentacao": data,
                    "tipo_movimentacao": "FATURAMENTO", "local_movimentacao": "VENDA",
                    "qtd_movimentacao": -abs(as_decimal(milli_of_decimal(line["qtd_produto_faturado"]))),
                    "separacao_lote_id": lot, "numero_nf": n, "num_pedido": o, "tipo_origem": "ODOO",
                    "status_nf": "FATURADO", "codigo_embarque": embarque, "observacao": observacao,
                })  # fmt: skip
            elif lot is not None:
                for m in existing:
                    if m["separacao_lote_id"] == lot and m["codigo_embarque"] == embarque:
                        continue
                    plan["movement_completions"].append({
                        "id": m["id"], "numero_nf": n, "cod_produto": p, "separacao_lote_id": lot,
                        "codigo_embarque": embarque, "observacao": observacao,
                    })  # fmt: skip

        statuses = {ln["status_nf"] for ln in lines}
        opens = [r for r in state["open_inconsistencies"] if r["numero_nf"] == n]
        if lot is not None:
            if is_claimant(n):
                for it in items:
                    if it["separacao_lote_id"] == lot and it["pedido"] == o and empty_nf(it["nota_fiscal"]):
                        plan["item_links"].append({"id": it["id"], "numero_nf": n, "separacao_lote_id": lot,
                                                   "clear_erro": it["erro_validacao"] is not None})
                for s in state["separations"]:
                    if s["separacao_lote_id"] == lot and s["num_pedido"] == o and s["sincronizado_nf"] is False:
                        plan["separation_links"].append({"id": s["id"], "numero_nf": n, "separacao_lote_id": lot})
                        synced_ids.add(s["id"])
            if o is not None:
                for s in state["separations"]:
                    if (s["separacao_lote_id"] == lot and s["num_pedido"] == o and s["status"] != "FATURADO"
                            and s["id"] not in synced_ids and s["id"] not in status_done):
                        plan["separation_statuses"].append({"id": s["id"], "separacao_lote_id": lot, "num_pedido": o, "numero_nf": n})
                        status_done.add(s["id"])
            if "SEM_LOTE" in statuses:
                plan["status_changes"].append({"numero_nf": n, "status_from": "SEM_LOTE", "status_nf": "Lançado"})
            for r in opens:
                plan["inconsistencies"].append({
                    "action": "resolve", "id": r["id"], "tipo": r["tipo"], "numero_nf": n, "num_pedido": None,
                    "cod_produto": None, "qtd_faturada": None, "observacao_resolucao": None,
                })  # fmt: skip
            # justifications: only a scored lot below 0.99; products in both with a ratio below 0.99
            if d["how"] == "candidate" and d["score"] < 0.99:
                invoiced = {ln["cod_produto"]: milli_of_decimal(ln["qtd_produto_faturado"]) for ln in lines}
                held = {p: q for (lt, od, p), q in separated.items() if lt == lot and od == o}
                keys = {(k["separacao_lote_id"], k["num_pedido"], k["cod_produto"], k["numero_nf"])
                        for k in state["justification_keys"]}  # fmt: skip
                for p in sorted(set(invoiced) & set(held)):
                    q_fat, q_sep = invoiced[p], held[p]
                    if q_fat <= 0 or q_sep <= 0 or (lot, o, p, n) in keys:
                        continue
                    ratio = min(q_fat, q_sep) / max(q_fat, q_sep)
                    if ratio >= 0.99:
                        continue
                    plan["justifications"].append({
                        "separacao_lote_id": lot, "num_pedido": o, "cod_produto": p, "numero_nf": n,
                        "qtd_separada": as_decimal(q_sep), "qtd_faturada": as_decimal(q_fat),
                        "qtd_saldo": as_decimal(max(q_sep - q_fat, 0)), "motivo_nao_faturamento": "",
                        "classificacao_saldo": "", "descricao_detalhada": f"Divergência detectada: Score {percent(ratio)}%",
                    })  # fmt: skip
        else:
            if "Lançado" in statuses:
                plan["status_changes"].append({"numero_nf": n, "status_from": "Lançado", "status_nf": "SEM_LOTE"})
            if d.get("why") == "divergence":
                for it in sorted(items, key=lambda it: it["id"]):
                    if (active(it) and it["nota_fiscal"] == n and it["pedido"] != o
                            and (it["erro_validacao"] is None or it["erro_validacao"] == "")):
                        plan["item_flags"].append({"id": it["id"], "numero_nf": n, "erro_validacao":
                            f"NF_DIVERGENTE: Pedido NF ({o or ''}) != Pedido Item ({it['pedido'] or ''})"})
            products = sorted({ln["cod_produto"] for ln in lines})
            why = d["why"]
            if why == "no_order":
                text = f"NF {n} sem pedido de origem"
            elif why == "divergence":
                head = f"NF {n} sem pedido" if o is None else f"NF {n} do pedido {o}"
                text = f"{head} vinculada ao embarque {d['div_embarque']} do pedido {d['div_pedido']}"
            elif why == "linked_no_lot":
                text = f"NF {n} vinculada ao embarque {d['linked_embarque']} do pedido {o} sem lote de separação"
            else:
                text = f"Nenhum lote de separação disponível para o pedido {o}"
            row = {
                "action": "open", "id": None, "tipo": d["tipo"], "numero_nf": n, "num_pedido": o,
                "cod_produto": products[0] if len(products) == 1 else "MULTIPLOS",
                "qtd_faturada": as_decimal(sum(milli_of_decimal(ln["qtd_produto_faturado"]) for ln in lines)),
                "observacao_resolucao": text,
            }  # fmt: skip
            same_tipo = sorted((r for r in opens if r["tipo"] == d["tipo"]), key=lambda r: r["id"])
            if same_tipo:
                current = same_tipo[0]
                cols = ("num_pedido", "cod_produto", "qtd_faturada", "observacao_resolucao")
                if all(current[c] == row[c] for c in cols):
                    continue
                row["id"] = current["id"]
            plan["inconsistencies"].append(row)
    return plan


def apply_plan(state: dict[str, list[dict]], plan: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """The stage's inputs as the plan's writes leave them (what the next run would read)."""
    new = {k: [dict(r) for r in rows] for k, rows in state.items()}
    changes = {(c["numero_nf"], c["status_from"]): c["status_nf"] for c in plan["status_changes"]}
    for line in new["nf_lines"]:
        line["status_nf"] = changes.get((line["numero_nf"], line["status_nf"]), line["status_nf"])
    links = {link["id"]: link for link in plan["item_links"]}
    for it in new["items"]:
        if it["id"] in links:
            it["nota_fiscal"] = links[it["id"]]["numero_nf"]
            it["erro_validacao"] = None
    flags = {f["id"]: f["erro_validacao"] for f in plan["item_flags"]}
    for it in new["items"]:
        if it["id"] in flags:
            it["erro_validacao"] = flags[it["id"]]
    synced = {s["id"]: s["numero_nf"] for s in plan["separation_links"]}
    for s in new["separations"]:
        if s["id"] in synced:
            s["numero_nf"], s["sincronizado_nf"], s["status"] = synced[s["id"]], True, "FATURADO"
    faturado = {s["id"] for s in plan["separation_statuses"]}
    for s in new["separations"]:
        if s["id"] in faturado:
            s["status"] = "FATURADO"
    done = {c["id"]: c for c in plan["movement_completions"]}
    for m in new["movements"]:
        if m["id"] in done:
            m["separacao_lote_id"], m["codigo_embarque"] = done[m["id"]]["separacao_lote_id"], done[m["id"]]["codigo_embarque"]
    next_id = max([m["id"] for m in new["movements"]] + [0]) + 1
    for ins in plan["movement_inserts"]:
        new["movements"].append({"id": next_id, "numero_nf": ins["numero_nf"], "cod_produto": ins["cod_produto"],
                                 "separacao_lote_id": ins["separacao_lote_id"], "codigo_embarque": ins["codigo_embarque"]})
        next_id += 1
    resolved = {r["id"] for r in plan["inconsistencies"] if r["action"] == "resolve"}
    opened = [r for r in plan["inconsistencies"] if r["action"] == "open"]
    cols = ("num_pedido", "cod_produto", "qtd_faturada", "observacao_resolucao")
    rows = [r for r in new["open_inconsistencies"] if r["id"] not in resolved]
    by_id = {r["id"]: r for r in rows}
    next_id = max([r["id"] for r in state["open_inconsistencies"]] + [0]) + 1000
    for r in opened:
        if r["id"] is not None:
            by_id[r["id"]].update({c: r[c] for c in cols})
        else:
            rows.append({"id": next_id, "numero_nf": r["numero_nf"], "tipo": r["tipo"], **{c: r[c] for c in cols}})
            next_id += 1
    new["open_inconsistencies"] = rows
    new["justification_keys"] = new["justification_keys"] + [
        {"separacao_lote_id": j["separacao_lote_id"], "num_pedido": j["num_pedido"], "cod_produto": j["cod_produto"],
         "numero_nf": j["numero_nf"]}
        for j in plan["justifications"]
    ]
    return new
