"""Raw Odoo frames → invoice lines (one row per NF and product) + rejected lines.

Pure: takes and returns Polars frames, Polars expressions only (DESIGN §4).
The input frames are those of `odoo.frames` (many2one split into `<f>` id and
`<f>__name`), already restricted to the line domain by the source.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from .odoo.fields import LINE, MOVE, MUNICIPIO, PARTNER, PRODUCT, TEMPLATE, USER
from .schemas import LINE as LINE_SCHEMA
from .schemas import P4, PRODUCT_WIDTHS, Q3, REJECTED, V2, WIDTHS

STATUS_BY_STATE = {"posted": "Lançado", "cancel": "Cancelado", "draft": "Provisório"}
STATUS_DEFAULT = "Lançado"

UF_BY_STATE_NAME = {
    "acre": "AC", "alagoas": "AL", "amapa": "AP", "amazonas": "AM", "bahia": "BA",
    "ceara": "CE", "distrito federal": "DF", "espirito santo": "ES", "goias": "GO",
    "maranhao": "MA", "mato grosso": "MT", "mato grosso do sul": "MS",
    "minas gerais": "MG", "para": "PA", "paraiba": "PB", "parana": "PR",
    "pernambuco": "PE", "piaui": "PI", "rio de janeiro": "RJ",
    "rio grande do norte": "RN", "rio grande do sul": "RS", "rondonia": "RO",
    "roraima": "RR", "santa catarina": "SC", "sao paulo": "SP", "sergipe": "SE",
    "tocantins": "TO",
}  # fmt: skip
UFS = frozenset(UF_BY_STATE_NAME.values())

# Rejection reasons, in the order they are checked (the first that applies wins).
NO_PRODUCT = "no_product"
NO_MOVE = "no_move"
QUANTITY_NOT_POSITIVE = "quantity_not_positive"
NO_NF_NUMBER = "no_nf_number"
NO_PRODUCT_CODE = "no_product_code"
NUMBER_OUT_OF_RANGE = "number_out_of_range"
NO_INVOICE_DATE = "no_invoice_date"
NF_ON_SEVERAL_MOVES = "nf_number_on_several_moves"
# An NF without a sales order (`invoice_origin` false, empty or the text 'false') is not
# imported (DESIGN §10): checked right after the move is known, so its lines are all
# `no_origin` whatever else they hold.
NO_ORIGIN = "no_origin"
REASONS = (
    NO_PRODUCT, NO_MOVE, NO_ORIGIN, QUANTITY_NOT_POSITIVE, NO_NF_NUMBER, NO_PRODUCT_CODE,
    NUMBER_OUT_OF_RANGE, NO_INVOICE_DATE, NF_ON_SEVERAL_MOVES,
)  # fmt: skip
# Rejections that are a policy, not bad data: reported, never counted toward the
# reject-ratio abort (`TransformResult.policy_rejected`).
POLICY_REASONS = frozenset({NO_ORIGIN})


# Large batches go through the streaming engine (in batches, bounding what is held
# at once); small ones through the in-memory engine, which starts faster.
STREAMING_FROM_LINES = 100_000


@dataclass(frozen=True)
class TransformResult:
    lines: pl.DataFrame  # schemas.LINE
    rejected: pl.DataFrame  # schemas.REJECTED
    in_domain: int  # Odoo lines considered (after dropping repeated line ids)
    merged: int  # Odoo lines folded into another line of the same NF and product
    policy_rejected: int = 0  # rejected lines whose reason is in POLICY_REASONS (outside the abort ratio)

    @property
    def ratio_rejected(self) -> int:
        """Rejected lines that count toward the reject-ratio abort (bad data, not policy)."""
        return self.rejected.height - self.policy_rejected


def clean(expr: pl.Expr) -> pl.Expr:
    """Trimmed text with NUL bytes removed (PostgreSQL text cannot hold them); '' → null."""
    text = expr.str.replace_all("\x00", "", literal=True).str.strip_chars()
    return pl.when(text.str.len_chars() > 0).then(text)


def cut(expr: pl.Expr, column: str, widths: dict[str, int] = WIDTHS) -> pl.Expr:
    # Trim again after cutting: a cut can end on a space.
    return expr.str.slice(0, widths[column]).str.strip_chars_end()


def uf_from_state_name(expr: pl.Expr) -> pl.Expr:
    """'São Paulo', 'SAO PAULO', 'São Paulo (BR)' or 'SP' → 'SP'; anything else → null."""
    name = (
        clean(expr)
        .str.replace(r"\s*\([^()]*\)$", "")
        .str.normalize("NFKD")
        .str.replace_all(r"\p{M}", "")
        .str.to_lowercase()
        .str.replace_all(r"\s+", " ")
    )
    by_name = name.replace_strict(UF_BY_STATE_NAME, default=None, return_dtype=pl.String)
    as_code = pl.when(name.str.to_uppercase().is_in(list(UFS))).then(name.str.to_uppercase())
    return pl.coalesce(by_name, as_code)


def two_letters(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr.str.contains(r"^[A-Z]{2}$")).then(expr)


def to_decimal(expr: pl.Expr, dtype: pl.Decimal) -> pl.Expr:
    """Float → decimal at the column scale, half away from zero, as Odoo rounds.

    Goes through the float's shortest text ('2.675', not 2.67499…), which is the
    number Odoo sent; NaN, infinities and values past the column's precision → null.
    """
    exact = expr.cast(pl.String).cast(pl.Decimal(38, 10), strict=False)
    return exact.round(dtype.scale, mode="half_away_from_zero").cast(dtype, strict=False)


def _one_per_id(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per id (a repeated record must not multiply lines): the first wins.

    Sources deliver records sorted by id, where a strictly increasing id column
    proves there is nothing to drop without copying a million rows.
    """
    ids = frame.get_column("id")
    if ids.null_count() == 0 and (frame.height < 2 or bool((ids.diff().drop_nulls() > 0).all())):
        return frame
    return frame.unique("id", keep="first", maintain_order=True)


