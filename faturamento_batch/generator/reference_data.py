"""Reference data for the dataset generator: real places, plausible names.

Kept apart from the generator's logic so the lists can grow without touching
the code. Municipality names are real Brazilian municipalities with their UF;
the first city listed for each UF is its capital (weighted up: a food
manufacturer sells mostly to capitals and to its own state).
"""

from __future__ import annotations

# UF → (state name as Odoo's res.country.state stores it, res.country.state id).
# Ids are stable, arbitrary numbers: the state model is not part of a dataset.
STATES: dict[str, tuple[str, int]] = {
    "AC": ("Acre", 58),
    "AL": ("Alagoas", 59),
    "AP": ("Amapá", 60),
    "AM": ("Amazonas", 61),
    "BA": ("Bahia", 62),
    "CE": ("Ceará", 63),
    "DF": ("Distrito Federal", 64),
    "ES": ("Espírito Santo", 65),
    "GO": ("Goiás", 66),
    "MA": ("Maranhão", 67),
    "MT": ("Mato Grosso", 68),
    "MS": ("Mato Grosso do Sul", 69),
    "MG": ("Minas Gerais", 70),
    "PA": ("Pará", 71),
    "PB": ("Paraíba", 72),
    "PR": ("Paraná", 73),
    "PE": ("Pernambuco", 74),
    "PI": ("Piauí", 75),
    "RJ": ("Rio de Janeiro", 76),
    "RN": ("Rio Grande do Norte", 77),
    "RS": ("Rio Grande do Sul", 78),
    "RO": ("Rondônia", 79),
    "RR": ("Roraima", 80),
    "SC": ("Santa Catarina", 81),
    "SP": ("São Paulo", 82),
    "SE": ("Sergipe", 83),
    "TO": ("Tocantins", 84),
}

# UF → real municipalities, capital first. Some names exist in two states
# (Bom Jesus, Valença) and some carry apostrophes (Santa Bárbara d'Oeste).
MUNICIPIOS: dict[str, tuple[str, ...]] = {
    "AC": ("Rio Branco", "Cruzeiro do Sul"),
    "AL": ("Maceió", "Arapiraca", "Olho d'Água das Flores"),
    "AP": ("Macapá", "Santana"),
    "AM": ("Manaus", "Parintins", "Itacoatiara"),
    "BA": ("Salvador", "Feira de Santana", "Vitória da Conquista", "Camaçari", "Itabuna", "Ilhéus",
           "Juazeiro", "Lauro de Freitas", "Valença"),
    "CE": ("Fortaleza", "Caucaia", "Juazeiro do Norte", "Maracanaú", "Sobral"),
    "DF": ("Brasília",),
    "ES": ("Vitória", "Vila Velha", "Serra", "Cariacica", "Cachoeiro de Itapemirim", "Linhares"),
    "GO": ("Goiânia", "Aparecida de Goiânia", "Anápolis", "Rio Verde", "Luziânia"),
    "MA": ("São Luís", "Imperatriz", "São José de Ribamar", "Timon", "Caxias"),
    "MT": ("Cuiabá", "Várzea Grande", "Rondonópolis", "Sinop"),
    "MS": ("Campo Grande", "Dourados", "Três Lagoas", "Corumbá"),
    "MG": ("Belo Horizonte", "Uberlândia", "Contagem", "Juiz de Fora", "Betim", "Montes Claros",
           "Ribeirão das Neves", "Uberaba", "Governador Valadares", "Ipatinga", "Sete Lagoas",
           "Divinópolis", "Poços de Caldas", "Varginha"),
    "PA": ("Belém", "Ananindeua", "Santarém", "Marabá", "Castanhal"),
    "PB": ("João Pessoa", "Campina Grande", "Santa Rita", "Patos"),
    "PR": ("Curitiba", "Londrina", "Maringá", "Ponta Grossa", "Cascavel", "São José dos Pinhais",
           "Foz do Iguaçu", "Colombo", "Guarapuava"),
    "PE": ("Recife", "Jaboatão dos Guararapes", "Olinda", "Caruaru", "Petrolina", "Paulista"),
    "PI": ("Teresina", "Parnaíba", "Picos", "Bom Jesus"),
    "RJ": ("Rio de Janeiro", "São Gonçalo", "Duque de Caxias", "Nova Iguaçu", "Niterói", "Belford Roxo",
           "Campos dos Goytacazes", "São João de Meriti", "Petrópolis", "Volta Redonda", "Macaé", "Valença"),
    "RN": ("Natal", "Mossoró", "Parnamirim"),
    "RS": ("Porto Alegre", "Caxias do Sul", "Canoas", "Pelotas", "Santa Maria", "Gravataí", "Viamão",
           "Novo Hamburgo", "São Leopoldo", "Passo Fundo", "Bom Jesus"),
    "RO": ("Porto Velho", "Ji-Paraná", "Ariquemes", "Vilhena"),
    "RR": ("Boa Vista", "Rorainópolis"),
    "SC": ("Florianópolis", "Joinville", "Blumenau", "São José", "Chapecó", "Itajaí", "Criciúma",
           "Jaraguá do Sul", "Balneário Camboriú", "Herval d'Oeste"),
    "SP": ("São Paulo", "Guarulhos", "Campinas", "São Bernardo do Campo", "Santo André", "Osasco",
           "São José dos Campos", "Ribeirão Preto", "Sorocaba", "Santos", "Mauá", "São José do Rio Preto",
           "Mogi das Cruzes", "Diadema", "Jundiaí", "Piracicaba", "Carapicuíba", "Bauru", "Itaquaquecetuba",
           "São Vicente", "Franca", "Praia Grande", "Guarujá", "Taubaté", "Limeira", "Suzano", "Barueri",
           "Marília", "Presidente Prudente", "Araraquara", "Jacareí", "Americana", "Santa Bárbara d'Oeste",
           "Embu das Artes", "Indaiatuba", "São Carlos", "Cotia", "Sumaré", "Atibaia", "Bragança Paulista",
           "Itu", "Botucatu", "Araçatuba"),
    "SE": ("Aracaju", "Nossa Senhora do Socorro", "Lagarto"),
    "TO": ("Palmas", "Araguaína", "Gurupi"),
}

