"""The transport's per-generation rules, with answers shaped exactly as Bling sends them
(reference §2.5, §3.5, §10.2): v2 errors inside a 200, cod 14 with a 404, a v2 key that must
never reach a log or an error, signed document links fetched without credentials."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator, Mapping

import httpx
import pytest

from blingsync.bling.errors import (
    AccessTokenRejected,
    BlingError,
    CredentialsInvalid,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    from_v3_response,
)
from blingsync.bling.limits import FakeClock, LimiterRegistry, LimiterSettings
from blingsync.bling.retry import RetryPolicy
from blingsync.bling.secrets import RedactingFilter, Secret
from blingsync.bling.transport import ApiKeyAuth, Signature, Transport
from blingsync.domain import ApiGeneration

KEY = "f3c1a9e2" * 9  # 72 hex characters, like a v2 key

Handler = Callable[[httpx.Request], httpx.Response]


def _transport(handler: Handler, *, auth: object | None = None) -> Transport:
    registry = LimiterRegistry(settings=LimiterSettings(per_second=1000, pause_jitter=0))
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler),
                             base_url="https://bling.test/Api/v2")
    return Transport("acme", http, auth or ApiKeyAuth(Secret(KEY)),  # type: ignore[arg-type]
                     registry.for_account("acme"), registry.ip_guard,
                     RetryPolicy(max_attempts=4, base_delay=0, max_delay=0), FakeClock())


def _v2(body: object, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(),
                          headers={"content-type": "application/json"})


async def test_v2_rate_limit_inside_a_200_is_waited_out_and_retried() -> None:
    answers = iter([
        _v2({"retorno": {"erros": {"erro": {"cod": 18, "msg": "O limite de requisições por "
                                                               "segundo foi atingido, tente "
                                                               "novamente mais tarde."}}}}),
        _v2({"retorno": {"pedidos": []}}),
    ])
    transport = _transport(lambda request: next(answers))
    body = await transport.request_json("GET", "pedidos/json/", resource="pedidos_vendas")
    assert body == {"retorno": {"pedidos": []}}
    assert transport.stats.rate_limited == 1
    assert transport.stats.requests == 2


async def test_v2_cod_14_is_returned_not_raised_whatever_the_status() -> None:
    for status in (200, 404):
        transport = _transport(lambda request, s=status: _v2(
            {"retorno": {"erros": [{"erro": {"cod": 14, "msg": "A informacao desejada nao foi "
                                                              "encontrada"}}]}}, s))
        body = await transport.request_json("GET", "notasfiscais/page=9/json/", resource="nfe")
        assert body["retorno"]["erros"][0]["erro"]["cod"] == 14


async def test_v2_key_goes_in_the_query_for_reads_and_the_form_for_writes() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _v2({"retorno": {"pedidos": []}})

    transport = _transport(handler)
    await transport.request_json("GET", "pedidos/json/", resource="pedidos_vendas",
                                 params={"filters": "idSituacao[9]"})
    await transport.request_json("PUT", "pedido/7/json/", resource="situacoes",
                                 form={"xml": "<pedido><idSituacao>9</idSituacao></pedido>"})
    assert seen[0].url.params["apikey"] == KEY
    assert seen[0].url.params["filters"] == "idSituacao[9]"
    assert "apikey" not in seen[1].url.params
    form = dict(httpx.QueryParams(seen[1].content.decode()))
    assert form == {"xml": "<pedido><idSituacao>9</idSituacao></pedido>", "apikey": KEY}
    assert seen[1].headers["content-type"] == "application/x-www-form-urlencoded"


async def test_a_rejected_key_is_not_refreshed_and_never_shown() -> None:
    transport = _transport(lambda request: _v2(
        {"retorno": {"erros": [{"erro": {"cod": 3, "msg": "API Key invalida"}}]}}, 401))
    with pytest.raises(CredentialsInvalid) as caught:
        await transport.request_json("GET", "pedidos/json/", resource="pedidos_vendas")
    assert transport.stats.requests == 1 and transport.stats.refreshes == 0
    for text in (str(caught.value), repr(caught.value), repr(transport), repr(transport.auth)):
        assert KEY not in text


async def test_a_dropped_connection_error_never_shows_the_key() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError(f"connection reset while reading {request.url}")

    transport = _transport(handler)
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the type is checked below
        await transport.request_json("GET", "pedidos/json/", resource="pedidos_vendas")
    assert caught.value.__class__.__name__ == "BlingUnavailable"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert KEY not in str(caught.value) and KEY not in repr(caught.value)
    assert transport.stats.requests == 4  # retried to the policy's bound


@pytest.fixture
def httpx_log() -> Iterator[io.StringIO]:
    """httpx's own request log (it prints every URL, query string included) at INFO, through a
    handler carrying the RedactingFilter, as the service's logging setup installs it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("httpx")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(previous)


async def test_httpx_request_logs_do_not_show_the_key(httpx_log: io.StringIO) -> None:
    transport = _transport(lambda request: _v2({"retorno": {"pedidos": []}}))
    await transport.request_json("GET", "pedidos/json/", resource="pedidos_vendas")
    logged = httpx_log.getvalue()
    assert "pedidos/json/" in logged  # the log line is there…
    assert KEY not in logged  # …without the key


