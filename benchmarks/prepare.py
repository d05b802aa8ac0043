"""Inputs of the benchmarks, prepared once and reused (a `ready.json` marks a finished one).

Full scenario of N lines (`prepare_full`):
    dataset/      a generated Odoo dataset (DESIGN §3) of about N invoice lines: what the
                  replay server serves for the end-to-end runs
    raw/          the in-domain raw Odoo frames (one Parquet per model): what the DB-side run
                  of our job gets in memory
    lines.parquet the transformed invoice lines (`faturamento_batch.transform`, run once): what
                  the DB-side runs of the old job, dlt and the floor get in memory
    template database ``bench_tmpl_empty``: the schema (`init_db`), no rows

Incremental scenario, a batch of B lines on a table of T lines (`prepare_incremental`):
    A generated dataset is cut into whole moves (NFs):
      - "new"        ≈ 1 % of B lines: moves the database has never seen;
      - "cancelled"  ≈ 0.5 % of B lines: posted moves the database holds, now `cancel`
                     in Odoo (the move's state and write_date change, its lines' do not);
      - "unchanged"  the rest of B: moves the database already holds as they are.
    The database (template ``bench_tmpl_inc_<T>_<B>``) holds T lines: the cancelled and
    unchanged moves as they were before (loaded by our own incremental sync, so
    faturamento_produto, relatorio_faturamento_importado, cadastro_palletizacao and
    sync_state are exactly what the job would have written), plus filler lines of other
    NFs (a second generated dataset, transformed and repeated under other NF numbers,
    bulk-loaded first, so the batch's rows sit at the end of the heap as recent rows do),
    their consolidation rows and products; stock movements, shipment items and
    picking rows point at every cancelled NF and at one NF in ten of the rest.
    dlt loads the same indexed faturamento_produto; a second template
    ``bench_tmpl_inc_<T>_<B>_dlt`` is a copy of the first plus dlt's state tables
    (from a first dlt load of rows already there), and ``dlt_pipeline/`` its local
    pipeline state.
    batch_dataset/  the batch as an Odoo dataset: the replay server serves it, every
                    record inside the window of the incremental run
    raw/, lines.parquet  as for full runs, for the batch
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from faturamento_batch.db.admin import init_db
from faturamento_batch.db.schema import faturamento_produto
from faturamento_batch.generator import generate_dataset
from faturamento_batch.generator.json_text import read_record_texts, write_records
from faturamento_batch.odoo.dataset import DatasetSource
from faturamento_batch.odoo.fields import LINE, MODELS, MOVE, dataset_file
from faturamento_batch.odoo.source import RawBatch
from faturamento_batch.pipeline import run_sync
from faturamento_batch.schemas import LINE_VALUES
from faturamento_batch.settings import Settings
from faturamento_batch.transform import transform

from . import pg
from .frames import SINCE, MemorySource, audit_columns, save_raw, to_arrow

log = logging.getLogger("benchmarks")

VERSION = 4  # bump when what is prepared changes: old inputs are then rebuilt
LINES_PER_RECORD = 0.641  # invoice lines per generated account.move.line record (measured)
EMPTY_TEMPLATE = "bench_tmpl_empty"
NEW_SHARE = 0.01
CANCEL_SHARE = 0.005
CASCADE_SHARE = 10  # one NF in CASCADE_SHARE has stock, shipment and picking rows
FILLER_SOURCE_MAX = 400_000  # invoice lines generated for the filler; repeated under other NF numbers
PREP_TS = datetime(2026, 1, 1, 6, 0, 0)


@dataclass
class Prepared:
    kind: str  # "full" | "incremental"
    name: str
    dir: Path
    info: dict

    @property
    def dataset(self) -> Path:
        return self.dir / ("dataset" if self.kind == "full" else "batch_dataset")

    @property
    def raw(self) -> Path:
        return self.dir / "raw"

    @property
    def lines(self) -> Path:
        return self.dir / "lines.parquet"

    @property
    def template(self) -> str:
        return self.info["template"]

    @property
    def dlt_template(self) -> str | None:
        return self.info.get("dlt_template")

    @property
    def dlt_pipeline(self) -> Path:
        return self.dir / "dlt_pipeline"


def _ready(directory: Path, admin_url: str, templates: tuple[str, ...] = ()) -> dict | None:
    marker = directory / "ready.json"
    if not marker.exists():
        return None
    info = json.loads(marker.read_text())
    if info.get("version") != VERSION:
        return None
    if any(not pg.exists(admin_url, t) for t in (info.get("template"), info.get("dlt_template"), *templates) if t):
        return None
    return info


def records_for(lines: int) -> int:
    """account.move.line records to generate for about `lines` invoice lines."""
    return max(50, math.ceil(lines / LINES_PER_RECORD))


def empty_template(admin_url: str, rebuild: bool = False) -> str:
    """A database with the schema and no rows; fresh full-run databases are clones of it."""
    if rebuild or not pg.exists(admin_url, EMPTY_TEMPLATE):
        pg.drop(admin_url, EMPTY_TEMPLATE)
        init_db(pg.create(admin_url, EMPTY_TEMPLATE))
    return EMPTY_TEMPLATE


def extract_and_transform(dataset: Path) -> tuple[RawBatch, pl.DataFrame]:
    batch = DatasetSource(dataset).extract(None)
    return batch, transform(batch.frames).lines


def prepare_full(work: Path, admin_url: str, lines: int, seed: int = 0, rebuild: bool = False) -> Prepared:
    directory = work / f"full-{lines}-s{seed}"
    template = empty_template(admin_url, rebuild)
    info = None if rebuild else _ready(directory, admin_url)
    if info is None:
        started = time.perf_counter()
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        summary = generate_dataset(directory / "dataset", records_for(lines), seed=seed)
        batch, out = extract_and_transform(directory / "dataset")
        save_raw(batch.frames, directory / "raw")
        out.write_parquet(directory / "lines.parquet")
        info = {
            "version": VERSION, "kind": "full", "target_lines": lines, "seed": seed,
            "odoo_records": summary.lines, "odoo_in_domain": batch.frames[LINE].height,
            "lines": out.height, "nfs": out.get_column("numero_nf").n_unique(),
            "products": out.get_column("cod_produto").n_unique(), "template": template,
            "prepare_seconds": round(time.perf_counter() - started, 1),
        }  # fmt: skip
        (directory / "ready.json").write_text(json.dumps(info, indent=2))
        log.info("prepared %s: %d lines in %.1fs", directory.name, out.height, info["prepare_seconds"])
    info["template"] = template
    return Prepared("full", f"full {_k(lines)}", directory, info)


# -- incremental --------------------------------------------------------------


def _field(texts: pl.Series, pattern: str) -> pl.Series:
    return texts.str.extract(pattern, 1).cast(pl.Int64, strict=False)


def _move_ids_of_lines(texts: pl.Series) -> pl.Series:
    return _field(texts, r'"move_id": \[(\d+),')


def _ids(texts: pl.Series) -> pl.Series:
    return _field(texts, r'^\{"id": (\d+)')


def _pick_moves(lines: pl.DataFrame, batch_lines: int, seed: int) -> dict[str, list[int]]:
    """Whole moves for the new, cancelled and unchanged parts of a batch of `batch_lines` rows."""
    per_move = (
        lines.group_by("odoo_move_id")
        .agg(pl.len().alias("rows"), pl.col("status_nf").first().alias("status"))
        .sort("odoo_move_id")
    )
    rng = np.random.default_rng([seed, batch_lines, 7])
    order = rng.permutation(per_move.height)
    moves = per_move.get_column("odoo_move_id").to_numpy()[order]
    rows = per_move.get_column("rows").to_numpy()[order]
    status = per_move.get_column("status").to_numpy()[order]
    targets = {"new": round(NEW_SHARE * batch_lines), "cancelled": round(CANCEL_SHARE * batch_lines)}
    picked: dict[str, list[int]] = {"new": [], "cancelled": [], "unchanged": []}
    counts = dict.fromkeys(picked, 0)
    for move, n, st in zip(moves.tolist(), rows.tolist(), status.tolist()):
        if sum(counts.values()) >= batch_lines:
            break
        if counts["new"] < targets["new"]:
            part = "new"
        elif counts["cancelled"] < targets["cancelled"]:
            if st != "Lançado":
                continue
            part = "cancelled"
        else:
            part = "unchanged"
        picked[part].append(move)
        counts[part] += n
    if sum(counts.values()) < batch_lines:
        raise RuntimeError(f"the generated dataset has only {sum(counts.values())} lines; {batch_lines} needed")
    return picked


def _write_subset(src: Path, dest: Path, moves: set[int], cancel: set[int], cancel_stamp: str) -> None:
    """`src` restricted to the lines and moves of `moves`; the moves in `cancel` become `cancel`."""
    dest.mkdir(parents=True, exist_ok=True)
    wanted = pl.Series(sorted(moves), dtype=pl.Int64)
    lines = read_record_texts(src / dataset_file(LINE))
    lines = lines.filter(_move_ids_of_lines(lines).is_in(wanted.implode()).fill_null(False))
    move_texts = read_record_texts(src / dataset_file(MOVE))
    move_ids = _ids(move_texts)
    keep = move_ids.is_in(wanted.implode()).fill_null(False)
    move_texts, move_ids = move_texts.filter(keep), move_ids.filter(keep)
    if cancel:
        idx = np.flatnonzero(move_ids.is_in(pl.Series(sorted(cancel), dtype=pl.Int64).implode()).to_numpy())
        new = []
        for text in move_texts.gather(idx).to_list():
            rec = json.loads(text)
            rec.update(state="cancel", write_date=cancel_stamp)
            new.append(json.dumps(rec, ensure_ascii=False))
        move_texts = move_texts.scatter(idx, pl.Series(new, dtype=pl.String))
    write_records(dest / dataset_file(LINE), [lines])
    write_records(dest / dataset_file(MOVE), [move_texts])
    for model in MODELS:
        if model not in (LINE, MOVE):
            shutil.copyfile(src / dataset_file(model), dest / dataset_file(model))
    shutil.copyfile(src / "meta.json", dest / "meta.json")


def _filler(work: Path, rows: int, seed: int) -> pl.DataFrame:
    """`rows` invoice lines of NFs no batch holds: a generated dataset, repeated under other NF numbers."""
    if rows <= 0:
        return pl.DataFrame(schema=LINE_VALUES)
    source_dir = work / f"filler-{min(rows, FILLER_SOURCE_MAX)}-s{seed}"
    parquet = source_dir / "lines.parquet"
    if not parquet.exists():
        shutil.rmtree(source_dir, ignore_errors=True)
        generate_dataset(source_dir / "dataset", records_for(min(rows, FILLER_SOURCE_MAX)), seed=seed + 1000)
        _, lines = extract_and_transform(source_dir / "dataset")
        lines.select(LINE_VALUES.names()).write_parquet(parquet)
        shutil.rmtree(source_dir / "dataset")
    source = pl.read_parquet(parquet)
    copies = math.ceil(rows / source.height)
    parts = [
        source.with_columns(pl.concat_str(pl.lit(f"9{k:03d}"), pl.col("numero_nf")).alias("numero_nf"))
        for k in range(copies)
    ]
    return pl.concat(parts).head(rows)


def _consolidation(lines: pl.DataFrame) -> pl.DataFrame:
    return lines.group_by("numero_nf", maintain_order=True).agg(
        pl.col("data_fatura").first(), pl.col("cnpj_cliente").first(), pl.col("nome_cliente").first(),
        pl.col("valor_produto_faturado").sum().cast(pl.Float64).alias("valor_total"),
        pl.col("peso_total").sum().cast(pl.Float64).alias("peso_bruto"),
        pl.col("municipio").first(), pl.col("estado").first(), pl.col("origem").first(),
        pl.col("incoterm").first(), pl.col("vendedor").first(), pl.col("equipe_vendas").first(),
        (pl.col("status_nf").first() != "Cancelado").alias("ativo"),
        pl.lit(PREP_TS).alias("criado_em"),
    )  # fmt: skip


def _products(lines: pl.DataFrame) -> pl.DataFrame:
    return lines.group_by("cod_produto", maintain_order=True).agg(
        pl.col("nome_produto").first(), pl.col("peso_unitario_produto").first()
    ).select(
        "cod_produto", "nome_produto", pl.lit(1.0).alias("palletizacao"),
        pl.col("peso_unitario_produto").cast(pl.Float64).fill_null(1.0).alias("peso_bruto"),
        pl.lit(True).alias("ativo"), pl.lit(PREP_TS).alias("created_at"), pl.lit(PREP_TS).alias("updated_at"),
    )  # fmt: skip


def _cascade_rows(lines: pl.DataFrame, cancelled_nfs: list[str], seed: int) -> dict[str, pl.DataFrame]:
    """Stock movements, shipment items and picking rows for every cancelled NF and one NF in ten."""
    chosen = pl.col("numero_nf").is_in(pl.Series(cancelled_nfs, dtype=pl.String).implode()) | (
        pl.col("numero_nf").hash(seed) % CASCADE_SHARE == 0
    )
    sel = lines.filter(chosen)
    nfs = sel.group_by("numero_nf", maintain_order=True).agg(
        pl.col("cnpj_cliente").first(), pl.col("nome_cliente").first(), pl.col("origem").first(),
        pl.col("estado").first(), pl.col("municipio").first(),
        pl.col("peso_total").sum().cast(pl.Float64).alias("peso"),
        pl.col("valor_produto_faturado").sum().cast(pl.Float64).alias("valor"),
    ).with_row_index("k")  # fmt: skip
    n_ship = max(1, math.ceil(nfs.height / 20))
    embarques = pl.DataFrame({
        "id": pl.int_range(1, n_ship + 1, eager=True).cast(pl.Int32),
        "numero": pl.int_range(1, n_ship + 1, eager=True).cast(pl.Int32),
    }).with_columns(pl.lit("ativo").alias("status"), pl.lit(date(2026, 1, 10)).alias("data_embarque"),
                    pl.lit(PREP_TS).alias("criado_em"))  # fmt: skip
    nfs = nfs.with_columns(((pl.col("k") % n_ship) + 1).cast(pl.Int32).alias("embarque_id"))
    lote = pl.concat_str(pl.lit("LOTE-"), pl.col("numero_nf"))
    itens = nfs.select(
        "embarque_id", lote.alias("separacao_lote_id"), "cnpj_cliente",
        pl.col("nome_cliente").str.slice(0, 120).alias("cliente"),
        pl.coalesce(pl.col("origem").replace("", None), pl.lit("P")).alias("pedido"),
        pl.col("numero_nf").alias("nota_fiscal"), pl.lit(1, pl.Int32).alias("volumes"), "peso", "valor",
        pl.lit(1.0).alias("pallets"), pl.lit("ativo").alias("status"),
        pl.coalesce("estado", pl.lit("SP")).alias("uf_destino"),
        pl.coalesce("municipio", pl.lit("Sem cidade")).alias("cidade_destino"),
    )  # fmt: skip
    per_line = sel.join(nfs.select("numero_nf", "embarque_id"), on="numero_nf")
    estoque = per_line.select(
        "cod_produto", "nome_produto", pl.col("data_fatura").alias("data_movimentacao"),
        pl.lit("FATURAMENTO").alias("tipo_movimentacao"), pl.lit("VENDA").alias("local_movimentacao"),
        pl.col("qtd_produto_faturado").alias("qtd_movimentacao"), lote.alias("separacao_lote_id"),
        "numero_nf", pl.col("origem").alias("num_pedido"), pl.lit("ODOO").alias("tipo_origem"),
        pl.lit("FATURADO").alias("status_nf"), pl.col("embarque_id").alias("codigo_embarque"),
        pl.lit(PREP_TS).alias("criado_em"), pl.lit(PREP_TS).alias("atualizado_em"),
        pl.lit("legacy").alias("criado_por"), pl.lit("legacy").alias("atualizado_por"), pl.lit(True).alias("ativo"),
    )  # fmt: skip
    separacao = per_line.select(
        lote.alias("separacao_lote_id"), pl.col("origem").alias("num_pedido"),
        pl.col("data_fatura").alias("data_pedido"), pl.col("cnpj_cliente").alias("cnpj_cpf"),
        pl.col("nome_cliente").alias("raz_social_red"), pl.col("municipio").alias("nome_cidade"),
        pl.coalesce("estado", pl.lit("SP")).alias("cod_uf"), "cod_produto", "nome_produto",
        pl.col("qtd_produto_faturado").cast(pl.Float64).alias("qtd_saldo"),
        pl.col("valor_produto_faturado").cast(pl.Float64).alias("valor_saldo"),
        pl.lit(1.0).alias("pallet"), pl.col("peso_total").cast(pl.Float64).alias("peso"),
        pl.col("data_fatura").alias("expedicao"), pl.lit("total").alias("tipo_envio"),
        pl.lit(True).alias("sincronizado_nf"), "numero_nf", pl.lit(PREP_TS).alias("data_sincronizacao"),
        pl.lit("FATURADO").alias("status"), pl.lit(PREP_TS).alias("criado_em"),
    )  # fmt: skip
    return {"embarques": embarques, "embarque_itens": itens, "movimentacao_estoque": estoque, "separacao": separacao}


def _ingest(url: str, tables: dict[str, pl.DataFrame]) -> None:
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(url) as conn, conn.cursor() as cur:
        for name, frame in tables.items():
            if frame.height:
                cur.adbc_ingest(name, to_arrow(frame), mode="append")
        conn.commit()


def _without_line_indexes(url: str) -> None:
    """Drop faturamento_produto's indexes for a bulk load; `init_db` puts them back."""
    pg.execute(url, *(f'DROP INDEX IF EXISTS "{ix.name}"' for ix in faturamento_produto.indexes))