def _related(frame: pl.DataFrame, prefix: str) -> pl.DataFrame:
    return _one_per_id(frame).rename(lambda c: f"{prefix}{c}")


def _user_names(frames: dict[str, pl.DataFrame]) -> pl.LazyFrame:
    return _related(frames[USER], "u_").lazy().select("u_id", clean(pl.col("u_name")).alias("u_name"))


def _named_user(link: str, users: pl.LazyFrame, frame: pl.LazyFrame, alias: str) -> pl.LazyFrame:
    """`frame` plus `alias`: the res.users name of many2one `link`, else its display name."""
    return frame.join(users, left_on=link, right_on="u_id", how="left").with_columns(
        pl.coalesce(pl.col("u_name"), clean(pl.col(f"{link}__name"))).alias(alias)
    ).drop("u_name")


# Text work is done once per related record (a few thousand partners and
# products, one row per move), not once per invoice line; lines only join the
# results and pick between them.


def _move_fields(frames: dict[str, pl.DataFrame], users: pl.LazyFrame) -> pl.LazyFrame:
    moves = _related(frames[MOVE], "m_").lazy()
    moves = _named_user("m_invoice_user_id", users, moves, "m_vendedor")
    incoterm_name = clean(pl.col("m_invoice_incoterm_id__name"))
    return moves.select(
        "m_id",
        cut(clean(pl.col("m_l10n_br_numero_nota_fiscal")), "numero_nf").alias("numero_nf"),
        pl.col("m_date").str.to_date("%Y-%m-%d", strict=False).alias("m_date"),
        clean(pl.col("m_l10n_br_cnpj")).alias("m_cnpj"),
        clean(pl.col("m_invoice_partner_display_name")).alias("m_nome"),
        "m_vendedor",
        cut(clean(pl.col("m_team_id__name")), "equipe_vendas").alias("equipe_vendas"),
        cut(pl.coalesce(clean(incoterm_name.str.extract(r"\[([^\]]*)\]", 1)), incoterm_name), "incoterm").alias("incoterm"),
        cut(pl.coalesce(clean(pl.col("m_invoice_origin")), pl.lit("")), "origem").alias("origem"),
        # Production's test, on the trimmed text: false, empty, or the word 'false' as Odoo stores it.
        clean(pl.col("m_invoice_origin")).fill_null("false").eq("false").alias("m_no_origin"),
        clean(pl.col("m_state"))
        .replace_strict(STATUS_BY_STATE, default=STATUS_DEFAULT, return_dtype=pl.String)
        .fill_null(STATUS_DEFAULT)
        .alias("status_nf"),
        pl.col("m_write_date").str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us").alias("m_write_date"),
    )