SALESPEOPLE: tuple[str, ...] = (
    "Ana Paula Souza", "Bruno Henrique Lima", "Carla Mendes", "Daniel Ferreira", "Eduardo Gonçalves",
    "Fernanda Araújo", "Gabriel Rocha", "Helena Castro", "Igor Nascimento", "Juliana Ribeiro",
    "Karina D'Angelo", "Leonardo Martins", "Marcos Antônio Silva", "Natália Prado", "Otávio Barbosa",
    "Patrícia Moreira", "Rafael Teixeira", "Sabrina Lopes", "Thiago Cardoso", "Vanessa Carvalho",
    "Wagner Almeida", "Yasmin Freitas", "André Luiz Costa", "Beatriz Nogueira", "César Augusto Ramos",
    "Débora Vieira", "Fábio Monteiro", "Gustavo Pinheiro", "Isabela Fontes", "João Victor Batista",
)

# Customer names: PREFIX SURNAME [EXTRA] SUFFIX, as Brazilian company names read.
PARTNER_PREFIXES: tuple[str, ...] = (
    "SUPERMERCADO", "MERCADO", "ATACADÃO", "DISTRIBUIDORA", "COMERCIAL", "EMPÓRIO", "PADARIA E CONFEITARIA",
    "RESTAURANTE", "HORTIFRUTI", "CASA DE CARNES", "MERCEARIA", "ATACADISTA", "REDE", "COOPERATIVA",
)
PARTNER_SURNAMES: tuple[str, ...] = (
    "SILVA", "SANTOS", "OLIVEIRA", "SOUZA", "RODRIGUES", "FERREIRA", "ALVES", "PEREIRA", "LIMA", "GOMES",
    "COSTA", "RIBEIRO", "MARTINS", "CARVALHO", "ALMEIDA", "LOPES", "SOARES", "FERNANDES", "VIEIRA",
    "BARBOSA", "ROCHA", "DIAS", "NASCIMENTO", "ANDRADE", "MOREIRA", "NUNES", "MARQUES", "MACHADO",
    "MENDES", "FREITAS", "CARDOSO", "RAMOS", "GONÇALVES", "SANTANA", "TEIXEIRA", "D'ÁVILA", "CONCEIÇÃO",
    "ARAÚJO",
)
PARTNER_EXTRAS: tuple[str, ...] = (
    "", "BOM PREÇO", "SÃO JOÃO", "NOSSA SENHORA APARECIDA", "DO POVO", "ECONÔMICO", "IRMÃOS", "& FILHOS",
    "CENTRAL", "DA FAMÍLIA",
)
PARTNER_SUFFIXES: tuple[str, ...] = ("LTDA", "LTDA ME", "EIRELI", "S.A.", "LTDA EPP", "ME")

