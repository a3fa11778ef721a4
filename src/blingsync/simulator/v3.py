"""API v3 resources under /Api/v3: notes (NF-e, NFC-e), their documents, sales orders,
situations, logistics objects and the company's basic data."""

from __future__ import annotations

import base64
import gzip
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from blingsync.simulator import errors, v3json
from blingsync.simulator.danfe import build_danfe_pdf
from blingsync.simulator.data import allocate_id
from blingsync.simulator.errors import BlingJSONResponse, field_error
from blingsync.simulator.guard import V3Call, json_body, v3_endpoint
from blingsync.simulator.model import (
    BRT,
    LogisticObject,
    Modelo,
    NfeSituacao,
    Note,
    SalesOrder,
    Scope,
)
from blingsync.simulator.state import SimState

MAX_PAGE = 100


def _one_year_after(moment: datetime) -> datetime:
    """The same instant a calendar year later (29 Feb → 28 Feb)."""
    try:
        return moment.replace(year=moment.year + 1)
    except ValueError:
        return moment.replace(year=moment.year + 1, day=28)


class QueryError(Exception):
    def __init__(self, element: str, msg: str) -> None:
        super().__init__(msg)
        self.element = element
        self.msg = msg


def _last(request: Request, name: str) -> str | None:
    """A scalar query parameter. Bling runs on PHP: when a scalar is repeated, the last wins."""
    values = request.query_params.getlist(name)
    return values[-1] if values else None