async def test_document_links_are_fetched_without_credentials_and_expired_ones_are_not_found(
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.params.get("signature") == "good":
            return httpx.Response(200, content=b"<?xml version='1.0'?><nfeProc/>")
        return httpx.Response(403, text="Assinatura inválida ou expirada")

    transport = _transport(handler)
    xml = await transport.fetch("https://bling.test/relatorios/nfe.xml.php?s&chaveAcesso=1"
                                "&signature=good", resource="nfe")
    assert xml.startswith(b"<?xml")
    assert "apikey" not in seen[0].url.params and "authorization" not in seen[0].headers
    with pytest.raises(NotFound):
        await transport.fetch("https://bling.test/relatorios/nfe.xml.php?chaveAcesso=1"
                              "&signature=old", resource="nfe")
    assert len(seen) == 2  # a refused link is not retried


class _Bearer:
    """A v3-style auth whose first token Bling rejects (401 invalid_token)."""

    generation = ApiGeneration.V3

    def __init__(self) -> None:
        self.token = Secret("first-token-value-0123456789")
        self.renewed = 0

    def secrets(self) -> tuple[Secret, ...]:
        return ()

    async def sign(self) -> Signature:
        return Signature(headers={"authorization": f"Bearer {self.token.reveal()}"},
                         handle=self.token)

    async def renew(self, handle: Secret | None) -> bool:
        self.renewed += 1
        self.token = Secret("second-token-value-0123456789")
        return True

    def classify(self, status: int, body: bytes, headers: Mapping[str, str], *, resource: str,
                 account: str) -> BlingError | None:
        if status == 401:
            return AccessTokenRejected(account=account, status=401)
        if 200 <= status < 300:
            return None
        return from_v3_response(status, body, headers, resource=resource, account=account)


async def test_a_rejected_token_is_renewed_once_and_the_request_replayed_once() -> None:
    auth = _Bearer()
    tokens: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        tokens.append(request.headers["authorization"])
        return httpx.Response(401) if len(tokens) != 2 else _v2({"data": []})

    transport = _transport(handler, auth=auth)
    assert await transport.request_json("GET", "/nfe", resource="nfe") == {"data": []}
    assert tokens == ["Bearer first-token-value-0123456789",
                      "Bearer second-token-value-0123456789"]
    with pytest.raises(AccessTokenRejected):  # rejected again after the replay: no loop
        await transport.request_json("GET", "/nfe", resource="nfe")
    assert auth.renewed == 2 and len(tokens) == 4


# --- writes whose outcome is unknown, Retry-After on 5xx, IP blocks met while signing -------


def _v3_transport(handler: Handler) -> Transport:
    transport = _transport(handler, auth=_Bearer())
    transport.http = httpx.AsyncClient(transport=httpx.MockTransport(handler),
                                       base_url="https://bling.test/Api/v3")
    return transport


@pytest.mark.parametrize("answer", [
    lambda: httpx.Response(201, content=b'{"data":{"id":1234'),  # cut short: it was created
    lambda: httpx.Response(502, text="<html>Bad Gateway</html>"),
])
async def test_a_create_that_may_have_happened_is_not_repeated(
    answer: Callable[[], httpx.Response],
) -> None:
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.method)
        return answer()

    transport = _v3_transport(handler)
    with pytest.raises(OutcomeUnknown) as caught:
        await transport.request_json("POST", "/logisticas/objetos", resource="logisticas",
                                     json_body={"pedidoVenda": {"id": 1}}, idempotent=False)
    assert sent == ["POST"]
    assert caught.value.retriable is False


async def test_a_create_refused_before_sending_is_retried() -> None:
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.method)
        if len(sent) == 1:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(201, json={"data": {"id": 99}})

    transport = _v3_transport(handler)
    body = await transport.request_json("POST", "/logisticas/objetos", resource="logisticas",
                                        json_body={}, idempotent=False)
    assert body == {"data": {"id": 99}} and sent == ["POST", "POST"]


async def test_retry_after_on_a_503_is_honoured() -> None:
    answers = iter([httpx.Response(503, headers={"retry-after": "7"}, text="busy"),
                    _v2({"data": []})])
    transport = _v3_transport(lambda request: next(answers))
    transport.policy = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=30)
    clock = transport.clock
    assert isinstance(clock, FakeClock)
    before = clock.monotonic()
    assert await transport.request_json("GET", "/nfe", resource="nfe") == {"data": []}
    assert clock.monotonic() - before >= 7


async def test_an_ip_block_met_at_the_token_endpoint_blocks_the_whole_process() -> None:
    class Blocked(_Bearer):
        async def sign(self) -> Signature:
            raise RateLimited(period="ip-block", retry_after=60.0, account="acme")

    transport = _transport(lambda request: _v2({"data": []}), auth=Blocked())
    with pytest.raises(RateLimited):
        await transport.request_json("GET", "/nfe", resource="nfe")
    assert transport.guard.blocked_for > 50
    assert transport.stats.requests == 0


def test_a_signature_never_shows_its_credentials() -> None:
    signature = Signature(headers={"authorization": "Bearer abc.def.ghi"},
                          params={"apikey": KEY})
    assert KEY not in repr(signature) and "abc.def" not in repr(signature)