# Names that must survive every layer untouched (quotes, SQL, backslash).
ODD_PARTNER_NAMES: tuple[str, ...] = (
    "D'ÁVILA; DROP TABLE x;--",
    'MERCADO "BOM PREÇO" LTDA',
    "EMPÓRIO SÃO JOSÉ \\ FILIAL CENTRO",
    "O'HARA & D'ANGELO COMÉRCIO DE ALIMENTOS LTDA; FILIAL 2",
)

# Products of a preserves/food manufacturer: BASE BRAND PACK, with the pack's net kg.
PRODUCT_BASES: tuple[str, ...] = (
    "AZEITONA VERDE", "AZEITONA PRETA", "AZEITONA VERDE FATIADA", "AZEITONA VERDE SEM CAROÇO",
    "AZEITONA RECHEADA C/ PIMENTÃO", "AZEITONA PRETA FATIADA", "PALMITO PUPUNHA", "PALMITO AÇAÍ PICADO",
    "PEPINO EM CONSERVA", "COGUMELO FATIADO", "COGUMELO INTEIRO", "ALCAPARRA", "PIMENTA BIQUINHO",
    "PIMENTA JALAPEÑO", "MOLHO DE TOMATE", "EXTRATO DE TOMATE", "ATUM SÓLIDO", "SARDINHA EM ÓLEO",
    "MILHO VERDE", "ERVILHA", "SELETA DE LEGUMES", "AZEITE EXTRA VIRGEM", "ÓLEO COMPOSTO", "CATCHUP",
    "MOSTARDA", "MAIONESE", "VINAGRE DE VINHO TINTO", "CEBOLINHA EM CONSERVA", "ALHO TRITURADO",
    "TOMATE SECO", "ALCACHOFRA EM CONSERVA", "BETERRABA EM CONSERVA", "MOLHO PESTO", "GIARDINIERA",
)
PRODUCT_BRANDS: tuple[str, ...] = (
    "CAMPO BELO", "LA FAMIGLIA", "BELLA TERRA", "QUINTA DO VALE", "SABOR DE CASA", "VILA RICA",
    "MONTE VERDE", "DONA BENTA", "FOOD SERVICE",
)
# (pack text, net kg of the sold unit)
PRODUCT_PACKS: tuple[tuple[str, float], ...] = (
    ("VD 12X200G", 2.4), ("POUCH 18X100G", 1.8), ("BALDE 2KG", 2.0), ("LATA 24X340G", 8.16),
    ("BD 6X500G", 3.0), ("GALÃO 4X3,2KG", 12.8), ("SACHE 144X7G", 1.008), ("PET 12X500ML", 6.0),
    ("BAG 1,01KG", 1.01), ("CX 20X1KG", 20.0), ("VD 24X150G", 3.6), ("BALDE 5KG", 5.0),
)
ODD_PRODUCT_NAMES: tuple[str, ...] = (
    'AZEITONA VERDE "GORDAL" VD 12X200G',
    "MOLHO D'ORO; TRADICIONAL -- 24X340G",
    "PALMITO 'EXTRA' \\ PUPUNHA VD 12X300G",
)

TEAMS: tuple[tuple[int, str], ...] = (
    (1, "Vendas Internas"), (2, "Vendas Externas"), (3, "Key Account"), (4, "Food Service"), (5, "E-commerce"),
)
TEAM_P: tuple[float, ...] = (0.45, 0.30, 0.10, 0.08, 0.04, 0.03)  # last: false

# Odoo's account.incoterms display names, bracketed and not (a custom record).
INCOTERMS: tuple[tuple[int, str], ...] = (
    (1, "[CIF] COST, INSURANCE AND FREIGHT"),
    (2, "[FOB] FREE ON BOARD"),
    (7, "[EXW] EX WORKS"),
    (12, "FRETE POR CONTA DO DESTINATÁRIO (SEM OCORRÊNCIA DE TRANSPORTE)"),
    (13, "CIF"),
)
INCOTERM_P: tuple[float, ...] = (0.58, 0.25, 0.03, 0.04, 0.02, 0.08)  # last: false
