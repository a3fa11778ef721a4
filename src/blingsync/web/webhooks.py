"""`POST /webhooks/bling`: Bling's webhooks, verified, stored in the inbox, answered at once
(docs/webhooks.md). The re-check they ask for is the `InboxWorker`'s, never the request's:
Bling wants a 2xx within 5 seconds, and a webhook is only a hint that the API must confirm.

The order of the checks is what keeps a forger from learning anything:

1. **Size** (413 over `MAX_BODY`, from `Content-Length` or while reading): before any work.
2. **The signature header** must be present and well formed (`sha256=` and 64 hex digits);
   otherwise 401.
3. **Which secrets may have signed it.** A webhook is signed with the `client_secret` of the
   Bling app it was sent to: the app of each account connected to the body's `companyId`
   (`accounts.company_id`), and the shared connect app (`BLINGSYNC_OAUTH_CLIENT_SECRET`) when one
   is configured. The body is parsed only to find `companyId`; a body that is not JSON, or has
   no `companyId`, can only have been signed by the shared app.
4. **The HMAC-SHA256 of the raw body** is compared with each candidate in constant time
   (`hmac.compare_digest`, every candidate compared). No match → 401, with the same answer
   whether the company is unknown, the body was modified, another app's secret was used or the
   body is not even JSON: a forger cannot tell which companies we serve or whether their
   garbage parsed.
5. Only a verified body is judged as an envelope: malformed → 400 with what is wrong (the
   sender holds the secret, so telling it leaks nothing).
6. Stored once per `eventId` (202; a repeat is 200 and stores nothing), the inbox worker woken.

A verified webhook of a company no account is connected to is stored and answered 202 too; the
worker settles it as "not used" with the reason. Refusing it would make Bling retry for three
days and then disable the app's webhooks for every brand connected through it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from blingsync.service import Service
from blingsync.store import CredentialsUnreadable
from blingsync.store.inbox import ReceivedWebhook
from blingsync.store.records import V3Credentials
from blingsync.web import deps

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

SIGNATURE_HEADER: Final = "X-Bling-Signature-256"
MAX_BODY: Final = 1024 * 1024
"""Bytes of a webhook body we read at most: Bling's envelopes are a few hundred bytes."""
MAX_EVENT_ID: Final = 100
"""Characters of an eventId (Bling's are 36-character UUIDs)."""
_SIGNATURE: Final = re.compile(r"sha256=([0-9a-fA-F]{64})")
_COMPANY_ID: Final = re.compile(r"[0-9A-Za-z-]{1,64}")
"""Bling's companyId is 32 lower-case hex digits; anything outside this is never looked up."""
_NAME: Final = re.compile(r"[a-z_]{1,40}\.[a-z_]{1,20}")
_BIGINT_MAX: Final = 2**63 - 1

UNSIGNED: Final = (f"the {SIGNATURE_HEADER} header is missing or malformed: Bling signs every webhook "
                   "with sha256=<hex HMAC-SHA256 of the body>")
FORGED: Final = (f"the {SIGNATURE_HEADER} signature does not match the body for any Bling app "
                 "this server knows")


@dataclass(frozen=True)
class _Envelope:
    event_id: str
    event: str
    company_id: str
    resource_id: int | None


class _TooLarge(Exception):
    pass


async def _raw_body(request: Request) -> bytes:
    """The body exactly as sent (the signature is over these bytes), refused past `MAX_BODY`
    without reading the rest."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > MAX_BODY:
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise _TooLarge
    return bytes(body)


def _company_hint(body: bytes) -> str | None:
    """`companyId`, if the body is a JSON object that has a usable one; None otherwise. Nothing
    else of the body is trusted (nor looked at) before the signature is."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: a body nested thousands deep
        return None
    company = parsed.get("companyId") if isinstance(parsed, dict) else None
    return company if isinstance(company, str) and _COMPANY_ID.fullmatch(company) else None


async def _candidate_secrets(service: Service, company_id: str | None) -> list[tuple[bytes, int | None]]:
    """(client secret, account id) of every Bling app that may have signed a webhook of
    `company_id`; the shared connect app's secret with no account."""
    candidates: list[tuple[bytes, int | None]] = []
    if company_id is not None:
        for account in await service.store.accounts_by_company(company_id):
            try:
                credentials = await service.store.credentials(account.id)
            except CredentialsUnreadable:
                log.warning("account %s: its credentials cannot be read, so its webhooks cannot be "
                            "verified", account.name)
                continue
            if isinstance(credentials, V3Credentials) and credentials.client_secret:
                candidates.append((credentials.client_secret.encode(), account.id))
    shared = service.settings.oauth_client_secret
    if shared:
        candidates.append((shared.encode(), None))
    return candidates