def _partner_fields(frames: dict[str, pl.DataFrame], users: pl.LazyFrame) -> pl.LazyFrame:
    partners = _related(frames[PARTNER], "p_").lazy().join(
        _related(frames[MUNICIPIO], "mu_").lazy(), left_on="p_l10n_br_municipio_id", right_on="mu_id", how="left"
    )
    partners = _named_user("p_user_id", users, partners, "p_vendedor")
    muni_name = pl.coalesce(clean(pl.col("mu_name")), clean(pl.col("p_l10n_br_municipio_id__name")))
    parts = muni_name.str.extract_groups(r"^(.*?)\s*\(\s*([A-Za-z]{2})\s*\)$")
    paren_uf = parts.struct.field("2").str.to_uppercase()
    # "Cidade (UF)" → the text before (a bare "(MG)" names no city); any other name is the city.
    city = pl.when(paren_uf.is_not_null()).then(clean(parts.struct.field("1"))).otherwise(muni_name)
    return partners.select(
        "p_id",
        clean(pl.col("p_l10n_br_cnpj")).alias("p_cnpj"),
        clean(pl.col("p_name")).alias("p_nome"),
        cut(city, "municipio").alias("municipio"),
        two_letters(
            pl.coalesce(paren_uf, uf_from_state_name(pl.col("mu_state_id__name")), uf_from_state_name(pl.col("p_state_id__name")))
        ).alias("estado"),
        "p_vendedor",
    )


def _product_fields(frames: dict[str, pl.DataFrame]) -> pl.LazyFrame:
    products = _related(frames[PRODUCT], "pp_").lazy().join(
        _related(frames[TEMPLATE], "t_").lazy(), left_on="pp_product_tmpl_id", right_on="t_id", how="left"
    )
    name = pl.coalesce(clean(pl.col("t_name")), clean(pl.col("pp_name")))
    return products.select(
        "pp_id",
        cut(clean(pl.col("t_default_code")), "cod_produto").alias("cod_produto"),
        name.alias("pp_nome"),
        to_decimal(pl.col("t_gross_weight"), Q3).alias("peso_unitario_produto"),
        pl.col("t_gross_weight").alias("odoo_gross_weight"),
    )


def _joined(frames: dict[str, pl.DataFrame]) -> pl.LazyFrame:
    users = _user_names(frames)
    return (
        _one_per_id(frames[LINE]).lazy()
        .join(_move_fields(frames, users), left_on="move_id", right_on="m_id", how="left", coalesce=False)
        .join(_partner_fields(frames, users), left_on="partner_id", right_on="p_id", how="left", coalesce=False)
        .join(_product_fields(frames), left_on="product_id", right_on="pp_id", how="left", coalesce=False)
    )  # fmt: skip


def _mapped() -> list[pl.Expr]:
    qtd = to_decimal(pl.col("quantity"), Q3)
    nfe_total = pl.col("l10n_br_total_nfe")
    valor_float = pl.when(nfe_total.is_not_null() & (nfe_total != 0)).then(nfe_total).otherwise(pl.col("price_total"))
    product_name = pl.coalesce(pl.col("pp_nome"), clean(pl.col("product_id__name")), pl.lit(""))
    return [
        pl.coalesce(pl.col("m_date"), pl.col("date").str.to_date("%Y-%m-%d", strict=False)).alias("data_fatura"),
        cut(pl.coalesce(pl.col("m_cnpj"), pl.col("p_cnpj"), pl.lit("")), "cnpj_cliente").alias("cnpj_cliente"),
        cut(
            pl.coalesce(pl.col("m_nome"), pl.col("p_nome"), clean(pl.col("partner_id__name")), pl.lit("")), "nome_cliente"
        ).alias("nome_cliente"),
        cut(pl.coalesce(pl.col("m_vendedor"), pl.col("p_vendedor")), "vendedor").alias("vendedor"),
        cut(product_name, "nome_produto").alias("nome_produto"),
        qtd.alias("qtd_produto_faturado"),
        to_decimal(pl.col("price_unit"), P4).alias("preco_produto_faturado"),
        to_decimal(valor_float, V2).alias("valor_produto_faturado"),
        # Polars keeps the larger operand scale in a decimal product and truncates the
        # rest: widen first so the product is exact, then round half away from zero.
        (qtd.cast(pl.Decimal(38, 6)) * pl.col("peso_unitario_produto"))
        .round(3, mode="half_away_from_zero").cast(Q3, strict=False).alias("peso_total"),
        pl.col("move_id").alias("odoo_move_id"),
        cut(product_name, "nome_produto", PRODUCT_WIDTHS).alias("odoo_template_name"),
        pl.max_horizontal(
            pl.col("write_date").str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us"), pl.col("m_write_date")
        ).alias("odoo_write_date"),
    ]  # fmt: skip


