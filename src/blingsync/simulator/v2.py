"""API v2 (legacy) resources under /Api/v2: NF-e and NFC-e lists and lookups, sales orders
(list, lookup, situation change), the sales module's situations and the logistics services.

v2 is what older brand integrations still run (shared/reference/bling-api.md §2): an `apikey`
of a "usuário API" on every call, the output format as a path suffix (`/json/`), pages as a
path segment (`/page=N/`), filters packed into one `filters` parameter and every answer inside a
`retorno` envelope. Each request goes through, in this order:

1. the discontinuation switch (410, before the key is even looked at, as integrators report
   for 2026);
2. the API key (cod 3, 401);
3. the account's limits, shared with v3 because Bling counts per account (cod 18, 429, in the
   object-form `erros` of the real capture);
4. the API user's permissions (the boxes ticked under Vendas when the key was generated);
5. the handler.

Where the reference is silent the simulator chooses, and says so here:

* Only JSON is served. A `/xml/` suffix gets a v2 error (HTTP 400, cod 10) saying so, rather
  than a 404, so a client pointed at the wrong format learns why.
* Client mistakes (malformed `filters`, unknown filter names, a bad page number, a bad PUT
  body) answer HTTP 400 with cod 10 and a message naming the culprit. Unknown filter names are
  refused rather than ignored, so a client's typo cannot silently widen a query.
* Lists are ordered newest emission first, then by id (orders: by date, then id), like the
  simulator's v3, so both generations page through the same sequence.
* A `situacao` filter with no note in that situation, a page past the end and an unknown
  número all answer cod 14 with HTTP 200: that is how v2 clients detect the end.
* An NFC-e list filtered by `dataEmissao` without a `situacao` leaves cancelled notes out, as
  the v2 help page for `GET nfces` says; NF-e lists without `situacao` mean "Todas", and
  without `tipo` hold entradas and saídas alike.
* The order-situation change (PUT) reads an `application/x-www-form-urlencoded` body (`apikey`
  may also be in the query string); setting the situation an order already has changes
  nothing and announces nothing, as in the simulator's v3.
* Paths are accepted with or without the final slash (`/json/` and `/json`): clients of the
  time wrote both. An unknown path answers a v2 error with HTTP 404.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl
from xml.etree import ElementTree

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from blingsync.simulator import v2json
from blingsync.simulator.errors import (
    V2_DAILY_LIMIT,
    V2_DISCONTINUED,
    V2_INVALID_KEY,
    V2_NO_PERMISSION,
    V2_NOT_FOUND,
    V2_RATE_LIMIT,
    BlingJSONResponse,
    v2_error,
)
from blingsync.simulator.guard import fault_of
from blingsync.simulator.model import (
    BRT,
    V2_PERMISSION_LABELS,
    V2_SITUACAO,
    ApiUser,
    Company,
    Modelo,
    NfeSituacao,
    Note,
    SalesOrder,
    V2Permission,
)
from blingsync.simulator.state import SimState
from blingsync.simulator.v3 import OTHER_MODULE_SITUATIONS, newest_first

PAGE_SIZE = 100

V2_BAD_REQUEST = 10
"""Inferred: the code the simulator gives every malformed request (filters, page, format,
body). Bling's own codes for these are not known; 10 clashes with none that are."""

V2_UNKNOWN_RESOURCE = (
    # Inferred, for paths that name no v2 resource; distinct from cod 14 so that a typo in a
    # path is not mistaken for "no more pages".
    1,
    "Recurso nao encontrado",
)

MAX_FORM_BYTES = 64 * 1024

SITUACAO_BY_V2_CODE: dict[int, NfeSituacao] = {code: s for s, (code, _) in V2_SITUACAO.items()}
V2_CODES = frozenset(range(14))  # 0 Todas, 1..13 as in §2.4 (2 "Emitida" has no v3 twin)

DATE_FORMATS = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y")
_FILTER = re.compile(r"^\s*([A-Za-z]+)\s*\[(.*)\]\s*$", re.DOTALL)
_RANGE_SEP = re.compile(r"\s+TO\s+", re.IGNORECASE)


