"""The stock stage's database side (DESIGN §9): reads and writes round-trip on small
hand-made data, re-checked WHEREs leave a concurrently changed row alone (and count it),
the `stock` command, `--no-stock`, dry runs, and a second sync changing nothing."""

from __future__ import annotations

from datetime import date

from pathlib import Path

import polars as pl
import pytest

from faturamento_batch.artifacts import read_manifest, read_part
from faturamento_batch.cli import main
from faturamento_batch.db.features import Features
from faturamento_batch.db.read_stock import CatchUp, read_candidate_lines, read_stock_state

from .builders import build_dataset
from .dbutil import cursor, execute, load_rows, read_table, scalar, snapshot

DAY2 = "2026-01-06 10:00:00"


def _run(url: str, tmp_path: Path, *args: str, source: Path | None = None) -> tuple[int, dict]:
    command = args[0]
    extra = ["--source", str(source)] if source is not None else []
    code = main([command, *extra, "--database-url", url, "--artifacts-dir", str(tmp_path / "runs"), *args[1:]])
    latest = max((tmp_path / "runs").iterdir(), key=lambda p: p.stat().st_mtime_ns)
    return code, read_manifest(latest)


def _execute(url: str, *statements: str) -> None:
    """Statements of "the logistics application", each committed at once."""
    execute(url, *statements, each=True)


def _logistics(nf_orders: dict[str, list[tuple[str, float]]]) -> dict[str, list[dict]]:
    """Shipment 1 (active) with one item per order `PEDm` → lot `L-m`, and the lot's separation."""
    items, seps = [], []
    for n, (order, products) in enumerate(nf_orders.items(), start=1):
        items.append({"id": n, "embarque_id": 1, "pedido": order, "separacao_lote_id": f"L-{order}", "nota_fiscal": None,
                      "erro_validacao": "NF_PENDENTE_FATURAMENTO"})  # fmt: skip
        for code, qty in products:
            seps.append({"separacao_lote_id": f"L-{order}", "num_pedido": order, "cod_produto": code, "qtd_saldo": qty,
                         "sincronizado_nf": False})  # fmt: skip
    return {"embarques": [{"id": 1, "numero": 1, "status": "ativo"}], "embarque_itens": items, "separacao": seps}


# build_dataset: NF 100000+m has order PEDm and products P((7m+k) % 50 + 1) with quantity k+1.
PED1 = [("P00008", 1.0), ("P00009", 2.0), ("P00010", 3.0)]  # exactly what NF 100001 invoices
PED2 = [("P00015", 1.0), ("P00016", 5.0)]  # NF 100002 invoices P00015 1, P00016 2, P00017 3


@pytest.fixture
def day1(tmp_path):
    return build_dataset(tmp_path / "odoo", moves=3)


