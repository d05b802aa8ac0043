"""A database shaped like production today (legacy-rules.md §9), written from that description.

Not our schema: the logistics application's, as its models and hand-run scripts left it
in July 2026 — `inconsistencia_faturamento` dropped; `faturamento_produto.revertida`
NOT NULL DEFAULT false, `nota_credito_id`, `data_reversao`; the non-unique
`idx_faturamento_nf_produto`; NOT NULL columns whose default is only in the application's
models (SQLAlchemy `default=`), so absent from the database: an inserter must supply
them (`relatorio_faturamento_importado.ativo`, `cadastro_palletizacao.ativo/created_at/
updated_at`, `movimentacao_estoque.criado_em/atualizado_em`, `embarques.criado_em/
criado_por`, `embarque_itens.status`, `separacao.status`); `embarques.status` nullable
without a default; `separacao.sincronizado_nf` nullable; the new columns with their server
defaults; `carteira_principal` and `entregas_monitoradas` (involved columns only); the
legacy index names, `ix_<table>_<col>` for the models' `index=True`.

Left out on purpose: foreign keys to tables this job never touches (transportadoras,
cotacoes, pedido_compras, recebimentos) — plain integer columns here — and the 54 other
columns of `carteira_principal`. Test code builds it (`create_prod_schema`); `init-db`
then adds the job's own tables, as it would in production.
"""

from __future__ import annotations

from .dbutil import execute

