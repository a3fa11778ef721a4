"""Write-back to Bling (docs/writeback.md): what the warehouse reported about a shipment goes to the
brand's Bling account, as the tracking of the note's logistics objects and, when configured, a
new situation of the linked sales order.

The outbox's channel `bling` carries one `bling.shipment` event per reported shipment
(`blingsync.store.shipments`); a `Relay` on that channel (`writeback_relay`) delivers them here,
so write-backs get everything deliveries have: leases, per-order order, capped jittered
backoff, a three-day horizon, dead events that an operator replays.

Why it is shaped this way:

* **Bling says what belongs together, at delivery time.** The event names the note; the note's
  logistics objects (`transporte.volumes[].id`) name the sales order (`pedidoVenda.id`), whose
  detail lists every object of the order. When the note has no object, the sales orders
  altered since the note was issued are searched for the one whose `notaFiscal.id` is the note.
* **Idempotent under retries.** Existing objects are updated (a PUT of the whole object: the
  same PUT twice is harmless). An object is created only when the note and its order have none;
  Bling links a created object to its sales order, so the next attempt after a lost answer
  finds it and updates it instead of creating a second one. A note without a sales order
  cannot be checked that way: a creation Bling did not confirm is then left to an operator
  (the event dies with those words) rather than risk a duplicate.
* **The configured situation is checked before anything is written**: a name that matches none
  of the account's sales-order situations fails the attempt with the names there are (it is
  retried, so fixing the name with `blingsync writeback set` lets the waiting events through).
* **Same client, same pace**: `service.client(account)` is the importer's client, paced by the
  process's limiter of that account, so write-backs and imports share Bling's 3 requests/s.
* **Retriable or not is Bling's error tree** (`BlingError.retriable`): 429, 5xx, timeouts and
  garbled answers are retried with the relay's backoff; a missing permission, a record Bling no
  longer has, a request Bling refuses or an account on API v2 (no logistics objects there) make
  the event dead at once, in words. Revoked authorisations are retried: reconnecting the
  account is the fix, and the events then go through by themselves.
* Write-back switched off, or the account paused: its events wait, pending, without attempts.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from blingsync.bling.client import BlingClient
from blingsync.bling.errors import (
    BlingError,
    CredentialsInvalid,
    NeedsApiV3,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    ReauthorizationNeeded,
)
from blingsync.bling.models import (
    LogisticsObject,
    NoteDetail,
    NoteKind,
    NoteRef,
    OrderRef,
    OrderSituation,
    SalesOrderDetail,
    TrackingSituation,
)
from blingsync.bling.writes import TrackingChange
from blingsync.delivery.relay import DEFAULT_HORIZON, UNRESOLVED_DELAY, Backoff, Clock, Permanent, Relay
from blingsync.delivery.sinks.base import DeliveryResult
from blingsync.domain import BRASILIA, ApiGeneration, fold_text
from blingsync.store.outbox import CHANNEL_BLING
from blingsync.store.records import Account, AccountState, OutboxEvent, SinkKind
from blingsync.store.shipments import ShipmentStatus, ShipmentWriteback

if TYPE_CHECKING:
    from blingsync.service import Service

__all__ = [
    "STATUS_LABELS",
    "TRACKING_SITUATIONS",
    "AccountWriteback",
    "BlingWritebacks",
    "SituationNotFound",
    "find_situation",
    "writeback_relay",
]

log = logging.getLogger(__name__)

TRACKING_SITUATIONS: Final[Mapping[ShipmentStatus, TrackingSituation]] = MappingProxyType({
    ShipmentStatus.SHIPPED: TrackingSituation.POSTADO,
    ShipmentStatus.IN_TRANSIT: TrackingSituation.EM_ANDAMENTO,
    ShipmentStatus.AWAITING_PICKUP: TrackingSituation.AGUARDANDO_RETIRADA,
    ShipmentStatus.DELIVERED: TrackingSituation.ENTREGUE,
    ShipmentStatus.NOT_DELIVERED: TrackingSituation.NAO_ENTREGUE,
    ShipmentStatus.RETURNED: TrackingSituation.NAO_ENTREGUE,
})
"""The reported status → `rastreamento.situacao` of the logistics object."""

STATUS_LABELS: Final[Mapping[ShipmentStatus, str]] = MappingProxyType({
    ShipmentStatus.SHIPPED: "Postado",
    ShipmentStatus.IN_TRANSIT: "Em trânsito",
    ShipmentStatus.AWAITING_PICKUP: "Aguardando retirada",
    ShipmentStatus.DELIVERED: "Entregue",
    ShipmentStatus.NOT_DELIVERED: "Não entregue",
    ShipmentStatus.RETURNED: "Devolvido ao remetente",
})
"""`rastreamento.descricao`, in the brand's language, followed by the carrier's name."""

ORDER_SEARCH_SLACK: Final = timedelta(days=1)
"""How long before the note's emission its sales order may have last been altered, when the
order has to be searched for (Bling filters orders by alteration date only)."""
ORDER_SEARCH_DETAILS: Final = 10
"""Order details read at most while searching: candidates are first narrowed by the store
order number or the recipient's document, so a long search means the link is not there."""