def test_sync_writes_the_stage_and_a_second_sync_changes_nothing(db_url, tmp_path, day1):
    load_rows(db_url, _logistics({"PED1": PED1, "PED2": PED2}))
    code, m = _run(db_url, tmp_path, "sync", source=day1)
    assert code == 0, m.get("error")
    s = m["stock"]
    assert (s["nfs_processed"], s["nfs_with_lot"], s["nfs_without_lot"]) == (3, 2, 1)
    assert s["counts"]["movements_created"] == 9 and s["counts"]["items_linked"] == 2
    # NF 100002 scores (1 + 2/5 + 0)/3 < 0.99: a row for P00016 only (P00017 is not in the lot, §10).
    assert s["counts"]["separations_synced"] == 5 and s["counts"]["justifications"] == 1
    assert s["left_alone"] == {t: 0 for t in s["left_alone"]}

    moves = read_table(db_url, "movimentacao_estoque", ["numero_nf", "cod_produto", "qtd_movimentacao", "separacao_lote_id",
                                                        "codigo_embarque", "tipo_movimentacao", "observacao", "criado_por"],
                       order="numero_nf, cod_produto")  # fmt: skip
    first = moves.filter(pl.col("numero_nf") == "100001")
    assert first.get_column("qtd_movimentacao").to_list() == ["-1.000", "-2.000", "-3.000"]
    assert set(first.get_column("separacao_lote_id")) == {"L-PED1"} and set(first.get_column("codigo_embarque")) == {1}
    assert first.get_column("observacao")[0] == "Baixa automática NF 100001 - lote separação L-PED1"
    third = moves.filter(pl.col("numero_nf") == "100003")
    assert third.get_column("separacao_lote_id").is_null().all()
    assert third.get_column("observacao")[0] == "Baixa automática NF 100003 - Sem Separação"
    assert set(moves.get_column("criado_por")) == {"faturamento_batch"}

    items = read_table(db_url, "embarque_itens", ["id", "nota_fiscal", "erro_validacao"], order="id").rows()
    assert items == [(1, "100001", None), (2, "100002", None)]
    seps = read_table(db_url, "separacao", ["num_pedido", "numero_nf", "sincronizado_nf", "status"], order="id").rows()
    assert seps == [("PED1", "100001", True, "FATURADO")] * 3 + [("PED2", "100002", True, "FATURADO")] * 2
    assert scalar(db_url, "SELECT count(*) FROM separacao WHERE data_sincronizacao IS NULL") == 0
    status = read_table(db_url, "faturamento_produto", ["numero_nf", "status_nf"]).unique().sort("numero_nf").rows()
    assert status == [("100001", "Lançado"), ("100002", "Lançado"), ("100003", "SEM_LOTE")]
    inc = read_table(db_url, "inconsistencia_faturamento", ["tipo", "numero_nf", "num_pedido", "cod_produto", "qtd_faturada",
                                                             "resolvida"]).rows()  # fmt: skip
    assert inc == [("NF_SEM_SEPARACAO", "100003", "PED3", "MULTIPLOS", "6.000", False)]
    just = read_table(db_url, "faturamento_parcial_justificativa",
                      ["cod_produto", "qtd_separada", "qtd_faturada", "qtd_saldo", "descricao_detalhada"], order="cod_produto").rows()  # fmt: skip
    assert just == [("P00016", "5.000", "2.000", "3.000", "Divergência detectada: Score 40.00%")]

    run_dir = tmp_path / "runs" / m["run_id"]
    parts = {p: read_part(run_dir, p) for p in ("stock_movements", "stock_links", "inconsistencies", "justifications")}
    assert parts["stock_movements"].get_column("action").value_counts().sort("action").rows() == [("insert", 9)]
    assert parts["stock_links"].get_column("kind").value_counts().sort("kind").rows() == [("item", 2), ("separation", 5)]
    assert parts["inconsistencies"].height == 1 and parts["justifications"].height == 1
    from faturamento_batch import analysis as an

    run = an.load_run(run_dir)  # the analysis loader knows every part's schema, present or not
    for part, schema in an.STOCK_PART_SCHEMAS.items():
        assert run.part(part).schema == schema, part
    assert run.part("stock_assignments").height == 3

    before = snapshot(db_url)
    code, again = _run(db_url, tmp_path, "sync", "--full", source=day1)
    assert code == 0 and again["rows_to_write"] == 0, again["stock"]
    assert snapshot(db_url) == {**before, "sync_runs": snapshot(db_url)["sync_runs"], "sync_state": snapshot(db_url)["sync_state"]}


