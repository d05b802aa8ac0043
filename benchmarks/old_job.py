"""The old job, re-implemented as DESIGN §1 describes it: row by row through the SQLAlchemy ORM.

What it does, on purpose (these are the ten points the internal review listed):
- loads EVERY existing invoice line — (numero_nf, cod_produto) → (id, status) — into a
  Python dict (no bounded key index);
- loops over the incoming rows in Python, NF by NF:
    new key        → ``session.add`` of a mapped object (the ORM's unit of work inserts it);
    its product    → one SELECT per product code not yet seen in this run, then an ORM
                     insert when the code is missing (no batched product look-up);
    status changed → one UPDATE per line (no batched updates);
    NF cancelled   → one UPDATE per table per NF: stock, shipment items, picking (no
                     batched cascade);
    every NF       → one SELECT of its consolidation row, then an ORM update or insert
                     (no skipping of untouched NFs);
- the session autoflushes before each SELECT (the ORM default), and commits once at the end
  (the one thing it is granted: a single transaction);
- end-to-end, it reads Odoo with offset pages (``offset``/``limit``, stopping on a short
  page), fetches the related records of each page again, one model after the other (no
  cache, no parallel fetch), and maps every record with per-row Python.

Statements are counted at the DBAPI cursor (SQLAlchemy's ``before_cursor_execute``;
an ``executemany`` over a list of parameter sets counts each set, as psycopg2 sends one
statement per set; an ``insertmanyvalues`` batch — SQLAlchemy 2's multi-row INSERT … RETURNING
for the ORM's pending objects — is one statement)
plus one per COMMIT. Mapped classes use the job's own `Table`s, so the old job writes the
very same tables, types and indexes.
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

import polars as pl
from sqlalchemy import create_engine, event, select, update
from sqlalchemy.orm import DeclarativeBase, Session

from faturamento_batch.db import schema
from faturamento_batch.odoo.fields import LINE, LINE_DOMAIN, MODELS, MOVE, MUNICIPIO, PARTNER, PRODUCT, TEMPLATE, USER
from faturamento_batch.schemas import LINE_VALUES
from faturamento_batch.transform import STATUS_BY_STATE, STATUS_DEFAULT, UF_BY_STATE_NAME, UFS, WIDTHS

ACTOR = "old_job"
ERRO_NF_CANCELADA = "NF cancelada no Odoo"
STATUS_CLASS = {"Lançado": "posted", "SEM_LOTE": "posted", "Cancelado": "cancel", "Provisório": "draft"}
PAGE = 20_000  # lines per search_read page (the same as the new job's keyset pages)


# -- the ORM models (over the job's own Table objects) ----------------------------------------


class Base(DeclarativeBase):
    pass


class FaturamentoProduto(Base):
    __table__ = schema.faturamento_produto


class RelatorioFaturamentoImportado(Base):
    __table__ = schema.relatorio_faturamento_importado


class CadastroPalletizacao(Base):
    __table__ = schema.cadastro_palletizacao


class Embarque(Base):
    __table__ = schema.embarques


class MovimentacaoEstoque(Base):
    __table__ = schema.movimentacao_estoque


class EmbarqueItem(Base):
    __table__ = schema.embarque_itens


class Separacao(Base):
    __table__ = schema.separacao


# -- the database loop ------------------------------------------------------------------------


def sqlalchemy_url(url: str) -> str:
    """Our libpq URL (``postgresql://…?host=/socket``) for SQLAlchemy + psycopg2."""
    return "postgresql+psycopg2://" + url.split("://", 1)[1]


class StatementCounter:
    def __init__(self, engine):
        self.statements = 0
        self.commits = 0
        event.listen(engine, "before_cursor_execute", self._execute)
        event.listen(engine, "commit", self._commit)

    def _execute(self, conn, cursor, statement, parameters, context, executemany):
        # A list of parameter sets goes through cursor.executemany: psycopg2 sends one statement
        # per set. SQLAlchemy's "insertmanyvalues" batches arrive as ONE statement with one dict.
        many = executemany and isinstance(parameters, (list, tuple)) and parameters
        self.statements += len(parameters) if many else 1

    def _commit(self, conn):
        self.commits += 1

    @property
    def total(self) -> int:
        return self.statements + self.commits


def sync_rows(session: Session, rows: list[dict], now: datetime) -> dict[str, int]:
    """The old loop over transformed rows (dicts with the faturamento_produto columns)."""
    FP, Rel, Prod = FaturamentoProduto, RelatorioFaturamentoImportado, CadastroPalletizacao
    counts = dict.fromkeys(("inserted", "status_updates", "cancelled_nfs", "reactivated_nfs",
                            "product_selects", "new_products", "consolidation_selects"), 0)  # fmt: skip

    # Every existing line into a dict.
    index: dict[tuple[str, str], list] = {}
    for id_, nf, cod, status in session.execute(select(FP.id, FP.numero_nf, FP.cod_produto, FP.status_nf)):
        index[(nf, cod)] = [id_, status]

    by_nf: dict[str, list[dict]] = {}
    for row in rows:
        by_nf.setdefault(row["numero_nf"], []).append(row)

    seen_products: set[str] = set()
    for nf, nf_rows in by_nf.items():
        status = nf_rows[0]["status_nf"]
        new_class = STATUS_CLASS.get(status, status)
        cancelled = reactivated = False
        for row in nf_rows:
            key = (nf, row["cod_produto"])
            hit = index.get(key)
            if hit is None:
                code = row["cod_produto"]
                if code not in seen_products:
                    seen_products.add(code)
                    counts["product_selects"] += 1
                    product = session.scalars(select(Prod).where(Prod.cod_produto == code)).first()
                    if product is None:
                        gross = row.get("odoo_gross_weight")
                        session.add(Prod(
                            cod_produto=code, nome_produto=row.get("odoo_template_name") or row["nome_produto"],
                            palletizacao=1.0, peso_bruto=gross if gross and gross > 0 else 1.0, ativo=True,
                            created_at=now, updated_at=now,
                        ))  # fmt: skip
                        counts["new_products"] += 1
                session.add(FP(**{c: row[c] for c in LINE_VALUES.names()}, created_at=now, updated_at=now,
                               created_by=ACTOR, updated_by=ACTOR))  # fmt: skip
                index[key] = [None, status]
                counts["inserted"] += 1
                continue
            old_class = STATUS_CLASS.get(hit[1], hit[1])
            if old_class != new_class:
                session.execute(
                    update(FP).where(FP.id == hit[0]).values(status_nf=status, updated_at=now, updated_by=ACTOR)
                )
                counts["status_updates"] += 1
                hit[1] = status
                if new_class == "cancel":
                    cancelled = True
                elif old_class == "cancel" and new_class == "posted":
                    reactivated = True
        if cancelled:
            counts["cancelled_nfs"] += 1
            session.execute(
                update(MovimentacaoEstoque)
                .where(MovimentacaoEstoque.numero_nf == nf, MovimentacaoEstoque.ativo.is_distinct_from(False))
                .values(status_nf="CANCELADO", ativo=False, atualizado_em=now, atualizado_por=ACTOR)
            )
            session.execute(
                update(EmbarqueItem).where(EmbarqueItem.nota_fiscal == nf)
                .values(nota_fiscal=None, erro_validacao=ERRO_NF_CANCELADA)
            )  # fmt: skip
            session.execute(
                update(Separacao).where(Separacao.numero_nf == nf).values(numero_nf=None, sincronizado_nf=False)
            )
        counts["reactivated_nfs"] += int(reactivated)

        # Consolidation: every NF of the batch, touched or not.
        counts["consolidation_selects"] += 1
        rel = session.scalars(select(Rel).where(Rel.numero_nf == nf)).first()
        head = nf_rows[0]
        ativo = status != "Cancelado"
        values = {
            "data_fatura": head["data_fatura"], "cnpj_cliente": head["cnpj_cliente"],
            "nome_cliente": head["nome_cliente"], "municipio": head["municipio"], "estado": head["estado"],
            "origem": head["origem"], "incoterm": head["incoterm"], "vendedor": head["vendedor"],
            "equipe_vendas": head["equipe_vendas"],
            "valor_total": float(sum(r["valor_produto_faturado"] for r in nf_rows)),
            "peso_bruto": float(sum(r["peso_total"] or 0 for r in nf_rows)),
        }  # fmt: skip
        if rel is None:
            session.add(Rel(numero_nf=nf, **values, ativo=ativo, inativado_em=None if ativo else now,
                            inativado_por=None if ativo else ACTOR, criado_em=now))  # fmt: skip
        else:
            for name, value in values.items():
                setattr(rel, name, value)
            if rel.ativo and not ativo:
                rel.ativo, rel.inativado_em, rel.inativado_por = False, now, ACTOR
            elif not rel.ativo and ativo:
                rel.ativo, rel.inativado_em, rel.inativado_por = True, None, None
    session.commit()
    return counts


# -- Odoo, the old way --------------------------------------------------------------------------


class OldOdoo:
    """JSON-RPC over the same transport as the new job; offset pages, records as Python dicts."""

    def __init__(self, odoo: dict):
        from faturamento_batch.odoo.transport import Credentials, JsonRpcTransport

        creds = Credentials(odoo["url"], odoo["db"], odoo["login"], odoo.get("password"))
        self.transport = JsonRpcTransport(creds, timeout=600.0)
        self.calls = 0
        self.bytes = 0

    def login(self) -> None:
        self.calls += 1
        self.transport.authenticate()

    def search_read(self, model: str, domain: list, fields: list[str], **kwargs) -> list[dict]:
        self.calls += 1
        body = self.transport.call(model, "search_read", [domain], {"fields": fields, "context": {"active_test": False}, **kwargs})
        self.bytes += len(body)
        return json.loads(body)["result"]

    def by_ids(self, model: str, ids) -> dict[int, dict]:
        ids = sorted({i for i in ids if i})
        if not ids:
            return {}
        return {r["id"]: r for r in self.search_read(model, [("id", "in", ids)], list(MODELS[model]))}


def _m2o_id(value) -> int | None:
    return value[0] if value else None


def _m2o_name(value) -> str | None:
    return value[1] if value else None


def fetch_and_map(odoo: OldOdoo, since: datetime | None) -> tuple[list[dict], int]:
    """Every in-domain line, page by page, mapped row by row; returns (rows, rejected)."""
    domain = list(LINE_DOMAIN)
    if since is not None:
        stamp = since.strftime("%Y-%m-%d %H:%M:%S")
        domain += ["|", ("write_date", ">=", stamp), ("move_id.write_date", ">=", stamp)]
    odoo.login()
    rows: dict[tuple[str, str], dict] = {}
    moves_of_nf: dict[str, set[int]] = {}
    rejected = 0
    offset = 0
    while True:
        page = odoo.search_read(LINE, domain, list(MODELS[LINE]), offset=offset, limit=PAGE, order="id asc")
        offset += len(page)
        moves = odoo.by_ids(MOVE, (_m2o_id(r["move_id"]) for r in page))
        partners = odoo.by_ids(PARTNER, (_m2o_id(r["partner_id"]) for r in page))
        products = odoo.by_ids(PRODUCT, (_m2o_id(r["product_id"]) for r in page))
        templates = odoo.by_ids(TEMPLATE, (_m2o_id(p["product_tmpl_id"]) for p in products.values()))
        municipios = odoo.by_ids(MUNICIPIO, (_m2o_id(p["l10n_br_municipio_id"]) for p in partners.values()))
        users = odoo.by_ids(USER, [_m2o_id(m["invoice_user_id"]) for m in moves.values()]
                            + [_m2o_id(p["user_id"]) for p in partners.values()])  # fmt: skip
        for line in page:
            row = map_line(line, moves, partners, products, templates, municipios, users)
            if row is None:
                rejected += 1
                continue
            moves_of_nf.setdefault(row["numero_nf"], set()).add(row["odoo_move_id"])
            key = (row["numero_nf"], row["cod_produto"])
            if key in rows:
                _merge(rows[key], row)
            else:
                rows[key] = row
        if len(page) < PAGE:
            break
    out = []
    for row in rows.values():
        if len(moves_of_nf[row["numero_nf"]]) > 1:
            rejected += row.pop("_n")
            continue
        if row["_n"] > 1:
            row["preco_produto_faturado"] = _dec(row.pop("_px") / row["qtd_produto_faturado"], "0.0001")
        row.pop("_n", None)
        row.pop("_px", None)
        out.append(row)
    return out, rejected


def _merge(into: dict, row: dict) -> None:
    into["_n"] += 1
    into["_px"] += row["_px"]
    for c in ("qtd_produto_faturado", "valor_produto_faturado", "peso_total"):
        into[c] = (into[c] or Decimal(0)) + (row[c] or Decimal(0))


def _clean(value) -> str | None:
    if not isinstance(value, str):
        return None if value is False or value is None else str(value)
    text = value.replace("\x00", "").strip()
    return text or None


def _cut(value: str | None, column: str) -> str | None:
    return value[: WIDTHS[column]].rstrip() if value is not None else None


def _dec(value, quantum: str) -> Decimal | None:
    try:
        return Decimal(repr(value) if isinstance(value, float) else value).quantize(Decimal(quantum), ROUND_HALF_UP)
    except (InvalidOperation, TypeError, ValueError):
        return None


def _uf_from_state(name) -> str | None:
    name = _clean(name)
    if not name:
        return None
    name = re.sub(r"\s*\([^()]*\)$", "", name)
    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    plain = re.sub(r"\s+", " ", plain.lower())
    if plain in UF_BY_STATE_NAME:
        return UF_BY_STATE_NAME[plain]
    return plain.upper() if plain.upper() in UFS else None


_PAREN = re.compile(r"^(.*\S)\s*\(\s*([A-Za-z]{2})\s*\)$")


def map_line(line, moves, partners, products, templates, municipios, users) -> dict | None:
    """One account.move.line → one invoice-line dict (DESIGN §4), or None when rejected."""
    product = products.get(_m2o_id(line["product_id"]))
    move = moves.get(_m2o_id(line["move_id"]))
    if product is None or move is None:
        return None
    qty = line["quantity"]
    if not qty or qty <= 0:
        return None
    nf = _cut(_clean(move["l10n_br_numero_nota_fiscal"]), "numero_nf")
    template = templates.get(_m2o_id(product["product_tmpl_id"])) or {}
    code = _cut(_clean(template.get("default_code")), "cod_produto")
    if nf is None or code is None:
        return None
    raw_date = move["date"] or line["date"]
    try:
        data_fatura = date.fromisoformat(raw_date) if raw_date else None
    except ValueError:
        data_fatura = None
    if data_fatura is None:
        return None
    partner = partners.get(_m2o_id(line["partner_id"])) or {}
    municipio = municipios.get(_m2o_id(partner.get("l10n_br_municipio_id"))) or {}
    muni_name = _clean(municipio.get("name")) or _clean(_m2o_name(partner.get("l10n_br_municipio_id")))
    city, uf = muni_name, None
    if muni_name and (m := _PAREN.match(muni_name)):
        city, uf = _clean(m.group(1)) or muni_name, m.group(2).upper()
    uf = uf or _uf_from_state(_m2o_name(municipio.get("state_id"))) or _uf_from_state(_m2o_name(partner.get("state_id")))
    if uf is not None and not re.fullmatch(r"[A-Z]{2}", uf):
        uf = None
    user = users.get(_m2o_id(move["invoice_user_id"])) or {}
    partner_user = users.get(_m2o_id(partner.get("user_id"))) or {}
    incoterm = _clean(_m2o_name(move["invoice_incoterm_id"]))
    inside = re.search(r"\[([^\]]*)\]", incoterm) if incoterm else None
    qtd = _dec(qty, "0.001")
    peso_unit = _dec(template.get("gross_weight"), "0.001") if template.get("gross_weight") is not None else None
    nfe = line["l10n_br_total_nfe"]
    valor = _dec(nfe if nfe else line["price_total"], "0.01")
    preco = _dec(line["price_unit"], "0.0001")
    if qtd is None or valor is None or preco is None:
        return None
    nome_produto = (_clean(template.get("name")) or _clean(product.get("name"))
                    or _clean(_m2o_name(line["product_id"])) or "")  # fmt: skip
    return {
        "numero_nf": nf,
        "data_fatura": data_fatura,
        "cnpj_cliente": _cut(_clean(move["l10n_br_cnpj"]) or _clean(partner.get("l10n_br_cnpj")) or "", "cnpj_cliente"),
        "nome_cliente": _cut(_clean(move["invoice_partner_display_name"]) or _clean(partner.get("name"))
                             or _clean(_m2o_name(line["partner_id"])) or "", "nome_cliente"),  # fmt: skip
        "municipio": _cut(city, "municipio"),
        "estado": uf,
        "vendedor": _cut(_clean(user.get("name")) or _clean(_m2o_name(move["invoice_user_id"]))
                         or _clean(partner_user.get("name")) or _clean(_m2o_name(partner.get("user_id"))), "vendedor"),  # fmt: skip
        "equipe_vendas": _cut(_clean(_m2o_name(move["team_id"])), "equipe_vendas"),
        "incoterm": _cut((_clean(inside.group(1)) if inside else None) or incoterm, "incoterm"),
        "cod_produto": code,
        "nome_produto": _cut(nome_produto, "nome_produto"),
        "qtd_produto_faturado": qtd,
        "preco_produto_faturado": preco,
        "valor_produto_faturado": valor,
        "peso_unitario_produto": peso_unit,
        "peso_total": (qtd * peso_unit).quantize(Decimal("0.001"), ROUND_HALF_UP) if peso_unit is not None else None,
        "origem": _cut(_clean(move["invoice_origin"]) or "", "origem"),
        "status_nf": STATUS_BY_STATE.get(_clean(move["state"]) or "", STATUS_DEFAULT),
        "odoo_move_id": move["id"],
        "odoo_template_name": (nome_produto or "")[:255].rstrip(),
        "odoo_gross_weight": template.get("gross_weight"),
        "_n": 1,
        "_px": preco * qtd,
    }


# -- the benchmark contender --------------------------------------------------------------------


def prepare(spec: dict):
    if spec["mode"] == "db":
        return pl.read_parquet(Path(spec["lines"])).to_dicts()
    return None


def run(rows, spec: dict) -> dict:
    from .frames import SINCE

    engine = create_engine(sqlalchemy_url(spec["url"]))
    counter = StatementCounter(engine)
    detail: dict = {}
    odoo_calls = 0
    if spec["mode"] == "e2e":
        odoo = OldOdoo(spec["odoo"])
        rows, rejected = fetch_and_map(odoo, SINCE if spec["kind"] == "incremental" else None)
        odoo_calls = odoo.calls
        detail.update(rejected=rejected, odoo_bytes=odoo.bytes)
    with Session(engine) as session:
        detail.update(sync_rows(session, rows, datetime.now()))
    engine.dispose()
    detail["rows"] = len(rows)
    return {"statements": counter.total, "odoo_calls": odoo_calls, "detail": detail}