WRITEBACK_BATCH: Final = 20
WRITEBACK_LEASE: Final = timedelta(minutes=15)
"""A write-back costs up to ~10 requests at Bling's 3 requests/s per account (shared with the
importer); 20 of one account take well under a minute, far inside the lease."""


class SituationNotFound(Exception):
    """The configured situation names none of the account's sales-order situations."""

    def __init__(self, name: str, situations: Sequence[OrderSituation]) -> None:
        names = ", ".join(f"“{s.nome}”" for s in situations) or "none"
        super().__init__(
            f"Bling has no sales-order situation named “{name}” in this account; its situations are: "
            f"{names}. Choose one with `blingsync writeback set ACCOUNT --on --situation NAME`")
        self.name = name


def find_situation(situations: Sequence[OrderSituation], name: str) -> OrderSituation | None:
    """The situation called `name`: spelt exactly, else ignoring case, accents and spacing
    ("enviado" finds "Enviado", "Em Andamento" finds "Em andamento")."""
    for situation in situations:
        if situation.nome == name:
            return situation
    wanted = fold_text(name)
    return next((s for s in situations if fold_text(s.nome) == wanted), None)


def _retry_after(exc: BlingError, now: datetime) -> timedelta | None:
    if isinstance(exc, RateLimited) and exc.resume_at is not None:
        return max(timedelta(0), exc.resume_at - now)
    seconds = getattr(exc, "retry_after", None)
    return timedelta(seconds=seconds) if isinstance(seconds, int | float) else None


def classify(exc: BlingError, now: datetime) -> DeliveryResult:
    """What an error of Bling's means for the event (see the module docstring)."""
    if isinstance(exc, OutcomeUnknown):
        return DeliveryResult.retry(f"{exc} (checked before the next attempt, so nothing is duplicated)",
                                    status=exc.status)
    if exc.retriable or isinstance(exc, ReauthorizationNeeded | CredentialsInvalid):
        return DeliveryResult.retry(str(exc), retry_after=_retry_after(exc, now), status=exc.status)
    return Permanent.because(str(exc), status=exc.status)


class _Unconfirmed(Exception):
    """A creation Bling did not confirm, for a note without a sales order to check it by."""