def test_reads_only_the_run_s_nfs_and_orders(db_url, tmp_path, day1):
    assert _run(db_url, tmp_path, "sync", "--no-stock", source=day1)[0] == 0
    load_rows(db_url, {
        **_logistics({"PED1": PED1, "PED9": [("P00001", 1.0)]}),
        "movimentacao_estoque": [{"cod_produto": "P00008", "numero_nf": "100001", "tipo_movimentacao": "FATURAMENTO"},
                                 {"cod_produto": "P00009", "numero_nf": "100001", "tipo_movimentacao": "FATURAMENTO", "ativo": False},
                                 {"cod_produto": "P00001", "numero_nf": "999999", "tipo_movimentacao": "FATURAMENTO"}],
        "inconsistencia_faturamento": [{"tipo": "NF_SEM_SEPARACAO", "numero_nf": "100001", "cod_produto": "X", "qtd_faturada": "1"},
                                       {"tipo": "NF_SEM_SEPARACAO", "numero_nf": "100001", "cod_produto": "X", "qtd_faturada": "1",
                                        "resolvida": True}],
        "faturamento_parcial_justificativa": [
            {"separacao_lote_id": "L-PED1", "num_pedido": "PED1", "cod_produto": "P00008", "numero_nf": "100001",
             "qtd_separada": "1", "qtd_faturada": "1", "qtd_saldo": "0", "motivo_nao_faturamento": "X", "classificacao_saldo": "X"}],
    })  # fmt: skip
    _execute(db_url, "UPDATE faturamento_produto SET status_nf = 'SEM_LOTE' WHERE numero_nf IN ('100001', '100003')")
    # Pending: 100001 (SEM_LOTE, its order has a candidate item); not 100003 (no item); never 100002 (Lançado).
    with cursor(db_url) as cur:
        found = read_candidate_lines(cur, pending=True, catch_up=None)
        assert sorted(found.lines.get_column("numero_nf").unique()) == ["100001"] and found.lines.height == 3
        # Catch-up: every posted NF without an active FATURAMENTO movement (100001 has one), within the bounds.
        caught = read_candidate_lines(cur, pending=False, catch_up=CatchUp(date(2026, 1, 6), 7, date(2026, 1, 1), "faturamento"))
        assert sorted(caught.lines.get_column("numero_nf").unique()) == ["100002", "100003"]
    # A cancellation in this run frees its items: the order has a candidate again.
    _execute(db_url, "UPDATE embarque_itens SET nota_fiscal = '555' WHERE pedido = 'PED1'")
    with cursor(db_url) as cur:
        assert read_candidate_lines(cur, pending=True, catch_up=None).lines.height == 0
        assert read_candidate_lines(cur, pending=True, catch_up=None, cancelled=["555"]).lines.height == 3

        state = read_stock_state(cur, ["100001"], ["PED1"], features=Features(carvia=False))
        assert state.items.select("id", "pedido", "embarque_status").rows() == [(1, "PED1", "ativo")]
        assert sorted(state.separations.get_column("cod_produto")) == ["P00008", "P00009", "P00010"]
        assert state.movements.select("numero_nf", "cod_produto").rows() == [("100001", "P00008")]
        assert state.open_inconsistencies.select("numero_nf", "tipo", "qtd_faturada").rows()[0][:2] == ("100001", "NF_SEM_SEPARACAO")
        assert state.open_inconsistencies.height == 1
        assert state.justification_keys.rows() == [("L-PED1", "PED1", "P00008", "100001")]
        assert state.statements == 3


def test_a_row_the_application_changed_after_the_read_is_left_alone_and_counted(db_url, tmp_path, day1, monkeypatch):
    import faturamento_batch.stages.stock_stage as stage

    load_rows(db_url, _logistics({"PED1": PED1, "PED2": PED2}))
    real = stage.stream_stock_state

    def read_then_application_writes(*args, **kwargs):
        yield from real(*args, **kwargs)
        _execute(db_url, "UPDATE embarque_itens SET nota_fiscal = 'OUTRA' WHERE id = 1",
                 "UPDATE separacao SET sincronizado_nf = true WHERE num_pedido = 'PED2' AND cod_produto = 'P00015'")

    monkeypatch.setattr(stage, "stream_stock_state", read_then_application_writes)
    code, m = _run(db_url, tmp_path, "sync", source=day1)
    assert code == 0, m.get("error")
    assert m["stock"]["planned"]["items_linked"] == 2 and m["stock"]["counts"]["items_linked"] == 1
    assert m["stock"]["left_alone"]["embarque_itens"] == 1 and m["stock"]["left_alone"]["separacao"] == 1
    assert read_table(db_url, "embarque_itens", ["id", "nota_fiscal"], order="id").rows() == [(1, "OUTRA"), (2, "100002")]
    assert scalar(db_url, "SELECT count(*) FROM separacao WHERE numero_nf IS NOT NULL") == 4  # 3 of PED1, 1 of PED2