def _reason(raw_numbers_ok: pl.Expr) -> pl.Expr:
    return (
        pl.when(pl.col("product_id").is_null() | pl.col("pp_id").is_null()).then(pl.lit(NO_PRODUCT))
        .when(pl.col("move_id").is_null() | pl.col("m_id").is_null()).then(pl.lit(NO_MOVE))
        .when(pl.col("m_no_origin")).then(pl.lit(NO_ORIGIN))
        # Polars orders NaN above every number, so NaN > 0 holds: test it by name.
        # A quantity below the column's 0.001 is 0.000 once stored: not positive either.
        .when(
            pl.col("quantity").is_null() | pl.col("quantity").is_nan() | ~(pl.col("quantity") > 0)
            | (pl.col("qtd_produto_faturado") == 0)
        )
        .then(pl.lit(QUANTITY_NOT_POSITIVE))
        .when(pl.col("numero_nf").is_null()).then(pl.lit(NO_NF_NUMBER))
        .when(pl.col("cod_produto").is_null()).then(pl.lit(NO_PRODUCT_CODE))
        .when(~raw_numbers_ok).then(pl.lit(NUMBER_OUT_OF_RANGE))
        .when(pl.col("data_fatura").is_null()).then(pl.lit(NO_INVOICE_DATE))
    )  # fmt: skip


def nfs_on_several_moves(moves_index: pl.DataFrame) -> pl.Series:
    """NF numbers (cleaned, as `numero_nf`) that more than one move claims.

    In: `move_id` and raw `l10n_br_numero_nota_fiscal` of the moves of a whole
    run (keys only). Out: the numbers `transform` must reject on every move, for
    a run transformed chunk by chunk where the two moves may sit in different chunks.
    """
    numbers = moves_index.unique("move_id").select(
        "move_id", cut(clean(pl.col("l10n_br_numero_nota_fiscal")), "numero_nf").alias("numero_nf")
    )
    shared = numbers.drop_nulls("numero_nf").group_by("numero_nf").agg(pl.col("move_id").n_unique().alias("moves"))
    return shared.filter(pl.col("moves") > 1).get_column("numero_nf").sort()