class V2Refusal(Exception):
    """A request the handler refuses with a v2 error (status, cod, msg)."""

    def __init__(self, status: int, cod: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.cod = cod
        self.msg = msg


def _bad(msg: str) -> V2Refusal:
    return V2Refusal(400, V2_BAD_REQUEST, msg)


def _not_found() -> V2Refusal:
    return V2Refusal(200, *V2_NOT_FOUND)


@dataclass
class V2Call:
    request: Request
    state: SimState
    company: Company
    user: ApiUser
    form: dict[str, str]

    @property
    def base(self) -> str:
        return str(self.request.base_url).rstrip("/")


Handler = Callable[[V2Call], Response]
PermissionRule = V2Permission | Callable[[Request], V2Permission | None] | None


# --- the guard -----------------------------------------------------------------------------


async def _form(request: Request) -> dict[str, str]:
    """The url-encoded form of a POST/PUT (`apikey`, `xml`). Parsed by hand: v2 clients send
    `application/x-www-form-urlencoded`, and the simulator does not pull in a multipart
    parser for a legacy API. The last value of a repeated field wins, as in PHP."""
    body = await request.body()
    if not body or len(body) > MAX_FORM_BYTES:
        return {}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("latin-1")
    return dict(parse_qsl(text, keep_blank_values=True))


def _apikey(request: Request, form: dict[str, str]) -> str:
    values = request.query_params.getlist("apikey")
    if values and values[-1].strip():
        return values[-1].strip()
    return form.get("apikey", "").strip()


def v2_endpoint(
    state: SimState, permission: PermissionRule, label: str, handler: Handler
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a v2 handler in the checks every v2 request meets, in Bling's order."""

    async def endpoint(request: Request) -> Response:
        if state.v2_discontinued:
            return v2_error(410, *V2_DISCONTINUED)
        form = await _form(request) if request.method in ("POST", "PUT") else {}
        apikey = _apikey(request, form)
        found = state.api_user(apikey) if apikey else None
        if found is None:
            return v2_error(401, *V2_INVALID_KEY)
        company, user = found
        counters = state.counters[company.id]
        verdict = state.admit(company, burst=fault_of(request).kind == "429")
        if not verdict.allowed:
            counters.record(label, 429)
            cod, msg = V2_DAILY_LIMIT if verdict.period == "day" else V2_RATE_LIMIT
            return v2_error(429, cod, msg, shape="object")
        needed = permission(request) if callable(permission) else permission
        if needed is not None and needed not in user.permissions:
            counters.record(label, 403)
            return v2_error(
                403, V2_NO_PERMISSION[0],
                f"{V2_NO_PERMISSION[1]}: {V2_PERMISSION_LABELS[needed]}",
            )
        try:
            _check_format(request)
            response = handler(V2Call(request, state, company, user, form))
        except V2Refusal as exc:
            response = v2_error(exc.status, exc.cod, exc.msg)
        counters.record(label, response.status_code)
        return response

    return endpoint


def _check_format(request: Request) -> None:
    fmt = request.path_params.get("fmt", "json")
    if fmt == "json":
        return
    if fmt == "xml":
        raise _bad("O simulador atende apenas o formato json: use o sufixo /json/ no lugar de /xml/")
    raise V2Refusal(404, V2_UNKNOWN_RESOURCE[0],
                    f"{V2_UNKNOWN_RESOURCE[1]}: formato '{fmt}' desconhecido, use /json/")


def _unknown_path(state: SimState) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        if state.v2_discontinued:
            return v2_error(410, *V2_DISCONTINUED)
        return v2_error(
            404, V2_UNKNOWN_RESOURCE[0],
            f"{V2_UNKNOWN_RESOURCE[1]}: {request.method} {request.url.path}",
        )

    return endpoint


# --- filters -------------------------------------------------------------------------------


def parse_filters(raw: str | None, allowed: Iterable[str]) -> dict[str, str]:
    """`name[value]` pairs joined by `;` (spaces tolerated) -> {name: value}.

    A repeated name keeps its last value (PHP's behaviour with repeated keys)."""
    names = tuple(allowed)
    out: dict[str, str] = {}
    if not raw:
        return out
    for part in raw.split(";"):
        if not part.strip():
            continue
        m = _FILTER.match(part)
        if m is None:
            raise _bad(
                f"Filtro mal formado: '{part.strip()}'. Use nome[valor], separados por ';', "
                "por exemplo dataEmissao[01/11/2026 TO 20/11/2026]; situacao[7]"
            )
        name, value = m.group(1), m.group(2).strip()
        if name not in names:
            raise _bad(f"Filtro desconhecido: '{name}'. Filtros aceitos: {', '.join(names)}")
        if not value:
            raise _bad(f"Filtro sem valor: '{part.strip()}'")
        out[name] = value
    return out


def _moment(name: str, text: str, end: bool) -> datetime:
    """`dd/mm/YYYY` with optional ` HH:MM:SS`. An end covers the whole of what it names: a
    date-only end its whole day, an end with a time its whole second (Bling keeps seconds)."""
    text = " ".join(text.split())
    for fmt in DATE_FORMATS:
        try:
            value = datetime.strptime(text, fmt).replace(tzinfo=BRT)
        except ValueError:
            continue
        if end:
            span = timedelta(days=1) if fmt == "%d/%m/%Y" else timedelta(seconds=1)
            value += span - timedelta(microseconds=1)
        return value
    raise _bad(
        f"Data invalida no filtro {name}: '{text}'. Use dd/mm/aaaa ou dd/mm/aaaa hh:mm:ss"
    )


def date_range(name: str, value: str) -> tuple[datetime, datetime]:
    """`01/11/2026 TO 20/11/2026 23:59:59` -> (start, end). A single date is that day."""
    parts = _RANGE_SEP.split(value.strip())
    if len(parts) == 1:
        parts = [parts[0], parts[0]]
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise _bad(f"Periodo invalido no filtro {name}: use {name}[dd/mm/aaaa TO dd/mm/aaaa]")
    start, end = _moment(name, parts[0], end=False), _moment(name, parts[1], end=True)
    if end < start:
        raise _bad(f"Periodo invalido no filtro {name}: a data final e anterior a inicial")
    return start, end


def _int_filter(name: str, value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise _bad(f"Valor invalido no filtro {name}: '{value}' deve ser um numero") from None


def _page(request: Request) -> int:
    raw = request.path_params.get("page")
    if raw is None:
        return 1
    try:
        page = int(raw)
    except ValueError:
        raise _bad(f"Pagina invalida: '{raw}'. Use /page=N/ com N a partir de 1") from None
    if page < 1:
        raise _bad(f"Pagina invalida: '{raw}'. Use /page=N/ com N a partir de 1")
    return page


def _paged(items: list[Any], page: int) -> list[Any]:
    start = (page - 1) * PAGE_SIZE
    chunk = items[start : start + PAGE_SIZE]
    if not chunk:
        raise _not_found()
    return chunk


def _filters(call: V2Call, allowed: Iterable[str]) -> dict[str, str]:
    values = call.request.query_params.getlist("filters")
    return parse_filters(values[-1] if values else None, allowed)


# --- notes ---------------------------------------------------------------------------------


def _links(call: V2Call, note: Note) -> dict[str, str]:
    """The note's document links. The XML link is the signed one the simulator serves at
    /relatorios/nfe.xml.php, only once the note has an authorised XML."""
    base = call.base
    out: dict[str, str] = {}
    if note.is_authorised and note.chave:
        signature = call.state.xml_signature(note.chave)
        out["xml"] = (
            f"{base}/relatorios/nfe.xml.php?s&chaveAcesso={note.chave}&signature={signature}"
        )
    if note.danfe_hash:
        out["danfe"] = f"{base}/doc.view.php?id={note.danfe_hash}"
        out["pdf"] = f"{base}/doc.view.php?PDF=true&id={note.danfe_hash}"
    return out


def _notes_answer(call: V2Call, notes: list[Note]) -> Response:
    # NF-e and NFC-e alike come back under notasfiscais/notafiscal (reference §2.3, S24).
    return BlingJSONResponse({"retorno": {"notasfiscais": [
        {"notafiscal": v2json.nota_fiscal(call.company, n, _links(call, n))} for n in notes
    ]}})


def _situacao_filter(value: str) -> int:
    code = _int_filter("situacao", value)
    if code not in V2_CODES:
        raise _bad(
            f"Situacao invalida no filtro situacao: {code}. Use 0 (todas) ou de 1 a 13"
        )
    return code


def _list_notes(modelo: Modelo) -> Handler:
    allowed = ("dataEmissao", "situacao", "tipo") if modelo == Modelo.NFE else (
        "dataEmissao", "situacao",
    )

    def handler(call: V2Call) -> Response:
        page = _page(call.request)
        filters = _filters(call, allowed)
        start = end = None
        if "dataEmissao" in filters:
            start, end = date_range("dataEmissao", filters["dataEmissao"])
        code = _situacao_filter(filters["situacao"]) if "situacao" in filters else None
        tipo: int | None = None
        if "tipo" in filters:
            letter = filters["tipo"].upper()
            if letter not in ("S", "E"):
                raise _bad(f"Valor invalido no filtro tipo: '{filters['tipo']}'. Use S ou E")
            tipo = 1 if letter == "S" else 0
        # The v2 help page for GET nfces: filtering by date leaves cancelled NFC-e out.
        hide_cancelled = modelo == Modelo.NFCE and start is not None and code is None

        def keep(n: Note) -> bool:
            if n.modelo != modelo:
                return False
            if code:  # 0 = Todas
                wanted = SITUACAO_BY_V2_CODE.get(code)
                if n.situacao != wanted:
                    return False
            if hide_cancelled and n.situacao == NfeSituacao.CANCELADA:
                return False
            return not (
                (tipo is not None and n.tipo != tipo)
                or (start is not None and n.emitted_at < start)
                or (end is not None and n.emitted_at > end)
            )

        notes = newest_first(n for n in call.company.notes.values() if keep(n))
        return _notes_answer(call, _paged(notes, page))

    return handler


def _get_note(modelo: Modelo) -> Handler:
    def handler(call: V2Call) -> Response:
        params = call.request.path_params
        try:
            numero, serie = int(params["numero"]), int(params["serie"])
        except ValueError:
            raise _not_found() from None
        notes = newest_first(
            n for n in call.company.notes.values()
            if n.modelo == modelo and n.numero == numero and n.serie == serie
        )
        if not notes:
            raise _not_found()
        return _notes_answer(call, notes[:1])

    return handler


# --- orders --------------------------------------------------------------------------------

ORDER_FILTERS = ("dataEmissao", "dataAlteracao", "dataPrevista", "idSituacao", "idContato")


def _dates(name: str, value: str) -> tuple[date, date]:
    start, end = date_range(name, value)
    return start.date(), end.date()


def _orders_answer(call: V2Call, orders: list[SalesOrder]) -> Response:
    return BlingJSONResponse({"retorno": {"pedidos": [
        {"pedido": v2json.pedido(call.company, o)} for o in orders
    ]}})


def _list_orders(call: V2Call) -> Response:
    page = _page(call.request)
    filters = _filters(call, ORDER_FILTERS)
    emitted = _dates("dataEmissao", filters["dataEmissao"]) if "dataEmissao" in filters else None
    due = _dates("dataPrevista", filters["dataPrevista"]) if "dataPrevista" in filters else None
    changed = (
        date_range("dataAlteracao", filters["dataAlteracao"])
        if "dataAlteracao" in filters else None
    )
    situation = (
        _int_filter("idSituacao", filters["idSituacao"]) if "idSituacao" in filters else None
    )
    contact = _int_filter("idContato", filters["idContato"]) if "idContato" in filters else None

    def keep(o: SalesOrder) -> bool:
        return not (
            (emitted is not None and not emitted[0] <= o.data <= emitted[1])
            or (due is not None and not due[0] <= o.data_prevista <= due[1])
            or (changed is not None and not changed[0] <= o.altered_at <= changed[1])
            or (situation is not None and o.situacao_id != situation)
            or (contact is not None and o.contato.id != contact)
        )

    orders = sorted(
        (o for o in call.company.orders.values() if keep(o)),
        key=lambda o: (o.data, o.id),
        reverse=True,
    )
    return _orders_answer(call, _paged(orders, page))


def _order_of(call: V2Call) -> SalesOrder:
    try:
        numero = int(call.request.path_params["numero"])
    except ValueError:
        raise _not_found() from None
    order = next((o for o in call.company.orders.values() if o.numero == numero), None)
    if order is None:
        raise _not_found()
    return order


def _get_order(call: V2Call) -> Response:
    return _orders_answer(call, [_order_of(call)])


def _situation_id_from_xml(xml: str) -> int:
    """`<pedido><idSituacao>N</idSituacao></pedido>` -> N."""
    if not xml.strip():
        raise _bad("O parametro xml e obrigatorio: <pedido><idSituacao>N</idSituacao></pedido>")
    if "<!" in xml:
        # No DTDs or entities: the payload is four tags, and refusing declarations keeps the
        # parser away from entity-expansion tricks.
        raise _bad("XML invalido: declaracoes DOCTYPE/ENTITY nao sao aceitas")
    try:
        root = ElementTree.fromstring(xml)  # noqa: S314 - DTDs refused above; tiny trusted shape
    except ElementTree.ParseError as exc:
        raise _bad(f"XML invalido: {exc}") from None
    if root.tag != "pedido":
        raise _bad(f"XML invalido: o elemento raiz deve ser <pedido>, nao <{root.tag}>")
    text = root.findtext("idSituacao")
    if text is None or not text.strip():
        raise _bad("XML invalido: informe <idSituacao> dentro de <pedido>")
    try:
        return int(text.strip())
    except ValueError:
        raise _bad(f"XML invalido: idSituacao '{text.strip()}' deve ser um numero") from None


def _change_order_situation(call: V2Call) -> Response:
    order = _order_of(call)
    situation_id = _situation_id_from_xml(call.form.get("xml", ""))
    if not any(s.id == situation_id for s in call.company.order_situations):
        raise _bad(f"A situacao {situation_id} nao existe no modulo Vendas")
    if order.situacao_id != situation_id:
        order.situacao_id = situation_id
        order.altered_at = call.state.now()
        call.state.order_event(call.company, order, "updated")
    return _orders_answer(call, [order])


# --- situations ----------------------------------------------------------------------------

SALES_MODULE = "vendas"
OTHER_MODULES = frozenset({"pedidoscompra", "ordemservico"})


def _situation_permission(request: Request) -> V2Permission | None:
    """Reading the sales situations needs Pedidos de Venda; the other modules' fixed lists
    need nothing the simulator models."""
    modulo = str(request.path_params.get("modulo", "")).lower()
    return V2Permission.PEDIDOS_VENDA if modulo == SALES_MODULE else None


def _situations(call: V2Call) -> Response:
    modulo = str(call.request.path_params["modulo"]).lower()
    if modulo == SALES_MODULE:
        items = [v2json.situacao(s) for s in call.company.order_situations]
    elif modulo in OTHER_MODULES:
        items = [
            {"situacao": {k: str(v) for k, v in s.items()}} for s in OTHER_MODULE_SITUATIONS
        ]
    else:
        raise _not_found()
    return BlingJSONResponse({"retorno": {"situacoes": items}})


# --- logistics services ----------------------------------------------------------------------


def _logistics_services(call: V2Call) -> Response:
    """`logisticas/servicos/json/`: one service per carrier of the account, with the id its
    notes' volumes carry (`idServico`). The shape is inferred (reference §2.2 names the path
    only); what matters for clients is the permission it sits behind, Interações Logísticas."""
    company = call.company
    items = [
        {"servico": {
            "id": str(7_000_000_000 + company.id * 100 + index),
            "descricao": f"{carrier.nome} - Padrão",
            "codigo": f"{index + 1:02d}",
            "transportadora": carrier.nome,
            "ativo": "S",
        }}
        for index, carrier in enumerate(company.carriers)
    ]
    if not items:
        raise _not_found()
    return BlingJSONResponse({"retorno": {"servicos": items}})


# --- routes --------------------------------------------------------------------------------


def routes(state: SimState) -> list[Route]:
    out: list[Route] = []

    def r(path: str, resource: str, permission: PermissionRule, handler: Handler,
          method: str = "GET") -> None:
        label = f"{method} /Api/v2/{resource}"
        endpoint = v2_endpoint(state, permission, label, handler)
        # Clients of the time wrote both `…/json/` and `…/json`.
        out.append(Route(f"{path}/", endpoint, methods=[method]))
        out.append(Route(path, endpoint, methods=[method]))

    nfe, nfce = V2Permission.NOTAS_FISCAIS, V2Permission.NFCE
    orders = V2Permission.PEDIDOS_VENDA
    r("/notasfiscais/{fmt}", "notasfiscais", nfe, _list_notes(Modelo.NFE))
    r("/notasfiscais/page={page}/{fmt}", "notasfiscais", nfe, _list_notes(Modelo.NFE))
    r("/notafiscal/{numero}/{serie}/{fmt}", "notafiscal", nfe, _get_note(Modelo.NFE))
    r("/nfces/{fmt}", "nfces", nfce, _list_notes(Modelo.NFCE))
    r("/nfces/page={page}/{fmt}", "nfces", nfce, _list_notes(Modelo.NFCE))
    r("/nfce/{numero}/{serie}/{fmt}", "nfce", nfce, _get_note(Modelo.NFCE))
    r("/pedidos/{fmt}", "pedidos", orders, _list_orders)
    r("/pedidos/page={page}/{fmt}", "pedidos", orders, _list_orders)
    r("/pedido/{numero}/{fmt}", "pedido", orders, _get_order)
    r("/pedido/{numero}/{fmt}", "pedido", V2Permission.PEDIDOS_VENDA_SITUACOES,
      _change_order_situation, method="PUT")
    r("/situacao/{modulo}/{fmt}", "situacao", _situation_permission, _situations)
    r("/logisticas/servicos/{fmt}", "logisticas/servicos", V2Permission.INTERACOES_LOGISTICAS,
      _logistics_services)
    out.append(Route("/{rest:path}", _unknown_path(state),
                     methods=["GET", "POST", "PUT", "PATCH", "DELETE"]))
    return out