def test_sync_dry_run_plans_the_stage_and_writes_nothing(db_url, tmp_path, day1):
    load_rows(db_url, _logistics({"PED1": PED1, "PED2": PED2}))
    before = snapshot(db_url)
    code, m = _run(db_url, tmp_path, "sync", "--dry-run", source=day1)
    assert code == 0 and m["status"] == "dry_run"
    assert m["stock"]["planned"]["movements_created"] == 9 and m["stock"]["counts"] == m["stock"]["planned"]
    assert "written" not in m["stock"] and "left_alone" not in m["stock"]
    # 9 movements, 2 items, 5 separations, 1 NF to SEM_LOTE, 1 inconsistency, 1 justification
    assert m["stock"]["rows_to_write"] == 19
    assert m["rows_to_write"] == 9 + 9 + 3 + 19  # + the import's lines, products and consolidations
    assert snapshot(db_url) == before
    assert read_part(tmp_path / "runs" / m["run_id"], "stock_movements").height == 9


def test_no_stock_leaves_the_stock_tables_alone(db_url, tmp_path, day1):
    load_rows(db_url, _logistics({"PED1": PED1}))
    before = {t: snapshot(db_url)[t] for t in ("movimentacao_estoque", "embarque_itens", "separacao", "inconsistencia_faturamento")}
    code, m = _run(db_url, tmp_path, "sync", "--no-stock", source=day1)
    assert code == 0 and "stock" not in m
    assert scalar(db_url, "SELECT count(*) FROM faturamento_produto WHERE status_nf = 'Lançado'") == 9
    assert {t: snapshot(db_url)[t] for t in before} == before
    assert not (tmp_path / "runs" / m["run_id"] / "stock_movements.parquet").exists()


def test_no_stock_runs_on_a_database_without_the_stock_module(db_url, tmp_path, day1):
    _execute(db_url, "DROP TABLE inconsistencia_faturamento, faturamento_parcial_justificativa")
    assert _run(db_url, tmp_path, "sync", "--no-stock", source=day1)[0] == 0
    day2 = build_dataset(tmp_path / "odoo2", moves=3, cancelled={1}, write_date=DAY2)
    code, m = _run(db_url, tmp_path, "sync", "--no-stock", source=day2)  # the cascade, without inconsistencies
    assert code == 0, m.get("error")
    assert m["counts"]["cancellations"] == 1
    runs = scalar(db_url, "SELECT count(*) FROM sync_runs")
    code, m = _run(db_url, tmp_path, "sync", "--full", source=day2)  # with the stage: a clear failure, nothing written
    # inconsistencia_faturamento alone is optional (DESIGN §10): the stage names the table it cannot do without.
    assert code == 2 and "`faturamento_parcial_justificativa`" in m["error"] and "--no-stock" in m["error"]
    assert scalar(db_url, "SELECT count(*) FROM sync_runs") == runs