PROD_DDL = [
    """
CREATE TABLE faturamento_produto (
  id serial PRIMARY KEY,
  numero_nf varchar(20) NOT NULL, data_fatura date NOT NULL, cnpj_cliente varchar(20) NOT NULL,
  nome_cliente varchar(255) NOT NULL, municipio varchar(100), estado varchar(2), vendedor varchar(100),
  equipe_vendas varchar(100), incoterm varchar(20), cod_produto varchar(50) NOT NULL,
  nome_produto varchar(200) NOT NULL, qtd_produto_faturado numeric(15,3) NOT NULL,
  preco_produto_faturado numeric(15,4) NOT NULL, valor_produto_faturado numeric(15,2) NOT NULL,
  peso_unitario_produto numeric(15,3), peso_total numeric(15,3), origem varchar(20),
  status_nf varchar(20) NOT NULL,
  revertida boolean NOT NULL DEFAULT false, nota_credito_id integer, data_reversao timestamp,
  created_at timestamp NOT NULL, updated_at timestamp NOT NULL, created_by varchar(100), updated_by varchar(100))""",
    "CREATE INDEX ix_faturamento_produto_numero_nf ON faturamento_produto (numero_nf)",
    "CREATE INDEX ix_faturamento_produto_data_fatura ON faturamento_produto (data_fatura)",
    "CREATE INDEX ix_faturamento_produto_cnpj_cliente ON faturamento_produto (cnpj_cliente)",
    "CREATE INDEX ix_faturamento_produto_cod_produto ON faturamento_produto (cod_produto)",
    "CREATE INDEX ix_faturamento_produto_origem ON faturamento_produto (origem)",
    "CREATE INDEX ix_faturamento_produto_revertida ON faturamento_produto (revertida)",
    "CREATE INDEX idx_faturamento_nf_produto ON faturamento_produto (numero_nf, cod_produto)",  # NOT unique
    "CREATE INDEX idx_faturamento_cliente_data ON faturamento_produto (cnpj_cliente, data_fatura)",
    "CREATE INDEX idx_faturamento_pedido ON faturamento_produto (origem)",
    "CREATE INDEX idx_faturamento_origem_produto ON faturamento_produto (origem, cod_produto)",
    "CREATE INDEX idx_faturamento_status ON faturamento_produto (status_nf)",
    "CREATE INDEX idx_faturamento_revertida ON faturamento_produto (revertida)",
    "CREATE INDEX idx_faturamento_equipe_status ON faturamento_produto (equipe_vendas, status_nf)",
    "CREATE INDEX idx_faturamento_nf_equipe ON faturamento_produto (numero_nf, equipe_vendas)",
    """
CREATE TABLE relatorio_faturamento_importado (
  id serial PRIMARY KEY, numero_nf varchar(20) NOT NULL, data_fatura date, cnpj_cliente varchar(20),
  nome_cliente varchar(255), valor_total float, peso_bruto float, cnpj_transportadora varchar(20),
  nome_transportadora varchar(255), municipio varchar(100), estado varchar(2), codigo_ibge varchar(10),
  origem varchar(50), incoterm varchar(20), vendedor varchar(100), equipe_vendas varchar(100),
  ativo boolean NOT NULL, inativado_em timestamp, inativado_por varchar(100), criado_em timestamp,
  ultima_atualizacao timestamp DEFAULT CURRENT_TIMESTAMP)""",
    "CREATE UNIQUE INDEX ix_relatorio_faturamento_importado_numero_nf ON relatorio_faturamento_importado (numero_nf)",
    "CREATE INDEX idx_relatorio_ativo ON relatorio_faturamento_importado (ativo)",
    "CREATE INDEX idx_relatorio_cnpj ON relatorio_faturamento_importado (cnpj_cliente)",
    """
CREATE TABLE cadastro_palletizacao (
  id serial PRIMARY KEY, cod_produto varchar(50) NOT NULL, nome_produto varchar(255) NOT NULL,
  codigo_ean varchar(50), palletizacao float NOT NULL, peso_bruto float NOT NULL,
  altura_cm numeric(10,2), largura_cm numeric(10,2), comprimento_cm numeric(10,2),
  tipo_embalagem varchar(50), tipo_materia_prima varchar(50), categoria_produto varchar(50),
  subcategoria varchar(50), linha_producao varchar(50),
  produto_comprado boolean NOT NULL DEFAULT false, produto_produzido boolean NOT NULL DEFAULT false,
  produto_vendido boolean NOT NULL DEFAULT true, lead_time integer, lote_minimo_compra integer,
  disparo_producao varchar(3), custo_produto numeric(15,4),
  ativo boolean NOT NULL, created_at timestamp NOT NULL, updated_at timestamp NOT NULL)""",
    "CREATE UNIQUE INDEX ix_cadastro_palletizacao_cod_produto ON cadastro_palletizacao (cod_produto)",
    "CREATE INDEX ix_cadastro_palletizacao_codigo_ean ON cadastro_palletizacao (codigo_ean)",
    "CREATE INDEX idx_palletizacao_cod_produto ON cadastro_palletizacao (cod_produto)",
    """
CREATE TABLE embarques (
  id serial PRIMARY KEY, numero integer UNIQUE, data_prevista_embarque date, data_embarque date,
  transportadora_id integer, status varchar(20), criado_em timestamp NOT NULL, criado_por varchar(100) NOT NULL,
  valor_total float, peso_total float, pallet_total float, tipo_carga varchar(20),
  impresso_em timestamp, impresso_por varchar(100), alterado_apos_impressao boolean NOT NULL DEFAULT false,
  nf_pallet_transportadora varchar(20), qtd_pallet_transportadora float DEFAULT 0,
  qtd_pallets_separados integer DEFAULT 0, qtd_pallets_trazidos integer DEFAULT 0)""",
    "CREATE INDEX idx_emb_status ON embarques (status)",
    "CREATE INDEX idx_emb_data_embarque ON embarques (data_embarque)",
    """
CREATE TABLE embarque_itens (
  id serial PRIMARY KEY, embarque_id integer NOT NULL REFERENCES embarques(id), separacao_lote_id varchar(50),
  local_cd varchar(20) NOT NULL DEFAULT 'VICTORIO_MARCHEZINE', cnpj_cliente varchar(20),
  cliente varchar(120) NOT NULL, pedido varchar(50) NOT NULL, protocolo_agendamento varchar(50),
  data_agenda varchar(10), agendamento_confirmado boolean, hora_agendamento time, nota_fiscal varchar(20),
  volumes integer, peso float, peso_cubado float, valor float, pallets float, status varchar(20) NOT NULL,
  uf_destino varchar(2) NOT NULL, cidade_destino varchar(100) NOT NULL, cotacao_id integer,
  modalidade varchar(50), erro_validacao varchar(500), provisorio boolean NOT NULL DEFAULT false,
  carvia_cotacao_id integer, nf_pallet_cliente varchar(20), qtd_pallet_cliente float DEFAULT 0,
  nf_pallet_referencia varchar(20), nf_pallet_origem varchar(10))""",
    "CREATE INDEX ix_embarque_itens_separacao_lote_id ON embarque_itens (separacao_lote_id)",
    "CREATE INDEX ix_embarque_itens_carvia_cotacao_id ON embarque_itens (carvia_cotacao_id)",
    "CREATE INDEX idx_ei_embarque_status ON embarque_itens (embarque_id, status)",
    "CREATE INDEX idx_ei_nota_fiscal ON embarque_itens (nota_fiscal)",
    "CREATE INDEX idx_ei_cnpj_cliente ON embarque_itens (cnpj_cliente)",
    "CREATE INDEX idx_ei_local_cd ON embarque_itens (local_cd)",
    """CREATE UNIQUE INDEX uq_embarque_itens_provisorio_carvia_ativo ON embarque_itens (embarque_id, separacao_lote_id)
  WHERE status = 'ativo' AND provisorio""",
    """
CREATE TABLE movimentacao_estoque (
  id serial PRIMARY KEY, cod_produto varchar(50) NOT NULL, nome_produto varchar(200) NOT NULL,
  data_movimentacao date NOT NULL, tipo_movimentacao varchar(50) NOT NULL, local_movimentacao varchar(50) NOT NULL,
  qtd_movimentacao numeric(15,3) NOT NULL, separacao_lote_id varchar(50), numero_nf varchar(20),
  num_pedido varchar(50), tipo_origem varchar(20), status_nf varchar(20),
  codigo_embarque integer REFERENCES embarques(id) ON DELETE SET NULL, observacao text,
  criado_em timestamp NOT NULL, atualizado_em timestamp NOT NULL, criado_por varchar(100), atualizado_por varchar(100),
  ativo boolean,
  odoo_picking_id varchar(50), odoo_move_id varchar(50), purchase_line_id varchar(50), pedido_compras_id integer,
  recebimento_fisico_id integer, recebimento_lote_id integer, lote_nome varchar(100), data_validade date,
  operacao_producao_id varchar(50), tipo_origem_producao varchar(20), cod_produto_raiz varchar(50),
  producao_pai_id integer REFERENCES movimentacao_estoque(id) ON DELETE SET NULL, ordem_producao varchar(50),
  tipo_destinatario varchar(20), cnpj_destinatario varchar(20), nome_destinatario varchar(255),
  embarque_item_id integer REFERENCES embarque_itens(id) ON DELETE SET NULL,
  baixado boolean DEFAULT false, baixado_em timestamp, baixado_por varchar(100),
  movimento_baixado_id integer REFERENCES movimentacao_estoque(id) ON DELETE SET NULL,
  qtd_abatida numeric(15,3) DEFAULT 0, nf_remessa_origem varchar(20), cnpj_responsavel varchar(20),
  nome_responsavel varchar(255))""",
    "CREATE INDEX ix_movimentacao_estoque_cod_produto ON movimentacao_estoque (cod_produto)",
    "CREATE INDEX ix_movimentacao_estoque_numero_nf ON movimentacao_estoque (numero_nf)",
    "CREATE INDEX ix_movimentacao_estoque_ativo ON movimentacao_estoque (ativo)",
    "CREATE INDEX idx_movimentacao_produto_data ON movimentacao_estoque (cod_produto, data_movimentacao)",
    "CREATE INDEX idx_movimentacao_nf ON movimentacao_estoque (numero_nf)",
    "CREATE INDEX idx_movimentacao_lote ON movimentacao_estoque (separacao_lote_id)",
    "CREATE INDEX idx_movimentacao_pedido ON movimentacao_estoque (num_pedido)",
    "CREATE INDEX idx_movimentacao_status_nf ON movimentacao_estoque (status_nf)",
    "CREATE INDEX idx_movimentacao_baixado ON movimentacao_estoque (baixado)",
    """
CREATE TABLE separacao (
  id serial PRIMARY KEY, separacao_lote_id varchar(50), num_pedido varchar(50), data_pedido date,
  cnpj_cpf varchar(20), raz_social_red varchar(255), nome_cidade varchar(100), cod_uf varchar(2) NOT NULL,
  cod_produto varchar(50), nome_produto varchar(255), qtd_saldo float, valor_saldo float, pallet float, peso float,
  rota varchar(50), sub_rota varchar(50), observ_ped_1 varchar(700), roteirizacao varchar(255),
  expedicao date, agendamento date, agendamento_confirmado boolean, protocolo varchar(50),
  pedido_cliente varchar(100), tags_pedido text, equipe_vendas varchar(100), tipo_envio varchar(10),
  sincronizado_nf boolean, numero_nf varchar(20), data_sincronizacao timestamp, zerado_por_sync boolean,
  data_zeragem timestamp, status varchar(20) NOT NULL, nf_cd boolean NOT NULL DEFAULT false, data_embarque date,
  local_cd varchar(20) NOT NULL DEFAULT 'VICTORIO_MARCHEZINE', cidade_normalizada varchar(120),
  uf_normalizada varchar(2), codigo_ibge varchar(10), separacao_impressa boolean NOT NULL DEFAULT false,
  separacao_impressa_em timestamp, separacao_impressa_por varchar(100), obs_separacao text,
  falta_item boolean NOT NULL DEFAULT false, falta_pagamento boolean NOT NULL DEFAULT false,
  chassi_assai varchar(50), cotacao_id integer, criado_em timestamp, criado_por varchar(100))""",
    "CREATE INDEX ix_separacao_separacao_lote_id ON separacao (separacao_lote_id)",
    "CREATE INDEX ix_separacao_status ON separacao (status)",
    "CREATE INDEX idx_sep_lote_sync ON separacao (separacao_lote_id, sincronizado_nf)",
    "CREATE INDEX idx_sep_num_pedido ON separacao (num_pedido)",
    "CREATE INDEX idx_sep_pedido_sync ON separacao (num_pedido, sincronizado_nf)",
    "CREATE INDEX idx_sep_pedido_produto_sync ON separacao (num_pedido, cod_produto, sincronizado_nf)",
    "CREATE INDEX idx_sep_nf ON separacao (numero_nf, sincronizado_nf)",
    "CREATE INDEX idx_separacao_sync_only ON separacao (sincronizado_nf)",
    "CREATE INDEX idx_separacao_lote_pedido ON separacao (separacao_lote_id, num_pedido) WHERE separacao_lote_id IS NOT NULL",
    """
CREATE TABLE faturamento_parcial_justificativa (
  id serial PRIMARY KEY, separacao_lote_id varchar(50) NOT NULL, num_pedido varchar(50) NOT NULL,
  cod_produto varchar(50) NOT NULL, numero_nf varchar(20) NOT NULL, qtd_separada numeric(15,3) NOT NULL,
  qtd_faturada numeric(15,3) NOT NULL, qtd_saldo numeric(15,3) NOT NULL,
  motivo_nao_faturamento varchar(20) NOT NULL, descricao_detalhada text, evidencias_anexas varchar(500),
  classificacao_saldo varchar(20) NOT NULL, acao_comercial varchar(20), data_acao timestamp,
  executado_por varchar(100), observacoes_acao text, criado_em timestamp NOT NULL, criado_por varchar(100) NOT NULL)""",
    "CREATE INDEX ix_faturamento_parcial_justificativa_numero_nf ON faturamento_parcial_justificativa (numero_nf)",
    """CREATE INDEX idx_justificativa_separacao_pedido
  ON faturamento_parcial_justificativa (separacao_lote_id, num_pedido)""",
    """
CREATE TABLE carteira_principal (
  id serial PRIMARY KEY, num_pedido varchar(50) NOT NULL, cod_produto varchar(50) NOT NULL,
  qtd_produto_pedido numeric(15,3) NOT NULL, qtd_saldo_produto_pedido numeric(15,3) NOT NULL,
  updated_at timestamp NOT NULL, updated_by varchar(100), ativo boolean,
  CONSTRAINT uq_carteira_pedido_produto UNIQUE (num_pedido, cod_produto))""",
    "CREATE INDEX idx_carteira_produto_saldo ON carteira_principal (cod_produto, qtd_saldo_produto_pedido)",
    """CREATE INDEX idx_carteira_ativo_saldo ON carteira_principal (num_pedido, cod_produto)
  WHERE ativo AND qtd_saldo_produto_pedido > 0""",
    """
CREATE TABLE entregas_monitoradas (
  id serial PRIMARY KEY, numero_nf varchar(20) NOT NULL, origem varchar(10) NOT NULL DEFAULT 'NACOM',
  status_finalizacao varchar(50), entregue boolean, data_hora_entrega_realizada timestamp, data_embarque date,
  data_entrega_prevista date, nova_nf varchar(20), finalizado_em timestamp, finalizado_por varchar(100),
  local_cd varchar(20) NOT NULL DEFAULT 'VICTORIO_MARCHEZINE', chegada_filial boolean NOT NULL DEFAULT false,
  chegada_filial_em timestamp)""",
    "CREATE INDEX ix_entregas_monitoradas_numero_nf ON entregas_monitoradas (numero_nf)",
    "CREATE INDEX idx_em_origem ON entregas_monitoradas (origem)",
    "CREATE INDEX idx_entregas_nf_status ON entregas_monitoradas (numero_nf, status_finalizacao)",
]

def create_prod_schema(url: str) -> None:
    """Build production's logistics tables (no job table) in the empty database at `url`."""
    execute(url, *PROD_DDL)