def _verified(body: bytes, signature: str,
              candidates: list[tuple[bytes, int | None]]) -> tuple[bool, int | None]:
    """Whether one candidate's secret signed `body`, and its account. Every candidate is
    compared, in constant time each, so the answer's timing does not say which one matched."""
    matched, account_id = False, None
    for secret, candidate_account in candidates:
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected, signature) and not matched:
            matched, account_id = True, candidate_account
    return matched, account_id


def _envelope(body: bytes) -> _Envelope:
    """The envelope `{eventId, date, version, event, companyId, data}` of a verified body, or
    400 naming what is wrong."""
    try:
        parsed: Any = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise HTTPException(400, detail="the webhook body is not UTF-8 JSON") from None
    if not isinstance(parsed, dict):
        raise HTTPException(400, detail="the webhook body is not a JSON object")
    event_id, event, company, data = (parsed.get(k) for k in ("eventId", "event", "companyId", "data"))
    if (not isinstance(event_id, str) or not 0 < len(event_id.strip()) <= MAX_EVENT_ID
            or not event_id.isprintable()):
        raise HTTPException(400, detail=f"eventId must be a printable text of 1 to {MAX_EVENT_ID} characters")
    if not isinstance(event, str) or not _NAME.fullmatch(event):
        raise HTTPException(400, detail="event must name a resource and an action, e.g. invoice.updated")
    if not isinstance(company, str) or not _COMPANY_ID.fullmatch(company):
        raise HTTPException(400, detail="companyId must be Bling's company id (1 to 64 letters, digits or -)")
    if not isinstance(data, dict):
        raise HTTPException(400, detail="data must be a JSON object")
    raw_id = data.get("id")
    resource_id: int | None = None
    if isinstance(raw_id, int) and not isinstance(raw_id, bool) and 0 < raw_id <= _BIGINT_MAX:
        resource_id = raw_id
    elif isinstance(raw_id, str) and raw_id.strip().isdigit() and 0 < int(raw_id) <= _BIGINT_MAX:
        resource_id = int(raw_id)
    elif event.startswith(("invoice.", "consumer_invoice.")):
        raise HTTPException(400, detail="data.id must be the note's Bling id (a positive whole number)")
    return _Envelope(event_id.strip(), event, company, resource_id)


@router.post("/webhooks/bling", status_code=202)
async def bling_webhook(request: Request, service: Annotated[Service, Depends(deps.service)],
                        wakeups: Annotated[deps.Wakeups, Depends(deps.wakeups)]) -> JSONResponse:
    """Verify, store once, wake the inbox worker, answer (see the module docstring)."""
    try:
        body = await _raw_body(request)
    except _TooLarge:
        raise HTTPException(413, detail=f"a webhook body is at most {MAX_BODY} bytes") from None
    match = _SIGNATURE.fullmatch(request.headers.get(SIGNATURE_HEADER, "").strip())
    if match is None:
        raise HTTPException(401, detail=UNSIGNED)
    candidates = await _candidate_secrets(service, _company_hint(body))
    verified, account_id = _verified(body, match.group(1).lower(), candidates)
    if not verified:
        log.warning("a Bling webhook was refused: its signature matches no known app secret")
        raise HTTPException(401, detail=FORGED)
    envelope = _envelope(body)
    stored = await service.store.receive_webhook(ReceivedWebhook(
        event_id=envelope.event_id, event=envelope.event, company_id=envelope.company_id, body=body,
        resource_id=envelope.resource_id, account_id=account_id))
    if stored is None:
        log.info("webhook %s (%s) received again: already stored", envelope.event_id, envelope.event)
        return JSONResponse({"status": "duplicate", "eventId": envelope.event_id}, status_code=200)
    log.info("webhook %s (%s, id %s) stored", envelope.event_id, envelope.event, envelope.resource_id)
    wakeups.inbox()
    return JSONResponse({"status": "accepted", "eventId": envelope.event_id}, status_code=202)