def test_stock_command_processes_pending_or_listed_nfs(db_url, tmp_path, day1, capsys):
    assert _run(db_url, tmp_path, "sync", source=day1)[0] == 0  # no shipments yet: all three SEM_LOTE
    assert scalar(db_url, "SELECT count(DISTINCT numero_nf) FROM faturamento_produto WHERE status_nf = 'SEM_LOTE'") == 3
    load_rows(db_url, _logistics({"PED1": PED1, "PED2": PED2}))  # the shipments arrive

    before = snapshot(db_url)
    code, m = _run(db_url, tmp_path, "stock", "--dry-run")
    assert code == 0 and m["status"] == "dry_run" and m["mode"] == "stock"
    assert m["stock"]["nfs_processed"] == 2 and m["stock"]["planned"]["movements_completed"] == 6
    assert snapshot(db_url) == before

    code, m = _run(db_url, tmp_path, "stock", "--nfs", "100002")
    assert code == 0, m.get("error")
    assert m["stock"]["nfs_processed"] == 1 and m["stock"]["counts"]["movements_completed"] == 3
    assert scalar(db_url, "SELECT status_nf FROM faturamento_produto WHERE numero_nf = '100002' LIMIT 1") == "Lançado"
    assert scalar(db_url, "SELECT count(*) FROM movimentacao_estoque WHERE numero_nf = '100002' AND separacao_lote_id = 'L-PED2'") == 3
    assert scalar(db_url, "SELECT resolvida_por FROM inconsistencia_faturamento WHERE numero_nf = '100002'") == "faturamento_batch"
    assert scalar(db_url, "SELECT mode FROM sync_runs ORDER BY id DESC LIMIT 1") == "stock"
    assert scalar(db_url, "SELECT counts->'stock'->'counts'->>'movements_completed' FROM sync_runs ORDER BY id DESC LIMIT 1") == "3"
    capsys.readouterr()
    assert main(["runs", "show", m["run_id"], "--database-url", db_url, "--artifacts-dir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert f"run {m['run_id']}  stock  success" in out and "Odoo lines" not in out
    assert "stock: 1 NFs (1 with a lot, 0 without; 0 linked, 0 divergent) · movements +0 completed 3" in out
    assert "stock stage left alone: " in out and "movimentacao_estoque.complete 3" in out
    shown = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.endswith(".parquet")}
    assert shown["stock_movements"] == "3" and shown["stock_links"] == "3" and shown["inconsistencies"] == "1"

    code, m = _run(db_url, tmp_path, "stock")  # the pending one left: 100001
    assert code == 0 and m["stock"]["nfs_processed"] == 1
    assert scalar(db_url, "SELECT count(*) FROM faturamento_produto WHERE status_nf = 'SEM_LOTE'") == 3  # 100003 only
    code, m = _run(db_url, tmp_path, "stock")
    assert code == 0 and m["stock"]["nfs_processed"] == 0 and m["rows_to_write"] == 0


def test_stock_command_refuses_bad_nfs(db_url, tmp_path, day1, capsys):
    assert _run(db_url, tmp_path, "sync", source=day1)[0] == 0
    code, m = _run(db_url, tmp_path, "stock", "--nfs", "100001,404404")
    assert code == 2 and "`404404`" in m["error"]
    assert main(["stock", "--database-url", db_url, "--nfs", " , "]) == 2
    assert main(["stock", "--database-url", db_url, "--nfs", "1" * 21]) == 2
    assert "Traceback" not in capsys.readouterr().err


def _budget_day2(path: Path, old: int, new: int) -> Path:
    """Day 2 over `old` day-1 NFs: `new` NFs more, day-1 NFs `old-1` and `old` cancelled, every
    price changed (drift), and the new NFs on product codes day 1 never used (new products)."""
    import json

    build_dataset(path, moves=old + new, lines_per_move=2, products=60, price=10.5, cancelled={old - 1, old}, write_date=DAY2)
    lines = json.loads((path / "account.move.line.json").read_text())
    for ln in lines:  # day-1 NFs keep day 1's products; the new ones take codes 51–60
        m, k = ln["move_id"][0], (ln["id"] - 1) % 2
        product = ((m * 7 + k) % 50) + 1 if m <= old else 51 + (m + k) % 10
        ln["product_id"] = [product, f"Produto {product}"]
    (path / "account.move.line.json").write_text(json.dumps(lines))
    return path


def _budget_shipments(url: str, pending: int, old: int, new: int) -> None:
    """Lots for the orders of day-1 NFs 1…`pending` (pending: SEM_LOTE since day 1) and of every
    other new NF; each lot separates its first product exactly and its second one short."""
    product = "'P' || lpad((CASE WHEN m <= {old} THEN ((m * 7 + k) % 50) + 1 ELSE 51 + (m + k) % 10 END)::text, 5, '0')"
    orders = f"(SELECT m FROM generate_series(1, {pending}) m UNION ALL SELECT m FROM generate_series({old + 1}, {old + new}, 2) m)"
    _execute(
        url,
        "INSERT INTO embarques (id, numero, status) VALUES (1, 1, 'ativo')",
        f"""INSERT INTO embarque_itens (embarque_id, separacao_lote_id, cliente, pedido, status, uf_destino, cidade_destino)
            SELECT 1, 'L' || m, 'c', 'PED' || m, 'ativo', 'SP', 'Campinas' FROM {orders} o(m)""",
        f"""INSERT INTO separacao (separacao_lote_id, num_pedido, cod_produto, qtd_saldo, sincronizado_nf, cod_uf)
            SELECT 'L' || m, 'PED' || m, {product.format(old=old)}, k + 1 + k * 0.5, false, 'SP'
            FROM {orders} o(m), generate_series(0, 1) k""",
        # NF old+2 (no lot of its own) named by another order's item: divergent, the item gets the text;
        # a synced separation of lot L1 not yet FATURADO becomes FATURADO when L1 is taken (§10).
        f"""INSERT INTO embarque_itens (embarque_id, cliente, pedido, nota_fiscal, status, uf_destino, cidade_destino)
            VALUES (1, 'c', 'OUTRO', '{100000 + old + 2}', 'ativo', 'SP', 'Campinas')""",
        """INSERT INTO separacao (separacao_lote_id, num_pedido, cod_produto, qtd_saldo, sincronizado_nf, cod_uf, status)
            VALUES ('L1', 'PED1', 'PX', 1, true, 'SP', 'ABERTO')""",
    )


def test_statement_count_of_the_stage_does_not_grow_with_the_nfs(db_url, second_db, tmp_path):
    """10 and 10,000 NFs processed by one incremental run with every kind of write, import and stage."""
    counts, stages = {}, {}
    for scale, url in ((1, db_url), (1_000, second_db)):
        old, new, pending = 6 * scale, 8 * scale, 2 * scale
        day1 = build_dataset(tmp_path / f"d1-{scale}", moves=old, lines_per_move=2)
        assert _run(url, tmp_path, "sync", source=day1)[0] == 0  # no shipments: every NF SEM_LOTE
        _budget_shipments(url, pending, old, new)
        code, m = _run(url, tmp_path, "sync", "--apply-drift", source=_budget_day2(tmp_path / f"d2-{scale}", old, new))
        assert code == 0, m.get("error")
        c, s = m["counts"], m["stock"]
        assert c["inserts"] == 2 * new and c["cancellations"] == 2 and c["new_products"] > 0 and c["drift"] > 0
        assert s["nfs_processed"] == pending + new == 10 * scale
        assert s["nfs_with_lot"] == pending + new // 2 and s["nfs_without_lot"] == new // 2
        assert all(n > 0 for n in s["counts"].values()), s["counts"]
        assert s["counts"]["movements_completed"] == 2 * pending and s["counts"]["inconsistencies_resolved"] == pending
        assert s["counts"]["justifications"] == pending + new // 2  # each lot's second product is short
        assert m["written"]["inconsistencia_faturamento.cancel"] == 2  # the cascade closes the cancelled NFs' ones
        assert sum(s["left_alone"].values()) == 0
        counts[scale], stages[scale] = m["sql_statements"], {**s["seconds"], "nfs": s["nfs_processed"]}
    print("statements per incremental run (every kind of write):", counts[1], "· stage seconds:", stages)
    assert counts[1] == counts[1_000], counts


def test_sigkill_during_the_stage_s_writes_leaves_before_or_after_and_the_next_run_converges(db_url, second_db, tmp_path):
    import signal

    from .test_reliability import _cmd, _kill_at, _state

    old, new, pending = 3_000, 4_000, 1_000
    day1 = build_dataset(tmp_path / "d1", moves=old, lines_per_move=2)
    day2 = _budget_day2(tmp_path / "d2", old, new)
    for url in (db_url, second_db):
        assert _run(url, tmp_path, "sync", source=day1)[0] == 0
        _budget_shipments(url, pending, old, new)
    assert _run(second_db, tmp_path, "sync", source=day2)[0] == 0  # the reference, never interrupted
    after = _state(second_db)
    # + the divergent item that names an NF from the start
    assert scalar(second_db, "SELECT count(*) FROM embarque_itens WHERE nota_fiscal IS NOT NULL") == pending + new // 2 + 1

    before = _state(db_url)
    outcomes = []
    for marker, delay in (("write: stock stage", 0.0), ("write: stock stage", 0.4), ("write: stock stage", 1.2), ("write: commit", 0.0)):
        # --wait: the killed run's backend may hold the lock a moment longer than its client lived.
        status = _kill_at(_cmd(day2, db_url, tmp_path / "killed", "--wait", "60"), marker, delay)
        state = _state(db_url)
        assert state in (before, after), f"half-written database after a kill {delay} s after `{marker}`"
        outcomes.append((marker, delay, status, "after" if state == after else "before"))
        if state == after:
            break
    print("kill outcomes:", outcomes)
    assert any(o[3] == "before" and o[2] == -signal.SIGKILL for o in outcomes), outcomes
    assert _run(db_url, tmp_path, "sync", "--wait", "60", source=day2)[0] == 0
    final = _state(db_url)
    assert {k: v for k, v in final.items() if k != "sync_runs"} == {k: v for k, v in after.items() if k != "sync_runs"}