class AccountWriteback:
    """The write-back of one account's `bling.shipment` events (the relay's `Deliverer`)."""

    def __init__(self, account: Account, client: BlingClient, clock: Clock) -> None:
        self._account = account
        self._client = client
        self._clock = clock

    async def deliver(self, event: OutboxEvent) -> DeliveryResult:
        try:
            shipment = ShipmentWriteback.from_json(dict(event.payload))
        except (KeyError, TypeError, ValueError) as exc:
            return Permanent.because(f"the write-back's payload cannot be read ({type(exc).__name__}: {exc})")
        try:
            await self._write_back(shipment)
        except SituationNotFound as exc:
            return DeliveryResult.retry(str(exc))
        except _Unconfirmed as exc:
            return Permanent.because(str(exc))
        except BlingError as exc:
            return classify(exc, self._clock())
        return DeliveryResult.delivered()

    async def _write_back(self, shipment: ShipmentWriteback) -> None:
        client = self._client
        if client.generation is ApiGeneration.V2:
            raise NeedsApiV3(feature="Writing shipments back to Bling (logistics objects)",
                             account=self._account.name)
        situation = await self._situation()
        note = await client.get_note(NoteRef(kind=NoteKind(shipment.note.kind),
                                             bling_id=shipment.note.bling_id))
        objects = await self._objects(note.transporte.volume_ids)
        order_id = next((o.sales_order_id for o in objects.values() if o.sales_order_id), None)
        if order_id is None:
            order_id = await self._search_order(note)
        order: SalesOrderDetail | None = None
        if order_id is not None:
            order = await client.get_order(OrderRef(bling_id=order_id))
            # A sales order invoiced in several notes holds every note's objects: only this
            # note's (or unassigned ones, e.g. our own creation Bling did not confirm) are ours.
            theirs = await self._objects([i for i in order.transporte.volume_ids if i not in objects])
            objects.update({object_id: found for object_id, found in theirs.items()
                            if found.note_id in (None, note.summary.bling_id)})
        change = self._change(shipment)
        if objects:
            for object_id in objects:
                await client.update_logistics_object(object_id, change)
        else:
            await self._create(change, order_id, note)
        if order is not None and situation is not None and order.summary.situacao.id != situation.id:
            await client.change_order_situation(order.summary.ref, situation.id)
            log.info("account %s: sales order %s moved to “%s”", self._account.name, order_id, situation.nome)
        elif order is None and situation is not None:
            log.warning("account %s: note %s has no sales order in Bling; only its tracking was written",
                        self._account.name, shipment.note.bling_id)

    async def _situation(self) -> OrderSituation | None:
        name = self._account.settings.write_back_situation
        if not name:
            return None
        situations = await self._client.order_situations()
        found = find_situation(situations, name)
        if found is None:
            raise SituationNotFound(name, situations)
        return found

    async def _objects(self, object_ids: Sequence[int]) -> dict[int, LogisticsObject]:
        """The objects that still exist, by id (a volume may point to one deleted since)."""
        found: dict[int, LogisticsObject] = {}
        for object_id in dict.fromkeys(object_ids):
            try:
                found[object_id] = await self._client.get_logistics_object(object_id)
            except NotFound:
                log.info("account %s: logistics object %s is gone; skipped", self._account.name, object_id)
        return found

    async def _search_order(self, note: NoteDetail) -> int | None:
        """The sales order whose `notaFiscal.id` is the note, among the orders altered since the
        note was issued that match its store order number or its recipient's document."""
        store_number = note.numero_pedido_loja or None
        document = note.summary.recipient.document if note.summary.recipient else None
        if store_number is None and document is None:
            return None
        details = 0
        since = note.summary.issued_at - ORDER_SEARCH_SLACK
        async for summary in self._client.iter_orders(changed_from=since):
            if summary.bling_id is None:
                continue
            if not ((store_number and summary.numero_loja == store_number)
                    or (document and summary.contact.document == document)):
                continue
            detail = await self._client.get_order(summary.ref)
            if detail.note_id == note.summary.bling_id:
                return summary.bling_id
            details += 1
            if details >= ORDER_SEARCH_DETAILS:
                break
        return None

    async def _create(self, change: TrackingChange, order_id: int | None, note: NoteDetail) -> None:
        try:
            await self._client.create_logistics_object(change, sales_order_id=order_id,
                                                       note_id=note.summary.bling_id)
        except OutcomeUnknown as exc:
            if order_id is not None:
                raise  # the next attempt finds it among the order's objects if it was created
            raise _Unconfirmed(
                f"Bling did not confirm the logistics object created for note {note.summary.numero}, "
                "which has no sales order to look it up by. Check the note's tracking in Bling: if "
                "it is missing, replay this event (`blingsync deliveries replay`). "
                f"[{exc.code}]") from exc

    def _change(self, shipment: ShipmentWriteback) -> TrackingChange:
        report = shipment.report
        return TrackingChange(
            code=report.tracking_code, situation=TRACKING_SITUATIONS[report.status],
            description=f"{STATUS_LABELS[report.status]} ({report.carrier})", url=report.tracking_url,
            shipped_on=report.shipped_at.astimezone(BRASILIA).date(), updated_at=shipment.reported_at)


class BlingWritebacks:
    """The write-back relay's resolver: each account's `AccountWriteback`, built per batch from
    the account as stored now (so switching write-back off, or changing the situation, applies
    at the next batch). None — the events wait — while write-back is off or the account is
    paused."""

    def __init__(self, service: Service, *, clock: Clock) -> None:
        self._service = service
        self._clock = clock

    @property
    def kinds(self) -> frozenset[SinkKind]:
        return frozenset()

    async def resolve(self, account_id: int) -> AccountWriteback | None:
        account = await self._service.store.account_by_id(account_id)
        if not account.settings.write_back or account.state is AccountState.PAUSED:
            log.info("account %s: write-back is %s; its write-backs wait", account.name,
                     "off" if not account.settings.write_back else "paused with the account")
            return None
        return AccountWriteback(account, await self._service.client(account), self._clock)


def writeback_relay(service: Service, *, clock: Clock | None = None, horizon: timedelta = DEFAULT_HORIZON,
                    backoff: Backoff | None = None, batch: int = WRITEBACK_BATCH,
                    lease: timedelta = WRITEBACK_LEASE, per_account: int = 2,
                    rng: random.Random | None = None,
                    unresolved_delay: timedelta = UNRESOLVED_DELAY) -> Relay:
    """The relay of the outbox's channel `bling`: every account's shipment write-backs, through
    the account's Bling client, on `clock` (default: the service's)."""
    now = clock or service.now
    return Relay(service.store, BlingWritebacks(service, clock=now), now, horizon=horizon, backoff=backoff,
                 batch=batch, lease=lease, per_account=per_account, rng=rng,
                 unresolved_delay=unresolved_delay, channel=CHANNEL_BLING)