def transform(frames: dict[str, pl.DataFrame], several_moves: pl.Series | None = None) -> TransformResult:
    """Map raw Odoo frames to invoice lines (DESIGN §4) and reject what cannot be loaded.

    In: one raw frame per Odoo model (`odoo.frames.raw_schema`); `several_moves`,
    NF numbers known to be claimed by several moves of the run outside these
    frames too (`nfs_on_several_moves`; chunked full runs). Out: lines
    (`schemas.LINE`, one row per NF and product, merged lines summed) and
    rejected lines (`schemas.REJECTED`), each with the first reason that applies.
    """
    numbers_ok = pl.all_horizontal(
        pl.col(c).is_not_null()
        for c in ("qtd_produto_faturado", "preco_produto_faturado", "valor_produto_faturado", "peso_total")
    ) & (pl.col("odoo_gross_weight").is_null() | pl.col("peso_unitario_produto").is_not_null())
    # An NF number is one move; two moves claiming it is a data error upstream,
    # and merging them would mix two customers' lines into one NF.
    claimed = pl.col("odoo_move_id").n_unique().over("numero_nf") > 1
    if several_moves is not None and several_moves.len():
        claimed = claimed | pl.col("numero_nf").is_in(several_moves.implode())
    mapped = (
        _joined(frames)
        .with_columns(_mapped())
        .with_columns(_reason(numbers_ok).alias("reason"))
        # Keep only what the outputs need: the wide joined frame never materializes.
        .select("id", "move_id", "reason", *(c for c in LINE_SCHEMA.names() if c != "odoo_line_count"))
        .with_columns(
            pl.when(pl.col("reason").is_null() & pl.col("numero_nf").is_not_null() & claimed)
            .then(pl.lit(NF_ON_SEVERAL_MOVES))
            .otherwise(pl.col("reason"))
            .alias("reason")
        )
    )
    rejected_plan = mapped.filter(pl.col("reason").is_not_null()).select(
        pl.col("id").alias("odoo_line_id"),
        pl.col("move_id").alias("odoo_move_id"),
        "numero_nf",
        "cod_produto",
        "reason",
    )
    key = ["numero_nf", "cod_produto"]
    good = mapped.filter(pl.col("reason").is_null()).drop("reason", "move_id").with_columns(
        pl.struct(key).is_duplicated().alias("_repeated")
    )
    alone_plan = good.filter(~pl.col("_repeated")).drop("_repeated").with_columns(
        pl.lit(1, dtype=pl.UInt32).alias("odoo_line_count")
    )
    repeated_plan = good.filter(pl.col("_repeated")).drop("_repeated")
    # One pass over the shared plan; only the lines whose (NF, product) repeats
    # (a few) go through the group_by.
    engine = "streaming" if frames[LINE].height >= STREAMING_FROM_LINES else "in-memory"
    rejected, alone, repeated = pl.collect_all([rejected_plan, alone_plan, repeated_plan], engine=engine)
    merged = _merge_same_product(repeated).select(alone.columns)
    # Back in Odoo's line order: the diff takes an NF's header and a new product's
    # name from the first row, which must be the lowest line id.
    lines = pl.concat([alone, merged], rechunk=False).sort("id")
    in_domain = rejected.height + alone.height + repeated.height
    return TransformResult(
        lines=lines.select(LINE_SCHEMA.names()).cast(dict(LINE_SCHEMA)),  # type: ignore[arg-type]
        rejected=rejected.cast(dict(REJECTED)),  # type: ignore[arg-type]
        in_domain=in_domain,
        merged=repeated.height - merged.height,
        policy_rejected=rejected.filter(pl.col("reason").is_in(list(POLICY_REASONS))).height,
    )


def _merge_same_product(several: pl.DataFrame) -> pl.DataFrame:
    """Several lines of one NF with the same product → one row, amounts summed.

    The unit price of a merged row is the quantity-weighted mean; header fields
    come from the NF's first line (they are the NF's, so all lines agree).
    """
    key = ["numero_nf", "cod_produto"]
    sums = ("qtd_produto_faturado", "valor_produto_faturado", "peso_total")
    # Widen before multiplying and dividing: Polars' decimal arithmetic keeps the larger
    # operand scale and truncates, which would turn the half-up rounding into a truncation.
    price_x_qty = (pl.col("preco_produto_faturado").cast(pl.Decimal(38, 7)) * pl.col("qtd_produto_faturado")).sum()
    price_x_qty = price_x_qty.cast(pl.Decimal(38, 12))
    # Only the repeated keys are grouped: most lines are alone and pass through.
    merged = several.sort("id").group_by(key, maintain_order=True).agg(
        *(pl.col(c).first() for c in several.columns if c not in sums and c not in key),
        *(pl.col(c).sum() for c in sums),
        (price_x_qty / pl.col("qtd_produto_faturado").sum()).alias("_mean_price"),
        pl.len().alias("odoo_line_count"),
        pl.col("odoo_write_date").max().alias("_max_write_date"),
    )
    merged = merged.with_columns(
        pl.col("_mean_price").round(4, mode="half_away_from_zero").cast(P4, strict=False).alias("preco_produto_faturado"),
        pl.col("_max_write_date").alias("odoo_write_date"),
        *(pl.col(c).cast(t, strict=False) for c, t in (("qtd_produto_faturado", Q3), ("valor_produto_faturado", V2), ("peso_total", Q3))),
    )  # fmt: skip
    return merged