def build_template(url: str, filler: pl.DataFrame, base: RawBatch, cancelled_nfs: list[str], seed: int, work: Path) -> dict:
    """Fill the database at `url`: filler (bulk), then the base moves through our own sync."""
    started = time.perf_counter()
    init_db(url)
    _without_line_indexes(url)
    filler_rows = filler.with_columns(audit_columns(PREP_TS, "legacy"))
    _ingest(url, {
        "faturamento_produto": filler_rows,
        "relatorio_faturamento_importado": _consolidation(filler),
        "cadastro_palletizacao": _products(filler),
    })  # fmt: skip
    init_db(url)  # the indexes, built once over the loaded rows
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        settings = Settings(database_url=url, state_dir=Path(tmp) / "state", artifacts_dir=Path(tmp) / "runs",
                            since=SINCE, max_reject_ratio=1.0)  # fmt: skip
        result = run_sync(settings, source=MemorySource(base))
    inserted = result.run_dir / "inserts.parquet"  # the run's `inserts` part
    base_lines = pl.read_parquet(inserted) if inserted.exists() else pl.DataFrame(schema=LINE_VALUES)
    everything = pl.concat([filler.select(LINE_VALUES.names()), base_lines.select(LINE_VALUES.names())])
    _ingest(url, _cascade_rows(everything, cancelled_nfs, seed))
    pg.execute(url, "SELECT setval(pg_get_serial_sequence('embarques', 'id'), (SELECT max(id) FROM embarques))")
    pg.execute(url, "VACUUM ANALYZE")
    counts = {
        t: int(pg.query(url, f"SELECT count(*) FROM {t}")[0][0])
        for t in ("faturamento_produto", "relatorio_faturamento_importado", "cadastro_palletizacao",
                  "movimentacao_estoque", "embarque_itens", "separacao")
    }  # fmt: skip
    counts["cancelled_nfs_with_cascade_rows"] = pg.query_one(
        url, "SELECT count(DISTINCT nota_fiscal) FROM embarque_itens WHERE nota_fiscal = ANY($1::text[])", (cancelled_nfs,)
    )
    counts["seconds"] = round(time.perf_counter() - started, 1)
    return counts


