"""The logistics tables the job reads and writes, and the job's own state tables.

Names and types are those the logistics system already uses (DESIGN appendix),
so the job can point at the real database; `create_all` with `checkfirst`
creates only what is missing. Columns the job adds are nullable and prefixed
`odoo_` (none so far).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

metadata = MetaData()

faturamento_produto = Table(
    "faturamento_produto",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("numero_nf", String(20), nullable=False),
    Column("data_fatura", Date, nullable=False),
    Column("cnpj_cliente", String(20), nullable=False),
    Column("nome_cliente", String(255), nullable=False),
    Column("municipio", String(100)),
    Column("estado", String(2)),
    Column("vendedor", String(100)),
    Column("equipe_vendas", String(100)),
    Column("incoterm", String(20)),
    Column("cod_produto", String(50), nullable=False),
    Column("nome_produto", String(200), nullable=False),
    Column("qtd_produto_faturado", Numeric(15, 3), nullable=False),
    Column("preco_produto_faturado", Numeric(15, 4), nullable=False),
    Column("valor_produto_faturado", Numeric(15, 2), nullable=False),
    Column("peso_unitario_produto", Numeric(15, 3)),
    Column("peso_total", Numeric(15, 3)),
    Column("origem", String(20)),
    Column("status_nf", String(20), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("created_by", String(100)),
    Column("updated_by", String(100)),
    # Unique indexes rather than table constraints: `CREATE … IF NOT EXISTS` can
    # add them to the real database, whose tables already exist.
    Index("uq_faturamento_produto_nf_produto", "numero_nf", "cod_produto", unique=True),
    Index("ix_faturamento_produto_cliente_data", "cnpj_cliente", "data_fatura"),
    Index("ix_faturamento_produto_origem", "origem"),
    Index("ix_faturamento_produto_created_status", "created_at", "status_nf"),
    # The stock stage's pending NFs (DESIGN §9): few rows are SEM_LOTE at any time.
    Index("ix_faturamento_produto_sem_lote", "numero_nf", postgresql_where=text("status_nf = 'SEM_LOTE'")),
    # Every run's stock catch-up (DESIGN §10): the posted lines of the last days.
    Index("ix_faturamento_produto_data_fatura", "data_fatura"),
)

relatorio_faturamento_importado = Table(
    "relatorio_faturamento_importado",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("numero_nf", String(20), nullable=False),
    Column("data_fatura", Date),
    Column("cnpj_cliente", String(20)),
    Column("nome_cliente", String(255)),
    Column("valor_total", Float),
    Column("peso_bruto", Float),
    Column("cnpj_transportadora", String(20)),
    Column("nome_transportadora", String(255)),
    Column("municipio", String(100)),
    Column("estado", String(2)),
    Column("codigo_ibge", String(10)),
    Column("origem", String(50)),
    Column("incoterm", String(20)),
    Column("vendedor", String(100)),
    Column("equipe_vendas", String(100)),
    Column("ativo", Boolean, nullable=False, server_default=text("true")),
    Column("inativado_em", DateTime),
    Column("inativado_por", String(100)),
    Column("criado_em", DateTime),
    Index("uq_relatorio_faturamento_importado_nf", "numero_nf", unique=True),
)

cadastro_palletizacao = Table(
    "cadastro_palletizacao",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("cod_produto", String(50), nullable=False),
    Column("nome_produto", String(255), nullable=False),
    Column("palletizacao", Float, nullable=False),
    Column("peso_bruto", Float, nullable=False),
    Column("altura_cm", Numeric(10, 2)),
    Column("largura_cm", Numeric(10, 2)),
    Column("comprimento_cm", Numeric(10, 2)),
    Column("tipo_embalagem", String(50)),
    Column("tipo_materia_prima", String(50)),
    Column("categoria_produto", String(50)),
    Column("subcategoria", String(50)),
    Column("linha_producao", String(50)),
    Column("ativo", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Index("uq_cadastro_palletizacao_cod_produto", "cod_produto", unique=True),
)

embarques = Table(
    "embarques",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("numero", Integer),
    Column("status", String(20), nullable=False, server_default=text("'ativo'")),
    Column("data_embarque", Date),
    Column("criado_em", DateTime),
)

movimentacao_estoque = Table(
    "movimentacao_estoque",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("cod_produto", String(50), nullable=False),
    Column("nome_produto", String(200), nullable=False),
    Column("data_movimentacao", Date, nullable=False),
    Column("tipo_movimentacao", String(50), nullable=False),
    Column("local_movimentacao", String(50), nullable=False),
    Column("qtd_movimentacao", Numeric(15, 3), nullable=False),
    Column("separacao_lote_id", String(50)),
    Column("numero_nf", String(20)),
    Column("num_pedido", String(50)),
    Column("tipo_origem", String(20)),
    Column("status_nf", String(20)),
    Column("codigo_embarque", Integer, ForeignKey("embarques.id", ondelete="SET NULL")),
    Column("observacao", Text),
    Column("criado_em", DateTime, nullable=False),
    Column("atualizado_em", DateTime, nullable=False),
    Column("criado_por", String(100)),
    Column("atualizado_por", String(100)),
    Column("ativo", Boolean, server_default=text("true")),
    Index("ix_movimentacao_estoque_numero_nf", "numero_nf"),
    Index("ix_movimentacao_estoque_nf_status", "numero_nf", "status_nf"),
)

embarque_itens = Table(
    "embarque_itens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("embarque_id", Integer, ForeignKey("embarques.id"), nullable=False),
    Column("separacao_lote_id", String(50)),
    Column("cnpj_cliente", String(20)),
    Column("cliente", String(120), nullable=False),
    Column("pedido", String(50), nullable=False),
    Column("nota_fiscal", String(20)),
    Column("volumes", Integer),
    Column("peso", Float),
    Column("valor", Float),
    Column("pallets", Float),
    Column("status", String(20), nullable=False, server_default=text("'ativo'")),
    Column("uf_destino", String(2), nullable=False),
    Column("cidade_destino", String(100), nullable=False),
    Column("erro_validacao", String(500)),
    Index("ix_embarque_itens_nota_fiscal", "nota_fiscal"),
    Index("ix_embarque_itens_pedido", "pedido"),
    Index("ix_embarque_itens_separacao_lote_id", "separacao_lote_id"),
)

separacao = Table(
    "separacao",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("separacao_lote_id", String(50)),
    Column("num_pedido", String(50)),
    Column("data_pedido", Date),
    Column("cnpj_cpf", String(20)),
    Column("raz_social_red", String(255)),
    Column("nome_cidade", String(100)),
    Column("cod_uf", String(2), nullable=False),
    Column("cod_produto", String(50)),
    Column("nome_produto", String(255)),
    Column("qtd_saldo", Float),
    Column("valor_saldo", Float),
    Column("pallet", Float),
    Column("peso", Float),
    Column("expedicao", Date),
    Column("tipo_envio", String(10), server_default=text("'total'")),
    Column("sincronizado_nf", Boolean, server_default=text("false")),
    Column("numero_nf", String(20)),
    Column("data_sincronizacao", DateTime),
    Column("status", String(20), nullable=False, server_default=text("'ABERTO'")),
    Column("criado_em", DateTime),
    Index("ix_separacao_numero_nf_sincronizado", "numero_nf", "sincronizado_nf"),
    Index("ix_separacao_lote_pedido_sincronizado", "separacao_lote_id", "num_pedido", "sincronizado_nf"),
)

# Written by the stock stage (DESIGN §9): what did not match, one open row per (NF, tipo).
inconsistencia_faturamento = Table(
    "inconsistencia_faturamento",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tipo", String(50), nullable=False),
    Column("numero_nf", String(20), nullable=False),
    Column("num_pedido", String(50)),
    Column("cod_produto", String(50), nullable=False),
    Column("qtd_faturada", Numeric(15, 3), nullable=False),
    Column("saldo_disponivel", Numeric(15, 3)),
    Column("qtd_excesso", Numeric(15, 3)),
    Column("resolvida", Boolean, server_default=text("false")),
    Column("acao_tomada", String(50)),
    Column("observacao_resolucao", Text),
    Column("detectada_em", DateTime, nullable=False),
    Column("resolvida_em", DateTime),
    Column("resolvida_por", String(100)),
    Index("ix_inconsistencia_faturamento_nf_tipo", "numero_nf", "tipo"),
)

# Written by the stock stage: a product separated and invoiced in different quantities.
faturamento_parcial_justificativa = Table(
    "faturamento_parcial_justificativa",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("separacao_lote_id", String(50), nullable=False),
    Column("num_pedido", String(50), nullable=False),
    Column("cod_produto", String(50), nullable=False),
    Column("numero_nf", String(20), nullable=False),
    Column("qtd_separada", Numeric(15, 3), nullable=False),
    Column("qtd_faturada", Numeric(15, 3), nullable=False),
    Column("qtd_saldo", Numeric(15, 3), nullable=False),
    Column("motivo_nao_faturamento", String(20), nullable=False),
    Column("descricao_detalhada", Text),
    Column("evidencias_anexas", String(500)),
    Column("classificacao_saldo", String(20), nullable=False),
    Column("acao_comercial", String(20)),
    Column("data_acao", DateTime),
    Column("executado_por", String(100)),
    Column("observacoes_acao", Text),
    Column("criado_em", DateTime, nullable=False),
    Column("criado_por", String(100), nullable=False),
    Index("ix_faturamento_parcial_justificativa_lote_pedido", "separacao_lote_id", "num_pedido"),
)

sync_state = Table(
    "sync_state",
    metadata,
    Column("job", String(100), primary_key=True),
    Column("cursor", DateTime),
    Column("last_run_id", String(64)),
    Column("updated_at", DateTime, nullable=False, server_default=func.now()),
    # The stock catch-up's cut-over date when none is configured (DESIGN §10): the day of the
    # job's first run on this database, written with that run's record, kept ever after.
    Column("stock_since", Date),
)

sync_runs = Table(
    "sync_runs",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("run_id", String(64), nullable=False, unique=True),
    Column("job", String(100), nullable=False),
    Column("mode", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime, nullable=False),
    Column("cursor_from", DateTime),
    Column("cursor_to", DateTime),
    Column("counts", JSON().with_variant(postgresql.JSONB(), "postgresql")),
    Column("timings", JSON().with_variant(postgresql.JSONB(), "postgresql")),
    Column("error", Text),
    Column("artifacts_dir", Text),
)

# NFs PostgreSQL refused and the run left out (DESIGN §12): one row per (job, NF), kept after
# release or drop as the NF's history. `odoo_move_ids`: the moves to fetch again by id.
sync_quarantine = Table(
    "sync_quarantine",
    metadata,
    Column("job", String(100), primary_key=True),
    Column("numero_nf", String(20), primary_key=True),
    Column("run_id", String(64), nullable=False),  # the run that found it (this time)
    Column("sqlstate", String(5)),
    Column("message", Text),  # the server's message, secrets scrubbed
    Column("first_seen", DateTime, nullable=False),
    Column("last_tried", DateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_try", DateTime, nullable=False),
    Column("state", String(20), nullable=False),  # quarantined · released · dropped
    Column("released_at", DateTime),
    Column("odoo_move_ids", JSON().with_variant(postgresql.JSONB(), "postgresql")),
)

# Downstream events (DESIGN §11): a transactional outbox the run writes in its own transaction.
# The id is an identity (no sequence grant to give the job); the job's runs are serialized by
# its advisory lock, so ids grow in commit order per job — but delivery never relies on that:
# each event gets one `sync_event_deliveries` row per consumer registered when it was written,
# in the same statement, so a consumer sees every committed event whatever its id.
sync_events = Table(
    "sync_events",
    metadata,
    Column("id", BigInteger, Identity(always=False), primary_key=True),
    Column("run_id", String(64), nullable=False),
    Column("job", String(100), nullable=False),
    Column("created_at", DateTime, nullable=False),  # the run's timestamp
    Column("numero_nf", String(20), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("origem", String(50)),
    Column("cnpj_cliente", String(20)),
    Column("payload", JSON().with_variant(postgresql.JSONB(), "postgresql")),
    Index("ix_sync_events_run", "run_id"),
    Index("ix_sync_events_created", "created_at", "id"),
)

sync_event_consumers = Table(
    "sync_event_consumers",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("registered_at", DateTime, nullable=False, server_default=func.localtimestamp()),
    # The highest event id committed at registration: the consumer sees only later events.
    Column("registered_after_id", BigInteger, nullable=False),
)

# One row per (consumer, event) still to deliver or delivered: claimed_until is the lease of a
# claim-then-process-elsewhere client; acked_at is set by the ack, in the consumer's transaction.
sync_event_deliveries = Table(
    "sync_event_deliveries",
    metadata,
    Column("consumer", String(100), ForeignKey("sync_event_consumers.name", ondelete="CASCADE"), primary_key=True),
    Column("event_id", BigInteger, primary_key=True),
    Column("numero_nf", String(20), nullable=False),  # per-NF order without a join
    Column("claimed_until", DateTime),
    Column("claims", Integer, nullable=False, server_default=text("0")),
    Column("acked_at", DateTime),
    # The queue: only what is still to deliver is indexed, so acked history costs nothing.
    Index("ix_sync_event_deliveries_pending", "consumer", "event_id", postgresql_where=text("acked_at IS NULL")),
    Index("ix_sync_event_deliveries_pending_nf", "consumer", "numero_nf", "event_id",
          postgresql_where=text("acked_at IS NULL")),
    Index("ix_sync_event_deliveries_event", "event_id"),
)

LOGISTICS_TABLES = (
    faturamento_produto,
    relatorio_faturamento_importado,
    cadastro_palletizacao,
    embarques,
    movimentacao_estoque,
    embarque_itens,
    separacao,
    inconsistencia_faturamento,
    faturamento_parcial_justificativa,
)
# The stock module's own tables: a database without it runs `sync --no-stock`.
STOCK_TABLES = (inconsistencia_faturamento, faturamento_parcial_justificativa)
# The job's own tables: `init-db` creates these on a database that already holds the logistics
# tables (DESIGN §10), never a logistics table the application does not have (it may have
# dropped it). Events and quarantine tables join this list.
EVENT_TABLES = (sync_events, sync_event_consumers, sync_event_deliveries)
JOB_TABLES = (sync_state, sync_runs, sync_quarantine, *EVENT_TABLES)


def create_table_sql(table: Table) -> str:
    """`CREATE TABLE IF NOT EXISTS` for one of our tables, compiled for PostgreSQL."""
    return str(CreateTable(table, if_not_exists=True).compile(dialect=postgresql.dialect())).strip()


def create_index_sql(index: Index) -> str:
    """`CREATE [UNIQUE] INDEX IF NOT EXISTS` for one of our indexes, compiled for PostgreSQL."""
    return str(CreateIndex(index, if_not_exists=True).compile(dialect=postgresql.dialect())).strip()


def ddl_statements() -> list[str]:
    """CREATE TABLE / CREATE INDEX statements for every table, compiled for PostgreSQL.

    Each is guarded with IF NOT EXISTS so `init-db` can run against the real
    logistics database, which already has most of these tables.
    """
    out: list[str] = []
    for table in metadata.sorted_tables:
        out.append(create_table_sql(table))
        out += [create_index_sql(index) for index in sorted(table.indexes, key=lambda i: i.name or "")]
    return out + list(UPGRADES)


# Columns added to the job's own tables after they first shipped: a database whose tables an
# older `init-db` created gets them too (CREATE TABLE IF NOT EXISTS leaves an existing table as is).
UPGRADES: tuple[str, ...] = (
    "ALTER TABLE sync_state ADD COLUMN IF NOT EXISTS stock_since DATE",
)