def _int(request: Request, name: str, minimum: int | None = None) -> int | None:
    raw = _last(request, name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise QueryError(name, f"O parâmetro {name} deve ser um número inteiro.") from None
    if minimum is not None and value < minimum:
        raise QueryError(name, f"O parâmetro {name} deve ser maior ou igual a {minimum}.")
    return value


def _ints(request: Request, name: str) -> list[int]:
    out = []
    for raw in request.query_params.getlist(name):
        try:
            out.append(int(raw))
        except ValueError:
            raise QueryError(name, f"O parâmetro {name} deve conter números inteiros.") from None
    return out


def _datetime(request: Request, name: str, end: bool) -> datetime | None:
    """`YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DD` (a bare final date covers its whole day)."""
    raw = _last(request, name)
    if raw is None or raw == "":
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            value = datetime.strptime(raw.strip(), fmt).replace(tzinfo=BRT)
        except ValueError:
            continue
        if fmt == "%Y-%m-%d" and end:
            value += timedelta(days=1, microseconds=-1)
        return value
    raise QueryError(name, f"A data {raw!r} é inválida. Use o formato AAAA-MM-DD HH:MM:SS.")


def _date(request: Request, name: str) -> date | None:
    raw = _last(request, name)
    if raw is None or raw == "":
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise QueryError(name, f"A data {raw!r} é inválida. Use o formato AAAA-MM-DD.") from None


def _period(
    request: Request, start_name: str, end_name: str, now: datetime
) -> tuple[datetime | None, datetime | None]:
    start = _datetime(request, start_name, end=False)
    end = _datetime(request, end_name, end=True)
    if start is not None and end is not None and end < start:
        raise QueryError(end_name, "A data final deve ser maior ou igual à data inicial.")
    if start is not None and (end or now) > _one_year_after(start):
        raise QueryError(end_name, "O período informado não pode ser superior a 1 ano.")
    return start, end


def _page(request: Request) -> tuple[int, int]:
    page = _int(request, "pagina", minimum=1) or 1
    limit = _int(request, "limite", minimum=1) or MAX_PAGE
    # Inferred: Bling serves at most 100 records a page; a larger `limite` is clamped, which
    # is why a client must page until `data` is empty rather than until a short page.
    return page, min(limit, MAX_PAGE)


def _paged(items: list[Any], page: int, limit: int) -> list[Any]:
    start = (page - 1) * limit
    return items[start : start + limit]


def _query_errors(fn: Callable[[V3Call], Response]) -> Callable[[V3Call], Any]:
    async def wrapped(call: V3Call) -> Response:
        try:
            return fn(call)
        except QueryError as exc:
            return errors.validation_error([field_error(exc.element, exc.msg)])

    return wrapped


def newest_first(notes: Iterable[Note]) -> list[Note]:
    # Inferred order (the reference leaves it open): newest emission first, then id. Pages
    # shift while notes change, as they do on Bling; clients must tolerate it.
    return sorted(notes, key=lambda n: (n.emitted_at, n.id), reverse=True)


def _note_links(request: Request, state: SimState, note: Note) -> dict[str, str]:
    if not note.is_authorised:
        return {}
    base = str(request.base_url).rstrip("/")
    signature = state.xml_signature(note.chave)
    return {
        "xml": f"{base}/relatorios/nfe.xml.php?chaveAcesso={note.chave}&s&signature={signature}",
        "danfe": f"{base}/doc.view.php?id={note.danfe_hash}&accessKey={note.chave}",
        "pdf": f"{base}/doc.view.php?PDF=true&id={note.danfe_hash}&accessKey={note.chave}",
    }


def _list_notes(modelo: Modelo) -> Callable[[V3Call], Response]:
    max_situacao = 12 if modelo == Modelo.NFCE else 11

    def handler(call: V3Call) -> Response:
        request = call.request
        page, limit = _page(request)
        situacao = _int(request, "situacao")
        if situacao is not None and not 1 <= situacao <= max_situacao:
            raise QueryError("situacao", f"A situação {situacao} é inválida.")
        tipo: int | None = None
        if modelo == Modelo.NFE:
            raw_tipo = _last(request, "tipo")
            if raw_tipo not in (None, "", "0", "1"):
                raise QueryError("tipo", "O tipo deve ser 0 (entrada) ou 1 (saída).")
            # The official document gives `tipo` a default of "1": absent means saída.
            tipo = int(raw_tipo) if raw_tipo else 1
        start, end = _period(request, "dataEmissaoInicial", "dataEmissaoFinal", call.state.now())
        numero = _int(request, "numero")
        serie = _int(request, "serie")
        chave = _last(request, "chaveAcesso")
        numero_loja = _last(request, "numeroLoja") if modelo == Modelo.NFE else None
        carrier = _int(request, "idTransportador")

        def keep(n: Note) -> bool:
            if n.modelo != modelo:
                return False
            if situacao is None:
                if n.situacao == NfeSituacao.CANCELADA:
                    return False
            elif n.situacao != situacao:
                return False
            return not (
                (tipo is not None and n.tipo != tipo)
                or (start is not None and n.emitted_at < start)
                or (end is not None and n.emitted_at > end)
                or (numero is not None and n.numero != numero)
                or (serie is not None and n.serie != serie)
                or (chave and n.chave != chave)
                or (numero_loja and n.numero_pedido_loja != numero_loja)
                or (carrier is not None and (n.carrier is None or n.carrier.id != carrier))
            )

        notes = newest_first(n for n in call.company.notes.values() if keep(n))
        return BlingJSONResponse({"data": [v3json.note_base(n) for n in _paged(notes, page, limit)]})

    return handler


def _note_of(call: V3Call, modelo: Modelo) -> Note | None:
    try:
        note_id = int(call.request.path_params["id"])
    except ValueError:
        return None
    note = call.company.notes.get(note_id)
    return note if note is not None and note.modelo == modelo else None


def _get_note(modelo: Modelo) -> Callable[[V3Call], Response]:
    def handler(call: V3Call) -> Response:
        note = _note_of(call, modelo)
        if note is None:
            return errors.not_found()
        links = _note_links(call.request, call.state, note)
        return BlingJSONResponse(
            {"data": v3json.note_detail(note, links, simples=call.company.crt == 1)}
        )

    return handler


def _get_document(call: V3Call) -> Response:
    chave = call.request.path_params["chave"]
    formato = _last(call.request, "formato")
    if formato not in ("xml", "pdf"):
        raise QueryError("formato", "O formato deve ser xml ou pdf.")
    if len(chave) != 44 or not chave.isdigit():
        raise QueryError("chaveAcesso", "A chave de acesso deve ter 44 dígitos.")
    found = call.state.find_note_by_chave(chave)
    note = found[1] if found is not None and found[0] is call.company else None
    if note is None or not note.is_authorised:
        return errors.not_found()
    if formato == "xml":
        content, name = call.state.note_xml(call.company, note), f"{chave}.xml"
    else:
        content, name = build_danfe_pdf(call.company, note), f"{chave}.pdf"
    packed = base64.b64encode(gzip.compress(content, mtime=0)).decode("ascii")
    return BlingJSONResponse({"data": [{"nome": name, "conteudo": packed}]})


def _list_orders(call: V3Call) -> Response:
    request = call.request
    page, limit = _page(request)
    contact = _int(request, "idContato")
    situations = set(_ints(request, "idsSituacoes[]"))
    first, last = _period(request, "dataInicial", "dataFinal", call.state.now())
    changed_from, changed_to = _period(
        request, "dataAlteracaoInicial", "dataAlteracaoFinal", call.state.now()
    )
    due_from, due_to = _date(request, "dataPrevistaInicial"), _date(request, "dataPrevistaFinal")
    numero = _int(request, "numero")
    store = _int(request, "idLoja")
    seller = _int(request, "idVendedor")
    store_numbers = set(request.query_params.getlist("numerosLojas[]"))
    # The simulated orders belong to no cash register and to business unit 0.
    cash_register = _int(request, "idControleCaixa")
    business_unit = _int(request, "idUnidadeNegocio")

    def keep(o: SalesOrder) -> bool:
        return not (
            (contact is not None and o.contato.id != contact)
            or (situations and o.situacao_id not in situations)
            or (first and o.data < first.date())
            or (last and o.data > last.date())
            or cash_register is not None
            or (business_unit is not None and business_unit != 0)
            or (changed_from and o.altered_at < changed_from)
            or (changed_to and o.altered_at > changed_to)
            or (due_from and o.data_prevista < due_from)
            or (due_to and o.data_prevista > due_to)
            or (numero is not None and o.numero != numero)
            or (store is not None and (o.store is None or o.store.id != store))
            or (seller is not None and o.vendedor_id != seller)
            or (store_numbers and o.numero_loja not in store_numbers)
        )

    orders = sorted(
        (o for o in call.company.orders.values() if keep(o)),
        key=lambda o: (o.data, o.id),
        reverse=True,
    )
    return BlingJSONResponse(
        {"data": [v3json.order_base(call.company, o) for o in _paged(orders, page, limit)]}
    )


def _order_of(call: V3Call) -> SalesOrder | None:
    try:
        return call.company.orders.get(int(call.request.path_params["id"]))
    except ValueError:
        return None


def _get_order(call: V3Call) -> Response:
    order = _order_of(call)
    if order is None:
        return errors.not_found()
    return BlingJSONResponse({"data": v3json.order_detail(call.company, order)})


def _change_order_situation(call: V3Call) -> Response:
    order = _order_of(call)
    if order is None:
        return errors.not_found()
    try:
        situation_id = int(call.request.path_params["situacao"])
    except ValueError:
        situation_id = -1
    if not any(s.id == situation_id for s in call.company.order_situations):
        return errors.validation_error([field_error(
            "idSituacao", f"A situação {call.request.path_params['situacao']} não existe no "
            "módulo de vendas.", code=2, namespace="VENDAS",
        )])
    if order.situacao_id != situation_id:
        order.situacao_id = situation_id
        order.altered_at = call.state.now()
        call.state.order_event(call.company, order, "updated")
    return Response(status_code=204)


SALES_MODULE_ID = 98310
MODULES: list[dict[str, Any]] = [
    {"id": SALES_MODULE_ID, "nome": "Vendas", "descricao": "Pedidos de Venda", "criarSituacoes": True},
    {"id": 98311, "nome": "Compras", "descricao": "Pedidos de Compra", "criarSituacoes": True},
    {"id": 98312, "nome": "OrdensServico", "descricao": "Ordens de Serviço", "criarSituacoes": True},
    {"id": 98313, "nome": "PropostasComerciais", "descricao": "Propostas Comerciais",
     "criarSituacoes": False},
]
OTHER_MODULE_SITUATIONS = [
    {"id": 6, "nome": "Em aberto", "idHerdado": 0, "cor": "#E9DC40"},
    {"id": 9, "nome": "Atendido", "idHerdado": 0, "cor": "#3FB57A"},
    {"id": 12, "nome": "Cancelado", "idHerdado": 0, "cor": "#FF6D6D"},
]


def _modules(call: V3Call) -> Response:
    return BlingJSONResponse({"data": MODULES})


def _module_situations(call: V3Call) -> Response:
    try:
        module_id = int(call.request.path_params["id"])
    except ValueError:
        return errors.not_found()
    if module_id == SALES_MODULE_ID:
        data = [
            {"id": s.id, "nome": s.nome, "idHerdado": s.id_herdado, "cor": s.cor}
            for s in call.company.order_situations
        ]
    elif any(m["id"] == module_id for m in MODULES):
        data = OTHER_MODULE_SITUATIONS
    else:
        return errors.not_found()
    return BlingJSONResponse({"data": data})


def _decimal(value: Any, element: str) -> Decimal:
    """A JSON number (or numeric string) that is finite and not absurd: JSON has no NaN."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise QueryError(element, f"O campo {element} deve ser numérico.")
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise QueryError(element, f"O campo {element} deve ser numérico.") from None
    if not number.is_finite() or abs(number) >= Decimal("1e12"):
        raise QueryError(element, f"O campo {element} deve ser um número válido.")
    return number


def _text(value: Any, element: str, max_length: int = 255) -> str:
    if not isinstance(value, str):
        raise QueryError(element, f"O campo {element} deve ser um texto.")
    if len(value) > max_length:
        raise QueryError(element, f"O campo {element} aceita no máximo {max_length} caracteres.")
    return value


def _ref_id(body: dict[str, Any], key: str) -> int | None:
    ref = body.get(key)
    if ref is None:
        return None
    if not isinstance(ref, dict) or not isinstance(ref.get("id"), int):
        raise QueryError(key, f"O campo {key}.id deve ser um número inteiro.")
    return int(ref["id"]) or None


def _apply_object_fields(obj: LogisticObject, body: dict[str, Any], now: datetime) -> None:
    tracking = body.get("rastreamento")
    if tracking is not None:
        if not isinstance(tracking, dict):
            raise QueryError("rastreamento", "O campo rastreamento deve ser um objeto.")
        situacao = tracking.get("situacao", obj.tracking_situacao)
        if not isinstance(situacao, int) or not 0 <= situacao <= 9:
            raise QueryError("rastreamento.situacao", "A situação do rastreamento é inválida.")
        texts = {
            name: _text(tracking.get(name, current), f"rastreamento.{name}")
            for name, current in (
                ("codigo", obj.tracking_code), ("descricao", obj.tracking_description),
                ("url", obj.tracking_url), ("origem", obj.origem), ("destino", obj.destino),
            )
        }
        obj.tracking_code, obj.tracking_description = texts["codigo"], texts["descricao"]
        obj.tracking_url, obj.origem, obj.destino = texts["url"], texts["origem"], texts["destino"]
        obj.tracking_situacao = situacao
        obj.tracking_updated_at = now
    dims = body.get("dimensoes")
    if dims is not None:
        if not isinstance(dims, dict):
            raise QueryError("dimensoes", "O campo dimensoes deve ser um objeto.")
        for name in ("peso", "altura", "largura", "comprimento", "diametro"):
            if name in dims:
                setattr(obj, name, _decimal(dims[name], f"dimensoes.{name}"))
    if "dataSaida" in body:
        raw = _text(body["dataSaida"], "dataSaida")
        try:
            obj.data_saida = date.fromisoformat(raw).isoformat()
        except ValueError:
            raise QueryError("dataSaida", f"A data {raw!r} é inválida. Use AAAA-MM-DD.") from None
    if "prazoEntregaPrevisto" in body:
        days = body["prazoEntregaPrevisto"]
        if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 3650:
            raise QueryError("prazoEntregaPrevisto", "O prazo deve ser um número de dias.")
        obj.prazo_entrega_previsto = days
    for key, attr in (("fretePrevisto", "frete_previsto"), ("valorDeclarado", "valor_declarado")):
        if key in body:
            setattr(obj, attr, _decimal(body[key], key))
    for key, attr in (("avisoRecebimento", "aviso_recebimento"), ("maoPropria", "mao_propria")):
        if key in body:
            if not isinstance(body[key], bool):
                raise QueryError(key, f"O campo {key} deve ser verdadeiro ou falso.")
            setattr(obj, attr, body[key])
    if "embalagem" in body:
        obj.embalagem_id = _ref_id(body, "embalagem")


async def _create_object(call: V3Call) -> Response:
    body = await json_body(call.request)
    if isinstance(body, Response):
        return body
    try:
        order_id = _ref_id(body, "pedidoVenda")
        note_id = _ref_id(body, "notaFiscal")
        service_id = _ref_id(body, "servico")
        if order_id is None and note_id is None:
            raise QueryError("pedidoVenda", "Informe o pedido de venda ou a nota fiscal do objeto.")
        company = call.company
        if order_id is not None and order_id not in company.orders:
            raise QueryError("pedidoVenda", f"O pedido de venda {order_id} não foi encontrado.")
        if note_id is not None and note_id not in company.notes:
            raise QueryError("notaFiscal", f"A nota fiscal {note_id} não foi encontrada.")
        now = call.state.now()
        obj = LogisticObject(
            id=allocate_id(company, "logistic", call.state.rng), pedido_venda_id=order_id,
            nota_fiscal_id=note_id, servico_id=service_id, tracking_code="", tracking_description="Criado",
            tracking_situacao=8, origem="", destino="", tracking_updated_at=now,
            tracking_url="", peso=Decimal(0), altura=Decimal(0), largura=Decimal(0),
            comprimento=Decimal(0), diametro=Decimal(0), embalagem_id=None,
            data_saida=now.date().isoformat(),
            prazo_entrega_previsto=0, frete_previsto=Decimal(0), valor_declarado=Decimal(0),
            aviso_recebimento=False, mao_propria=False,
        )
        _apply_object_fields(obj, body, now)
    except QueryError as exc:
        return errors.validation_error([field_error(exc.element, exc.msg)])
    company.logistic_objects[obj.id] = obj
    if order_id is not None:
        company.orders[order_id].volume_ids.append(obj.id)
    return BlingJSONResponse({"data": {"id": obj.id}}, status_code=201)


def _object_of(call: V3Call) -> LogisticObject | None:
    try:
        return call.company.logistic_objects.get(int(call.request.path_params["id"]))
    except ValueError:
        return None


async def _get_object(call: V3Call) -> Response:
    obj = _object_of(call)
    if obj is None:
        return errors.not_found()
    return BlingJSONResponse({"data": v3json.logistic_object(obj)})


async def _update_object(call: V3Call) -> Response:
    obj = _object_of(call)
    if obj is None:
        return errors.not_found()
    body = await json_body(call.request)
    if isinstance(body, Response):
        return body
    try:
        _apply_object_fields(obj, body, call.state.now())
    except QueryError as exc:
        return errors.validation_error([field_error(exc.element, exc.msg)])
    return BlingJSONResponse({"data": {"id": obj.id}})


async def _delete_object(call: V3Call) -> Response:
    obj = _object_of(call)
    if obj is None:
        return errors.not_found()
    del call.company.logistic_objects[obj.id]
    for order in call.company.orders.values():
        if obj.id in order.volume_ids:
            order.volume_ids.remove(obj.id)
    return Response(status_code=204)


def _company(call: V3Call) -> Response:
    return BlingJSONResponse({"data": v3json.company_basic(call.company)})


def routes(state: SimState) -> list[Route]:
    def r(path: str, scope: Scope, handler: Callable[[V3Call], Any], methods: list[str]) -> Route:
        label = f"{methods[0]} /Api/v3{path}"
        return Route(path, v3_endpoint(state, scope, label, handler), methods=methods)

    return [
        r("/nfe", Scope.NFE, _query_errors(_list_notes(Modelo.NFE)), ["GET"]),
        r("/nfe/documento/{chave}", Scope.NFE, _query_errors(_get_document), ["GET"]),
        r("/nfe/{id}", Scope.NFE, _query_errors(_get_note(Modelo.NFE)), ["GET"]),
        r("/nfce", Scope.NFCE, _query_errors(_list_notes(Modelo.NFCE)), ["GET"]),
        r("/nfce/{id}", Scope.NFCE, _query_errors(_get_note(Modelo.NFCE)), ["GET"]),
        r("/pedidos/vendas", Scope.PEDIDOS_VENDAS, _query_errors(_list_orders), ["GET"]),
        r("/pedidos/vendas/{id}", Scope.PEDIDOS_VENDAS, _query_errors(_get_order), ["GET"]),
        r("/pedidos/vendas/{id}/situacoes/{situacao}", Scope.PEDIDOS_VENDAS,
          _query_errors(_change_order_situation), ["PATCH"]),
        r("/situacoes/modulos", Scope.SITUACOES, _query_errors(_modules), ["GET"]),
        r("/situacoes/modulos/{id}", Scope.SITUACOES, _query_errors(_module_situations), ["GET"]),
        r("/logisticas/objetos", Scope.LOGISTICAS, _create_object, ["POST"]),
        r("/logisticas/objetos/{id}", Scope.LOGISTICAS, _get_object, ["GET"]),
        r("/logisticas/objetos/{id}", Scope.LOGISTICAS, _update_object, ["PUT"]),
        r("/logisticas/objetos/{id}", Scope.LOGISTICAS, _delete_object, ["DELETE"]),
        r("/empresas/me/dados-basicos", Scope.EMPRESAS, _query_errors(_company), ["GET"]),
    ]