def prepare_incremental(work: Path, admin_url: str, table_rows: int, batch_rows: int, seed: int = 0,
                        rebuild: bool = False, with_dlt: bool = True) -> Prepared:  # fmt: skip
    directory = work / f"inc-{table_rows}-{batch_rows}-s{seed}"
    template = f"bench_tmpl_inc_{table_rows}_{batch_rows}_s{seed}"
    dlt_template = template + "_dlt" if with_dlt else None
    info = None if rebuild else _ready(directory, admin_url)
    if info is not None and with_dlt and not info.get("dlt_template"):
        info = None
    name = f"incremental {_k(batch_rows)} on {_k(table_rows)}"
    if info is not None:
        return Prepared("incremental", name, directory, info)

    started = time.perf_counter()
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    for t in (template, dlt_template):
        if t:
            pg.drop(admin_url, t)

    # 1. A dataset larger than the batch, cut into new / cancelled / unchanged moves.
    source = directory / "source_dataset"
    generate_dataset(source, records_for(int(batch_rows * 1.3)), seed=seed)
    _, all_lines = extract_and_transform(source)
    picked = _pick_moves(all_lines, batch_rows, seed)
    last_write = max(
        read_record_texts(source / dataset_file(m)).str.extract(r'"write_date": "([^"]+)"', 1).max() or ""
        for m in (LINE, MOVE)
    )
    stamp = (datetime.strptime(last_write, "%Y-%m-%d %H:%M:%S") + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    batch_moves = set(picked["new"]) | set(picked["cancelled"]) | set(picked["unchanged"])
    base_moves = set(picked["cancelled"]) | set(picked["unchanged"])
    _write_subset(source, directory / "batch_dataset", batch_moves, set(picked["cancelled"]), stamp)
    _write_subset(source, directory / "base_dataset", base_moves, set(), stamp)
    shutil.rmtree(source)

    batch, batch_lines = extract_and_transform(directory / "batch_dataset")
    save_raw(batch.frames, directory / "raw")
    batch_lines.write_parquet(directory / "lines.parquet")
    base, base_lines = extract_and_transform(directory / "base_dataset")
    cancelled_nfs = (
        batch_lines.filter(pl.col("odoo_move_id").is_in(picked["cancelled"]))
        .get_column("numero_nf").unique().sort().to_list()
    )  # fmt: skip
    new_lines = batch_lines.join(base_lines.select("numero_nf", "cod_produto"), on=["numero_nf", "cod_produto"], how="anti")

    # 2. The table: filler + the base moves, then the cascade rows.
    filler = _filler(work, table_rows - base_lines.height, seed)
    url = pg.create(admin_url, template)
    counts = build_template(url, filler, base, cancelled_nfs, seed, work)
    shutil.rmtree(directory / "base_dataset")

    info = {
        "version": VERSION, "kind": "incremental", "table_target": table_rows, "batch_target": batch_rows,
        "seed": seed, "template": template,
        "batch": {
            "lines": batch_lines.height, "nfs": batch_lines.get_column("numero_nf").n_unique(),
            "new_lines": new_lines.height, "new_nfs": new_lines.get_column("numero_nf").n_unique(),
            "cancelled_nfs": len(cancelled_nfs),
            "cancelled_lines": batch_lines.filter(pl.col("numero_nf").is_in(cancelled_nfs)).height,
            "unchanged_lines": batch_lines.height - new_lines.height
            - batch_lines.filter(pl.col("numero_nf").is_in(cancelled_nfs)).height,
            "odoo_in_domain": batch.frames[LINE].height,
        },
        "table": counts,
        "cancelled_nfs": cancelled_nfs,
    }  # fmt: skip
    if with_dlt:
        table = pl.concat([filler.select(LINE_VALUES.names()), base_lines.select(LINE_VALUES.names())])
        table.with_columns(audit_columns(PREP_TS, "legacy")).write_parquet(directory / "table_rows.parquet")
        info["dlt_template"] = dlt_template
        info["dlt_table"] = build_dlt_template(admin_url, dlt_template, template, directory)
        (directory / "table_rows.parquet").unlink()
    info["prepare_seconds"] = round(time.perf_counter() - started, 1)
    (directory / "ready.json").write_text(json.dumps(info, indent=2, default=str))
    log.info("prepared %s in %.1fs: %s", directory.name, info["prepare_seconds"], info["batch"])
    return Prepared("incremental", name, directory, info)


def build_dlt_template(admin_url: str, name: str, template: str, directory: Path) -> dict:
    """Our template (the same rows in the same indexed faturamento_produto) plus dlt's state from a first load."""
    import subprocess
    import sys

    url = pg.create(admin_url, name, template=template)
    spec = {"action": "dlt_seed", "url": url, "rows": str(directory / "table_rows.parquet"),
            "pipelines_dir": str(directory / "dlt_pipeline")}  # fmt: skip
    out = subprocess.run([sys.executable, "-m", "benchmarks.worker", json.dumps(spec)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"seeding dlt's tables failed:\n{out.stderr[-4000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    pg.execute(url, "VACUUM ANALYZE")
    return result


def _k(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return f"{n:,}"
