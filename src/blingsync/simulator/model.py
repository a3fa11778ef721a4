"""The simulated Bling world: companies (Bling accounts), their notes, orders and credentials.

Plain mutable dataclasses: the simulator state owns them and mutates them under its lock.
The simulator keeps its own enums and numbering on purpose: it must not share code with the
client it tests, or a mistake in one would be mirrored, unseen, in the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from enum import IntEnum, StrEnum

BRT = timezone(timedelta(hours=-3), "BRT")
"""Brasília time. Bling's datetimes are local Brasília time without an offset; Brazil has had
no daylight saving time since 2019, so a fixed offset is exact."""


class NfeSituacao(IntEnum):
    """`situacao` of v3 `/nfe` and `/nfce` (the official enum)."""

    PENDENTE = 1
    CANCELADA = 2
    AGUARDANDO_RECIBO = 3
    REJEITADA = 4
    AUTORIZADA = 5
    EMITIDA_DANFE = 6
    REGISTRADA = 7
    AGUARDANDO_PROTOCOLO = 8
    DENEGADA = 9
    CONSULTA_SITUACAO = 10
    BLOQUEADA = 11
    CONTINGENCIA = 12  # accepted by the /nfce filter only; undocumented


V2_SITUACAO: dict[NfeSituacao, tuple[int, str]] = {
    # v3 code -> (v2 filter code, v2 text). v2 numbering is Bling's internal one.
    NfeSituacao.PENDENTE: (1, "Pendente"),
    NfeSituacao.CANCELADA: (3, "Cancelada"),
    NfeSituacao.AGUARDANDO_RECIBO: (4, "Enviada - Aguardando recibo"),
    NfeSituacao.REJEITADA: (5, "Rejeitada"),
    NfeSituacao.AUTORIZADA: (6, "Autorizada"),
    NfeSituacao.EMITIDA_DANFE: (7, "Emitida DANFE"),
    NfeSituacao.REGISTRADA: (8, "Registrada"),
    NfeSituacao.AGUARDANDO_PROTOCOLO: (9, "Enviada - Aguardando protocolo"),
    NfeSituacao.DENEGADA: (10, "Denegada"),
    NfeSituacao.CONSULTA_SITUACAO: (11, "Consultar situação"),
    NfeSituacao.BLOQUEADA: (12, "Bloqueada"),
    NfeSituacao.CONTINGENCIA: (13, "Contingência"),
}

AUTHORISED = frozenset(
    {NfeSituacao.AUTORIZADA, NfeSituacao.EMITIDA_DANFE, NfeSituacao.CANCELADA}
)
"""Situations in which a note has an authorised nfeProc XML (a cancelled note keeps it:
cancellation is a separate event and does not change the nfeProc file)."""


class Modelo(IntEnum):
    NFE = 55
    NFCE = 65


class Scope(StrEnum):
    """Resources an OAuth app can be granted (chosen per app in Bling's developer portal)."""

    NFE = "nfe"
    NFCE = "nfce"
    PEDIDOS_VENDAS = "pedidos_vendas"
    SITUACOES = "situacoes"
    LOGISTICAS = "logisticas"
    EMPRESAS = "empresas"


SCOPE_IDS: dict[Scope, int] = {
    # Bling's token `scope` is a space-separated list of numeric ids; these are the simulator's.
    Scope.NFE: 98309,
    Scope.NFCE: 5990556,
    Scope.PEDIDOS_VENDAS: 98310,
    Scope.SITUACOES: 6631498,
    Scope.LOGISTICAS: 318257570,
    Scope.EMPRESAS: 507037,
}

SCOPE_LABELS: dict[Scope, str] = {
    # The names a user sees on the app's scope screen in Bling.
    Scope.NFE: "Notas Fiscais",
    Scope.NFCE: "Notas Fiscais de Consumidor",
    Scope.PEDIDOS_VENDAS: "Pedidos de Venda",
    Scope.SITUACOES: "Situações",
    Scope.LOGISTICAS: "Logísticas",
    Scope.EMPRESAS: "Dados básicos da empresa",
}


class V2Permission(StrEnum):
    """Permissions of a v2 API user (Preferências › Sistema › Usuários e usuário API ›
    Permissões › Vendas), as the help article lists them."""

    INTERACOES_LOGISTICAS = "interacoes_logisticas"
    NFCE = "nfce"
    PROPOSTAS_COMERCIAIS = "propostas_comerciais"
    PEDIDOS_VENDA = "pedidos_venda"
    PEDIDOS_VENDA_SITUACOES = "pedidos_venda_situacoes"
    NOTAS_FISCAIS = "notas_fiscais"


V2_PERMISSION_LABELS: dict[V2Permission, str] = {
    V2Permission.INTERACOES_LOGISTICAS: "Interações Logísticas",
    V2Permission.NFCE: "Nota fiscal de consumidor eletrônica (NFC-e)",
    V2Permission.PROPOSTAS_COMERCIAIS: "Propostas Comerciais",
    V2Permission.PEDIDOS_VENDA: "Pedidos de Venda",
    V2Permission.PEDIDOS_VENDA_SITUACOES: "Gerenciar situações dos Pedidos de Venda",
    V2Permission.NOTAS_FISCAIS: "Notas Fiscais",
}

RECOMMENDED_V2_PERMISSIONS = frozenset(set(V2Permission) - {V2Permission.PROPOSTAS_COMERCIAIS})
"""What the help article tells the brand to tick: all of Vendas except Propostas Comerciais."""


@dataclass
class Address:
    logradouro: str
    numero: str
    complemento: str
    bairro: str
    municipio: str
    codigo_municipio: str  # IBGE, 7 digits
    uf: str
    cep: str  # 8 digits, unformatted


@dataclass
class Party:
    """A Bling contact: a note's recipient or an order's customer."""

    id: int
    nome: str
    tipo_pessoa: str  # "F" or "J"
    documento: str  # CPF (11) or CNPJ (14), digits only
    ie: str  # state registration, digits; "" when none
    rg: str
    contribuinte: int  # 1 ICMS taxpayer, 2 exempt, 9 not a taxpayer
    telefone: str
    email: str
    endereco: Address


@dataclass
class Product:
    sku: str
    descricao: str
    ean: str  # 13 digits, or "SEM GTIN"
    ncm: str  # 8 digits
    cest: str  # 7 digits or ""
    unidade: str
    preco: Decimal
    peso_liquido: Decimal  # kg
    peso_bruto: Decimal  # kg
    origem: int  # ICMS origin 0..8


@dataclass
class NoteItem:
    product: Product
    quantidade: Decimal
    valor_unitario: Decimal
    cfop: str
    pedido_compra: str  # xPed: the order number, "" when none
    item_pedido: int  # nItemPed

    @property
    def valor_total(self) -> Decimal:
        return (self.quantidade * self.valor_unitario).quantize(Decimal("0.01"))


@dataclass
class Volume:
    quantidade: int
    especie: str  # e.g. "Caixa", "Pacote"
    marca: str
    numeracao: str
    peso_liquido: Decimal  # kg, 3 decimals
    peso_bruto: Decimal  # kg, 3 decimals
    logistic_object_id: int


@dataclass
class Carrier:
    id: int  # the carrier's Bling contact id (filter idTransportador)
    nome: str
    documento: str  # CNPJ digits
    ie: str
    endereco: str
    municipio: str
    uf: str


@dataclass
class Intermediary:
    """Marketplace that intermediated the sale (infIntermed)."""

    cnpj: str
    nome: str
    id_cadastro: str  # idCadIntTran: the buyer's user name at the marketplace


@dataclass
class Store:
    """A Bling `loja` (sales channel)."""

    id: int
    numero: str
    nome: str
    intermediary: Intermediary | None


@dataclass
class Note:
    """An NF-e (modelo 55) or NFC-e (modelo 65) of one company."""

    id: int
    modelo: Modelo
    tipo: int  # 0 entrada, 1 saída
    situacao: NfeSituacao
    numero: int
    serie: int
    emitted_at: datetime  # aware, BRT
    operation_at: datetime  # aware, BRT
    cnf: str  # 8 digits, the random part of the chave
    chave: str  # 44 digits; "" while pending (never transmitted)
    natureza_operacao_id: int
    natureza_operacao: str
    finalidade: int  # 1 normal, 4 devolução...
    recipient: Party
    delivery: Address | None  # `entrega` when the goods go elsewhere than enderDest
    items: list[NoteItem]
    volumes: list[Volume]
    carrier: Carrier | None
    frete_por_conta: int  # modFrete 0,1,2,3,4,9
    valor_frete: Decimal
    store: Store | None
    numero_pedido_loja: str
    order_id: int | None
    vendedor_id: int
    pagamento: str  # tPag code, e.g. "03" credit card, "17" PIX
    protocolo: str = ""  # nProt, 15 digits, once authorised
    authorized_at: datetime | None = None
    danfe_hash: str = ""  # 32 hex, the id in linkDanfe/linkPDF
    updated_at: datetime | None = None

    @property
    def valor_produtos(self) -> Decimal:
        return sum((i.valor_total for i in self.items), Decimal("0.00"))

    @property
    def valor_nota(self) -> Decimal:
        return self.valor_produtos + self.valor_frete

    @property
    def is_authorised(self) -> bool:
        return self.situacao in AUTHORISED and bool(self.protocolo)


@dataclass
class OrderSituation:
    """A sales-order situation (per account: ids differ between Bling accounts)."""

    id: int
    nome: str
    valor: int  # the base status (0 Em aberto, 1 Atendido, 2 Cancelado, 3 Em andamento...)
    id_herdado: int
    cor: str


@dataclass
class SalesOrder:
    id: int
    numero: int
    numero_loja: str
    data: date
    data_saida: date
    data_prevista: date
    contato: Party
    situacao_id: int
    store: Store | None
    items: list[NoteItem]
    frete: Decimal
    frete_por_conta: int
    etiqueta: Address
    note_id: int | None
    volume_ids: list[int]
    vendedor_id: int
    observacoes: str
    altered_at: datetime

    @property
    def total_produtos(self) -> Decimal:
        return sum((i.valor_total for i in self.items), Decimal("0.00"))

    @property
    def total(self) -> Decimal:
        return self.total_produtos + self.frete


@dataclass
class LogisticObject:
    id: int
    pedido_venda_id: int | None
    nota_fiscal_id: int | None
    servico_id: int | None
    tracking_code: str
    tracking_description: str
    tracking_situacao: int  # 0..9, 8 = Não postado
    origem: str
    destino: str
    tracking_updated_at: datetime
    tracking_url: str
    peso: Decimal
    altura: Decimal
    largura: Decimal
    comprimento: Decimal
    diametro: Decimal
    embalagem_id: int | None
    data_saida: str
    prazo_entrega_previsto: int
    frete_previsto: Decimal
    valor_declarado: Decimal
    aviso_recebimento: bool
    mao_propria: bool


@dataclass
class OAuthClient:
    """An app installed by the company: its credentials and granted scopes."""

    client_id: str  # 40 hex
    client_secret: str  # 60 hex
    scopes: frozenset[Scope]
    redirect_uri: str
    webhook_url: str | None = None
    active: bool = True
    webhooks_enabled: bool = True  # Bling disables an app's webhooks after 3 days of failures


@dataclass
class ApiUser:
    """A v2 "usuário API" with its key and ticked permissions."""

    name: str
    email: str
    apikey: str  # 72 hex, as Bling's v2 keys look
    permissions: frozenset[V2Permission]


@dataclass
class Company:
    """One Bling account (a brand, a depositante). Limits are counted per company."""

    id: int  # internal numeric id
    company_id: str  # 32 hex: webhook `companyId` and /empresas/me/dados-basicos `id`
    nome: str  # razão social
    fantasia: str
    cnpj: str
    ie: str
    crt: int  # 1 Simples Nacional, 3 regime normal
    email: str
    telefone: str
    endereco: Address
    data_contrato: date
    products: list[Product]
    stores: list[Store]
    carriers: list[Carrier]
    order_situations: list[OrderSituation]
    clients: list[OAuthClient]
    api_users: list[ApiUser]
    notes: dict[int, Note] = field(default_factory=dict)
    orders: dict[int, SalesOrder] = field(default_factory=dict)
    logistic_objects: dict[int, LogisticObject] = field(default_factory=dict)
    next_numero: dict[tuple[Modelo, int], int] = field(default_factory=dict)
    next_order_numero: int = 1
    next_ids: dict[str, int] = field(default_factory=dict)
    # Next Bling id per kind of record ("note", "order", "contact"...); see data.allocate_id.


@dataclass
class World:
    """Everything the generator produced; the simulator state mutates it afterwards."""

    seed: int
    anchor: datetime  # "now" of the generated history, BRT
    companies: list[Company]
