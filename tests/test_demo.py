"""The README's first command: `faturamento-batch demo` on a fresh directory."""

from __future__ import annotations

import tempfile
from pathlib import Path

from faturamento_batch.artifacts import read_manifest
from faturamento_batch.cli import main
from faturamento_batch.commands.demo import DEMO_DB
from faturamento_batch.db.embedded import embedded_url

from .dbutil import read_table


def test_demo_runs_full_then_incremental(tmp_path, monkeypatch, capsys):
    # Outside pytest's 0700 tmp tree: as root, the embedded server runs as an unprivileged user.
    state = Path(tempfile.mkdtemp(prefix="fb-demo-"))
    state.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--state-dir", str(state)]) == 0
    err = capsys.readouterr().err
    assert "== day 1: first run (full) over JSON-RPC ==" in err and "== day 2: incremental run" in err
    # Both runs may start within the same second: order them by their start time.
    first, second = sorted((read_manifest(r) for r in (tmp_path / "runs").iterdir()), key=lambda m: m["started_at"])
    assert first["mode"] == "full" and first["status"] == "success" and first["counts"]["inserts"] > 1000
    assert second["mode"] == "incremental" and second["status"] == "success"
    c = second["counts"]
    assert c["inserts"] > 0 and c["cancellations"] > 0 and c["reactivations"] > 0 and c["drift"] > 0
    assert second["written"]["movimentacao_estoque.cancel"] > 0  # the cascade reached day 1's stock movements

    # The stock stage: nothing picked before day 1, so no NF got a lot; after the seeded
    # picking, day 2 matches the picked NFs, leaves the rest without a lot, flags the one
    # NF on another order's shipment and justifies the short-picked product.
    s1, s2 = first["stock"], second["stock"]
    assert s1["nfs_processed"] > 500 and s1["nfs_with_lot"] == 0 and s1["nfs_without_lot"] == s1["nfs_processed"]
    assert s2["nfs_with_lot"] > 100 and s2["nfs_without_lot"] > 0 and s2["nfs_divergent"] == 1
    w = s2["counts"]
    assert w["movements_completed"] > 100 and w["items_linked"] > 100 and w["separations_synced"] > 100
    assert w["inconsistencies_resolved"] > 100 and w["justifications"] >= 1
    assert "stock:" in err.split("== day 2")[1]  # the summary's stock line
    assert second["odoo"]["total_calls"] > 0 and second["counts"]["odoo_lines"] < first["counts"]["odoo_lines"]

    # In the demo database: the justification is the product picked at twice what was
    # invoiced (production's row: left for the users, the score in the text), the
    # divergence names the other order, and the picked NFs are linked and synced.
    url = embedded_url(state / "pgdata", DEMO_DB)
    (jus,) = read_table(url, "faturamento_parcial_justificativa").rows(named=True)
    assert jus["num_pedido"] == jus["separacao_lote_id"].removeprefix("LOTE-") and jus["motivo_nao_faturamento"] == ""
    assert float(jus["qtd_separada"]) == 2 * float(jus["qtd_faturada"]) and jus["criado_por"] == "faturamento_batch"
    assert float(jus["qtd_saldo"]) == float(jus["qtd_separada"]) - float(jus["qtd_faturada"])
    assert jus["descricao_detalhada"] == "Divergência detectada: Score 50.00%" and jus["classificacao_saldo"] == ""
    # The divergent item's text, and the shipment waiting for a day-2 NF, re-validated.
    shown = err.split("shipment items re-validated or flagged")[1]
    assert "NF_DIVERGENTE: Pedido NF (" in shown and ") != Pedido Item (OUTRO-PEDIDO)" in shown
    assert "pertence ao CNPJ" in shown and " · ok · " in shown
    assert second["written"]["embarque_itens.revalidate_validated"] == 1
    assert second["written"]["embarque_itens.revalidate_divergent"] == 1
    incs = read_table(url, "inconsistencia_faturamento", ["tipo", "resolvida", "acao_tomada", "observacao_resolucao"])
    (divergence,) = incs.filter(incs["tipo"] == "DIVERGENCIA_NF_EMBARQUE").rows(named=True)
    assert divergence["resolvida"] is False and "OUTRO-PEDIDO" in divergence["observacao_resolucao"]
    assert incs.filter(incs["acao_tomada"] == "LOTE_VINCULADO").height == w["inconsistencies_resolved"]
    assert incs.filter(incs["acao_tomada"] == "NF_CANCELADA").height > 0  # day 2's cancellations closed theirs
    items = read_table(url, "embarque_itens", ["pedido", "nota_fiscal", "cliente"])
    linked = items.filter(items["nota_fiscal"].is_not_null() & (items["pedido"] != "OUTRO-PEDIDO")
                          & (items["cliente"] != "Cliente da NF digitada"))  # fmt: skip
    assert linked.height == w["items_linked"]
