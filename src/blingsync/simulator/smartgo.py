"""A fake SmartGo WMS gateway for tests and the demo (reference §7.3, the expedição part).
Production code never imports it.

It behaves as the reference describes the real gateway, so the sink is tested against the
same uncertainties it will meet:

* every answer is the envelope `{model, code, errors, success}` (camelCase);
* a missing or unknown `api_key` → 401; `require_doc_depositante` → 400 without the header;
* `POST /expedicao/produto` validates `cabecalho.codigoExterno` and `pedidoItens` (known
  `codigoProduto`, `quantidade > 0`); a duplicate `codigoExterno` returns the existing order
  (`duplicate="return"`, the default) or a business error (`duplicate="error"`);
* `PATCH /expedicao/pedido/cancelar` by `idPedido`, `codigoInterno` or `codigoExterno`,
  allowed only in state `GERADO` (again on a cancelled one: "já está cancelado");
* 120 requests per minute per key (a fixed one-minute window on `clock`) → 429 with Retry-After;
* business errors as HTTP 400, or HTTP 200 with `success: false` (`errors_as_200`);
* `fail_next`: statuses to answer before any processing (faults);
* every request is recorded (`received`) for assertions.
Any other path answers 404, as `/v2/expedicao/por-produtos` did in production.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int


@dataclass
class Expedicao:
    id_pedido: int
    codigo_interno: str
    codigo_externo: str
    depositante: str
    itens: list[dict[str, Any]]
    observacao: str | None
    status: str = "GERADO"  # GERADO | PEDIDO_EM_ATENDIMENTO | FINALIZADO | CANCELADO | ESTORNADO
    motivo_cancelamento: str | None = None


@dataclass
class SmartGoFake:
    """The gateway's state and knobs. `api_keys` maps each key to its depositante's document;
    `products` the codes the WMS knows (empty: any code is accepted)."""

    api_keys: dict[str, str] = field(default_factory=dict)
    products: set[str] = field(default_factory=set)
    require_doc_depositante: bool = False
    errors_as_200: bool = False
    duplicate: str = "return"  # "return" | "error"
    rate_limit: int | None = 120
    clock: Callable[[], float] = time.monotonic
    fail_next: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    orders: dict[tuple[str, str], Expedicao] = field(default_factory=dict)
    _window: dict[str, tuple[float, int]] = field(default_factory=dict)

    # --- test-side controls (outside the real surface) ----------------------------------------

    def order(self, codigo_externo: str) -> Expedicao:
        [found] = [o for o in self.orders.values() if o.codigo_externo == codigo_externo]
        return found

    def set_status(self, codigo_externo: str, status: str) -> None:
        """The warehouse moves the expedição on (picking started, finished, ...)."""
        self.order(codigo_externo).status = status

    # --- the app --------------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/expedicao/produto", self._create, methods=["POST"]),
            Route("/expedicao/pedido/cancelar", self._cancel, methods=["PATCH"]),
        ])

    @staticmethod
    def envelope(model: Any, code: int, errors: list[dict[str, str]] | None = None,
                 headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"model": model, "code": code, "errors": errors or [], "success": not errors},
                            status_code=code, headers=headers)

    def _business(self, errors: list[dict[str, str]]) -> JSONResponse:
        response = self.envelope(None, 400, errors)
        if self.errors_as_200:
            response.status_code = 200  # the body still says code 400, success false
        return response

    async def _gate(self, request: Request) -> tuple[str, Any] | Response:
        """Record the request and apply faults, auth and the rate limit, in the gateway's order."""
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = Received(request.method, request.url.path, dict(request.headers), body, 0)
        self.received.append(record)
        if self.fail_next:
            status = self.fail_next.pop(0)
            return self.envelope(None, status, [{"key": "fault", "value": "injected"}],
                                              headers={"retry-after": "7"} if status == 429 else None)
        key = request.headers.get("api_key")
        if key is None or key not in self.api_keys:
            return self.envelope(None, 401, [{"key": "api_key", "value": "Não autorizado"}])
        if self.rate_limit is not None:
            now = self.clock()
            start, count = self._window.get(key, (now, 0))
            if now - start >= 60:
                start, count = now, 0
            if count >= self.rate_limit:
                wait = max(1, int(60 - (now - start)) + 1)
                return self.envelope(None, 429, [{"key": "rate", "value": "Too Many Requests"}],
                                                  headers={"retry-after": str(wait)})
            self._window[key] = (start, count + 1)
        doc = request.headers.get("doc_depositante")
        if self.require_doc_depositante and not doc:
            return self._business([{"key": "doc_depositante", "value": "Header obrigatório"}])
        return self.api_keys[key], body

    def _recorded(self, response: Response) -> Response:
        self.received[-1].status = response.status_code
        return response

    async def _create(self, request: Request) -> Response:
        gated = await self._gate(request)
        if isinstance(gated, Response):
            return self._recorded(gated)
        depositante, body = gated
        errors: list[dict[str, str]] = []
        cabecalho = body.get("cabecalho") if isinstance(body, dict) else None
        itens = body.get("pedidoItens") if isinstance(body, dict) else None
        codigo = cabecalho.get("codigoExterno") if isinstance(cabecalho, dict) else None
        if not isinstance(codigo, str) or not codigo:
            errors.append({"key": "cabecalho.codigoExterno", "value": "Campo obrigatório"})
        if not isinstance(itens, list) or not itens:
            errors.append({"key": "pedidoItens", "value": "Informe ao menos um item"})
        for n, item in enumerate(itens if isinstance(itens, list) else []):
            code = item.get("codigoProduto") if isinstance(item, dict) else None
            qty = item.get("quantidade") if isinstance(item, dict) else None
            if self.products and code not in self.products:
                errors.append({"key": f"pedidoItens[{n}].codigoProduto",
                               "value": "Produto não encontrado para o depositante"})
            if not isinstance(qty, int | float) or qty <= 0:
                errors.append({"key": f"pedidoItens[{n}].quantidade", "value": "Quantidade inválida"})
        if errors:
            return self._recorded(self._business(errors))
        if not (isinstance(codigo, str) and isinstance(cabecalho, dict) and isinstance(itens, list)):
            raise TypeError("unreachable: validated above")
        existing = self.orders.get((depositante, codigo))
        if existing is not None:
            if self.duplicate == "error":
                return self._recorded(self._business([{
                    "key": "cabecalho.codigoExterno",
                    "value": f"Já existe um pedido com o código externo {codigo}"}]))
            return self._recorded(self.envelope(self._model(existing), 200))
        id_pedido = len(self.orders) + 1
        order = Expedicao(id_pedido, f"EXP-{id_pedido:06d}", codigo, depositante, list(itens),
                          cabecalho.get("observacao"))
        self.orders[(depositante, codigo)] = order
        return self._recorded(self.envelope(self._model(order), 200))

    async def _cancel(self, request: Request) -> Response:
        gated = await self._gate(request)
        if isinstance(gated, Response):
            return self._recorded(gated)
        depositante, body = gated
        body = body if isinstance(body, dict) else {}
        lowered = {str(k).lower(): v for k, v in body.items()}  # .NET binds case-insensitively
        found = [o for o in self.orders.values() if o.depositante == depositante and (
            o.id_pedido == lowered.get("idpedido") or o.codigo_interno == lowered.get("codigointerno")
            or o.codigo_externo == lowered.get("codigoexterno"))]
        if not found:
            return self._recorded(self._business([{"key": "pedido", "value": "Pedido não encontrado"}]))
        order = found[0]
        if order.status == "CANCELADO":
            return self._recorded(self._business([{"key": "pedido", "value": "Pedido já está cancelado"}]))
        if order.status != "GERADO":
            return self._recorded(self._business([{
                "key": "pedido", "value": f"Pedido não pode ser cancelado no status {order.status}"}]))
        order.status = "CANCELADO"
        order.motivo_cancelamento = lowered.get("motivocancelamento")
        return self._recorded(self.envelope(self._model(order), 200))

    @staticmethod
    def _model(order: Expedicao) -> dict[str, Any]:
        return {"idPedido": order.id_pedido, "codigoInterno": order.codigo_interno,
                "codigoExterno": order.codigo_externo, "status": order.status}
