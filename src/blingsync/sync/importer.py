"""One import pass for one account: Bling notes in Emitida DANFE → stored expedition orders.

The algorithm of DESIGN.md, per stream (NF-e, and NFC-e when the account wants it):

1. `signpost = now`. The window starts at the earliest start of the sweep tiers that are due
   (`SweepTier`: a short window every poll, a week hourly, a month daily — a note can reach
   Emitida DANFE days after its emission date, and Bling filters by emission date only). A tier
   never swept starts `initial_lookback_days` back, or at `--since`.
2. List `situacao = Emitida DANFE` (and Autorizada when the account imports those), `tipo =
   saída`, in the window (the client pages through every month of it).
3. A note already stored at this situation is skipped without a detail call. Any other: detail
   (for its Bling links) and XML, parsed, and in ONE transaction the order upserted, its outbox
   event written and the run's counters moved (`Store.save_order`). A note that cannot be read
   is quarantined with the reason; the rest keeps flowing.
4. Cancellation pass: `situacao = Cancelada` in the same window; a stored order that is still
   ready becomes canceled, with its event.
5. Only when the whole window went through are the tiers' cursors moved to the signpost.

Every step is idempotent, so a crash anywhere followed by a re-run gives the same database and
the same events (the store's unique keys make a half-done note either done or not done).

Errors that concern the whole account (revoked token, missing permission, daily limit,
discontinued API) stop the pass, mark the run failed and put the account in the matching state
with Bling's words for the user; the cursor stays, so nothing is skipped when it resumes.

Every reason stored (a quarantined note's, a note not imported, a run's error) is English text
for the logs, the API and the CLI, with a stable code beside it (`sync/reasons.py`) that the
dashboard says in Portuguese.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from blingsync.bling.client import BlingClient
from blingsync.bling.errors import (
    ApiDiscontinued,
    BlingError,
    CredentialsInvalid,
    InvalidResponse,
    NotFound,
    PermissionMissing,
    RateLimited,
    ReauthorizationNeeded,
)
from blingsync.bling.limits import DailyBudgetExhausted
from blingsync.bling.models import NoteDetail, NoteKind, NoteRef, NoteSummary, NoteType, UnreadableRecord
from blingsync.domain import ApiGeneration, InvoiceStatus, OrderLinks, OrderStatus
from blingsync.nfe.parse import NfeError, parse_nfe
from blingsync.store import Store
from blingsync.store.records import (
    Account,
    AccountState,
    ImportedNote,
    KnownNote,
    QuarantineEntry,
    RunCounters,
    RunOutcome,
    SaveOutcome,
    SaveResult,
    SweepTier,
    SyncRun,
    UnimportedNote,
)
from blingsync.sync.reasons import QuarantineCode, RunCode, UnimportedCode, bling_code, nfe_code

log = logging.getLogger(__name__)

BATCH: Final = 100
"""Notes looked up in the store at once (one query per page of a listing)."""
CONCURRENCY: Final = 4
"""Notes fetched at once. The account's limiter paces the requests at Bling's 3/s whatever
this is; a few in flight hide Bling's answer time (0.1–0.6 s) so the pace, not the round
trips, is what limits an import."""
QUARANTINE_PAYLOAD_BYTES: Final = 1024 * 1024
AUTHORISED: Final = frozenset({100, 150})
"""`cStat` of an authorised note: 100 "Autorizado o uso", 150 the same, granted late."""


@dataclass(frozen=True)
class Progress:
    """What a progress bar shows: notes listed so far and notes done (imported or skipped)."""

    account: str
    stream: str
    listed: int
    done: int


ProgressSink = Callable[[Progress], None]


@dataclass(frozen=True)
class Window:
    stream: str
    tier: str
    start: datetime
    end: datetime
    tiers: tuple[str, ...]  # whose cursors move to `end` once the window is through


@dataclass
class ImportReport:
    """One account's pass, for the CLI's summary and the logs."""

    account: str
    runs: list[SyncRun] = field(default_factory=list)
    unimported: list[UnimportedNote] = field(default_factory=list)
    error: str | None = None

    @property
    def counters(self) -> RunCounters:
        total = RunCounters()
        for run in self.runs:
            total = RunCounters(**{
                name: getattr(total, name) + getattr(run.counters, name)
                for name in RunCounters.__dataclass_fields__
            })
        return total

    @property
    def requests(self) -> int:
        return sum(run.requests for run in self.runs)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Recheck:
    """What a targeted re-check of one note did (`Importer.recheck_note`), in words for the
    inbox row, and the store's outcome when it wrote an order."""

    outcome: str
    saved: SaveOutcome | None = None

    @property
    def wrote_events(self) -> bool:
        """Whether outbox events were written (the relay has something to deliver)."""
        return self.saved is not None and self.saved.result in (
            SaveResult.CREATED, SaveResult.UPDATED, SaveResult.CANCELED)


class _AccountStopped(Exception):
    """Raised inside a pass to end it: the account cannot go on (see `_ACCOUNT_STATES`)."""

    def __init__(self, error: BlingError, state: AccountState | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.state = state


def account_state_for(error: BlingError) -> AccountState | None:
    """The account state an error puts the account in; None: the account stays as it is (the
    next poll tries again: Bling unavailable, a per-second 429 that outlived the retries)."""
    if isinstance(error, ReauthorizationNeeded):
        return AccountState.NEEDS_REAUTH
    if isinstance(error, CredentialsInvalid):
        return AccountState.INVALID_CREDENTIALS
    if isinstance(error, PermissionMissing):
        return AccountState.MISSING_PERMISSIONS
    if isinstance(error, ApiDiscontinued):
        return AccountState.API_DISCONTINUED
    if isinstance(error, DailyBudgetExhausted) or (
        isinstance(error, RateLimited) and error.period == "day"
    ):
        return AccountState.DAILY_LIMIT
    return None


class Importer:
    """Imports one account. Build one per pass (it holds that pass's counters)."""

    def __init__(
        self,
        store: Store,
        client: BlingClient,
        account: Account,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        progress: ProgressSink | None = None,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self.store = store
        self.client = client
        self.account = account
        self._now = now
        self._progress = progress
        self._concurrency = max(1, concurrency)

    async def run(self, *, trigger: str = "manual", since: datetime | None = None) -> ImportReport:
        """One pass over every stream of the account. Never raises for Bling's or the data's
        faults: they end up in the report, the run records and the account's state."""
        report = ImportReport(self.account.name)
        signpost = self._now()
        streams = [NoteKind.NFE] + ([NoteKind.NFCE] if self.account.settings.import_nfce else [])
        for kind in streams:
            window = await self.window(kind.value, signpost, since)
            try:
                run = await self._sweep(kind, window, trigger)
            except _AccountStopped as stopped:
                report.error = stopped.error.user_message
                report.runs += await self.store.runs(self.account.id, limit=1)
                if stopped.state is not None:
                    await self.store.set_account_state(self.account.id, stopped.state,
                                                       stopped.error.user_message)
                break
            report.runs.append(run)
        report.unimported = await self.store.unimported(self.account.id)
        if report.error is None and self.account.state is not AccountState.ACTIVE \
                and self.account.state is not AccountState.PAUSED:
            await self.store.set_account_state(self.account.id, AccountState.ACTIVE, None)
        return report

    async def window(self, stream: str, signpost: datetime, since: datetime | None) -> Window:
        """The window of this pass. Without `since`: from the earliest start among the due
        tiers (a tier never swept starts `initial_lookback_days` back). With `since`: from
        there. Every tier whose own start the window covers moves its cursor when it is through."""
        settings = self.account.settings
        first_start = signpost - timedelta(days=settings.initial_lookback_days)
        normal: dict[str, datetime] = {}
        due: list[str] = []
        for tier in settings.tiers:
            cursor = await self.store.cursor(self.account.id, stream, tier.name)
            normal[tier.name] = first_start if cursor is None else cursor - tier.lookback
            if cursor is None or signpost - cursor >= tier.every:
                due.append(tier.name)
        if since is not None:
            start, label = since, "since"
        else:
            if not due:  # every tier has a period and none is due: the shortest runs anyway
                due = [min(settings.tiers, key=lambda t: t.lookback).name]
            start = min(normal[name] for name in due)
            label = max(due, key=lambda name: _lookback(settings.tiers, name))
        start = min(start, signpost)
        covered = tuple(name for name, tier_start in normal.items() if tier_start >= start)
        return Window(stream, label, start, signpost, covered)

    # --- one note, on a webhook's word ---------------------------------------------------------

    async def recheck_note(self, ref: NoteRef) -> Recheck:
        """Look at one note again because a Bling webhook said it changed: the API, not the
        webhook's body, says what it is now (so a duplicated, late or reordered webhook changes
        nothing the API does not confirm). Emitida DANFE (or Autorizada, when the account
        imports those): imported as a sweep would (an unchanged note writes nothing; a note
        already stored at that situation costs no XML request). Cancelada, or gone from Bling:
        its order is canceled. Anything else: nothing. Bling's errors other than "not found"
        are raised for the caller to retry; a note that cannot be read is quarantined."""
        if ref.bling_id is None:
            raise ValueError("a re-check needs the note's Bling id")
        work = _NoteImport(self, ref.kind, None)
        known = (await self.store.known_notes(self.account.id, [ref.bling_id], kind=ref.kind.value)
                 ).get(ref.bling_id)
        if ref.kind is NoteKind.NFCE and not self.account.settings.import_nfce and known is None:
            return Recheck("not used: this account does not import NFC-e")
        if self.client.generation is ApiGeneration.V2:
            if known is not None:
                stored = (await self.store.order(known.order_id)).order
                ref = NoteRef(kind=ref.kind, bling_id=ref.bling_id, numero=stored.number,
                              serie=stored.series, chave=stored.access_key)
            if ref.numero is None or ref.serie is None:
                return Recheck("not re-checked: API v2 finds a note only by its número and série, and "
                               "the webhook carries no série; the account's next poll imports it")
        try:
            detail = await self.client.get_note(ref)
        except InvalidResponse as error:  # as in a sweep: a note Bling describes unreadably waits
            return await work.quarantine(ref, error.user_message, None,
                                         QuarantineCode.BLING_ANSWER_UNREADABLE)
        except NotFound:
            if self.client.generation is ApiGeneration.V2:
                return Recheck("not re-checked: API v2 found no note with this id at its número and "
                               "série; the account's next poll looks again")
            return await self._cancel(ref, known, "the note no longer exists in Bling")
        status = detail.summary.status
        if status is InvoiceStatus.CANCELED:
            return await self._cancel(ref, known, "the note is Cancelada in Bling")
        if detail.summary.tipo is not NoteType.SAIDA:
            return Recheck("not used: an NF de entrada is not shipped")
        if status not in work.importable:
            return Recheck(f"nothing to do: Bling has the note at {status.label}"
                           + ("" if known is not None else
                              "; it is imported when it reaches Emitida DANFE"))
        if known is not None and known.status is OrderStatus.CANCELED:
            return Recheck(f"nothing to do: order {known.order_id} was canceled already",
                           SaveOutcome(SaveResult.UNCHANGED, known.order_id, known.version))
        if known is None and detail.summary.issued_at < self._horizon():
            # Polls never reach this far back: a webhook must not make an old note, perhaps
            # shipped long before blingsync, a new order for the warehouse (`sync --since` can).
            return Recheck("not used: the note was issued before the account's import horizon "
                           f"({self._horizon():%Y-%m-%d}); `blingsync sync --since` imports it")
        if _settled(known, status):
            assert known is not None  # noqa: S101 - _settled is False without a stored note
            return Recheck(f"unchanged: order {known.order_id} is imported at {status.label} already",
                           SaveOutcome(SaveResult.UNCHANGED, known.order_id, known.version))
        return await work.import_note(detail.summary.ref, detail)

    def _horizon(self) -> datetime:
        """The oldest emission date the account's polls import: its first poll's lookback."""
        return self.account.created_at - timedelta(days=self.account.settings.initial_lookback_days)

    async def _cancel(self, ref: NoteRef, known: KnownNote | None, why: str) -> Recheck:
        assert ref.bling_id is not None  # noqa: S101 - checked by recheck_note
        if known is None:
            return Recheck(f"nothing to do: {why}, and it was never imported")
        saved = await self.store.cancel_order(self.account.id, ref.bling_id, kind=ref.kind.value)
        if saved.result is SaveResult.CANCELED:
            log.info("account %s: order %s canceled (%s)", self.account.name, known.access_key, why)
            return Recheck(f"order {saved.order_id} canceled: {why}", saved)
        return Recheck(f"nothing to do: {why}, and order {known.order_id} was canceled already", saved)

    # --- one stream ---------------------------------------------------------------------------

    async def _sweep(self, kind: NoteKind, window: Window, trigger: str) -> SyncRun:
        run_id = await self.store.start_run(self.account.id, trigger=trigger, tier=window.tier,
                                            window_from=window.start, window_to=window.end)
        requests_before = self.client.stats.requests
        sweep = _Sweep(self, kind, window, run_id)
        try:
            await sweep.imports()
            await sweep.cancellations()
            await sweep.unimported()
        except BlingError as error:
            state = account_state_for(error)
            log.warning("account %s: import stopped: %s", self.account.name, error)
            await self.store.finish_run(run_id, outcome=RunOutcome.FAILED,
                                        requests=self.client.stats.requests - requests_before,
                                        error=error.user_message, error_code=bling_code(error))
            raise _AccountStopped(error, state) from error
        except BaseException:
            with contextlib.suppress(Exception):
                await self.store.finish_run(run_id, outcome=RunOutcome.FAILED,
                                            requests=self.client.stats.requests - requests_before,
                                            error="the import was interrupted",
                                            error_code=RunCode.INTERRUPTED)
            raise
        for tier in window.tiers:
            await self.store.advance_cursor(self.account.id, window.stream, tier, window.end)
        outcome = RunOutcome.PARTIAL if sweep.problems else RunOutcome.OK
        code = None
        if sweep.problems:  # notes quarantined, or only listing entries without an id skipped
            code = RunCode.NOTES_QUARANTINED if sweep.held else RunCode.LISTING_ENTRIES_SKIPPED
        return await self.store.finish_run(
            run_id, outcome=outcome, requests=self.client.stats.requests - requests_before,
            error="; ".join(sweep.problems[:5]) or None, error_code=code)


def _lookback(tiers: Sequence[SweepTier], name: str) -> timedelta:
    return next(t.lookback for t in tiers if t.name == name)


class _NoteImport:
    """Reading and storing one note: what a sweep does for each note it lists, and what a
    webhook's re-check does for the one note it names (`run_id` None: outside any run)."""

    def __init__(self, importer: Importer, kind: NoteKind, run_id: int | None) -> None:
        self.importer = importer
        self.store = importer.store
        self.client = importer.client
        self.account = importer.account
        self.kind = kind
        self._run = run_id
        self.problems: list[str] = []
        self.held = 0  # notes quarantined by this import
        self.importable = {InvoiceStatus.DANFE_PRINTED}
        if self.account.settings.import_authorized:
            self.importable.add(InvoiceStatus.AUTHORIZED)

    async def import_note(self, note: NoteRef, detail: NoteDetail | None = None) -> Recheck:
        """Detail (unless given), XML, parse, save: one note (by the reference of its listing
        entry, of its quarantine entry when it is retried outside any sweep, or of a webhook's
        re-check). Returns what happened, in words."""
        assert note.bling_id is not None  # noqa: S101 - listings and quarantine always have it
        xml: bytes | None = None
        try:
            if detail is None:
                detail = await self.client.get_note(note)
            if detail.summary.status not in self.importable:
                # It moved on since the listing (cancelled, most likely): the cancellation
                # pass or the next sweep deals with it.
                log.info("account %s: note %s is %s now, not imported", self.account.name,
                         note.numero, detail.summary.status.label)
                return Recheck(f"not imported: Bling has the note at {detail.summary.status.label} now")
            try:
                xml = await self.client.get_note_xml(detail)
            except NotFound:
                return await self.quarantine(
                    note, "Bling has no XML for this note (its document link and /nfe/documento both "
                    "answered not found)", None, QuarantineCode.XML_MISSING)
            order = parse_nfe(xml)
            if order.operation != 1:
                log.info("account %s: note %s is an entrada (tpNF 0), not shipped", self.account.name,
                         note.numero)
                return Recheck("not imported: the XML is of an NF de entrada (tpNF 0), which is not shipped")
            if order.model != self.kind.modelo:
                raise _Refused(QuarantineCode.WRONG_MODELO,
                               f"the XML is of modelo {order.model}, but Bling lists the note as "
                               f"{self.kind.value.upper()} (modelo {self.kind.modelo})")
            if order.authorization is None or order.authorization.status_code not in AUTHORISED:
                code = order.authorization.status_code if order.authorization else None
                raise _Refused(QuarantineCode.NOT_AUTHORISED,
                               "the XML carries no SEFAZ authorisation (protNFe"
                               + (f" with cStat {code}" if code is not None else " missing")
                               + "): a note without one must not be shipped")
            if order.access_key != (detail.summary.chave or order.access_key):
                raise _Refused(QuarantineCode.CHAVE_MISMATCH,
                               f"the XML is of note {order.access_key}, but Bling lists "
                               f"{detail.summary.chave} for note {note.numero}")
            links = OrderLinks(
                danfe=detail.danfe_url.reveal() if detail.danfe_url else None,
                xml=detail.xml_url.reveal() if detail.xml_url else None,
            )
            saved = await self.store.save_order(self.account.id, ImportedNote(
                kind=self.kind.value, bling_id=note.bling_id, situation=detail.summary.status,
                order=order, xml=xml, links=links,
            ), run_id=self._run)
            return Recheck(_saved_in_words(saved, detail.summary.status), saved)
        except NotFound:
            # The detail is gone: deleted in Bling between the listing and now.
            log.info("account %s: note %s vanished before it was read", self.account.name, note.numero)
            return Recheck("not imported: the note no longer exists in Bling")
        except InvalidResponse as error:
            return await self.quarantine(note, error.user_message, xml,
                                         QuarantineCode.BLING_ANSWER_UNREADABLE)
        except NfeError as error:
            return await self.quarantine(note, str(error), xml,
                                         error.code if isinstance(error, _Refused) else nfe_code(error))
        except ValueError as error:  # a reference the API cannot follow (a v2 note without série)
            return await self.quarantine(
                note, f"Bling's record of this note cannot be followed: {error}", xml,
                QuarantineCode.REFERENCE_UNFOLLOWABLE)

    async def quarantine(self, note: NoteRef, reason: str, payload: bytes | None,
                         code: QuarantineCode) -> Recheck:
        """Quarantine the note: `reason` in words (English), `code` the same for the dashboard."""
        assert note.bling_id is not None  # noqa: S101 - see import_note
        log.warning("account %s: note %s quarantined: %s", self.account.name, note.numero, reason)
        self.problems.append(f"note {note.numero}: {reason}")
        self.held += 1
        await self.store.quarantine(self.account.id, QuarantineEntry(
            kind=self.kind.value, bling_id=note.bling_id, reason=reason, number=note.numero,
            access_key=note.chave,
            payload=payload[:QUARANTINE_PAYLOAD_BYTES] if payload is not None else None,
            reason_code=code,
        ), run_id=self._run)
        return Recheck(f"quarantined: {reason}")


class _Refused(NfeError):
    """The importer's own refusal of an XML the parser read (another modelo, no SEFAZ
    authorisation, another note's chave), with its quarantine code."""

    def __init__(self, code: QuarantineCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code


def _saved_in_words(saved: SaveOutcome, situation: InvoiceStatus) -> str:
    if saved.result is SaveResult.CREATED:
        return f"order {saved.order_id} created from the note at {situation.label}"
    if saved.result is SaveResult.UPDATED:
        return f"order {saved.order_id} updated to version {saved.version}"
    return f"unchanged: order {saved.order_id} already holds this note's content"


class _Sweep(_NoteImport):
    """The passes of one stream over one window."""

    def __init__(self, importer: Importer, kind: NoteKind, window: Window, run_id: int) -> None:
        super().__init__(importer, kind, run_id)
        self.window = window
        self.run_id = run_id
        self.listed = 0
        self.done = 0
        self._pending: list[UnreadableRecord] = []  # reported by a listing, quarantined after it
        self.seen: set[int] = set()  # Bling ids listed in this pass

    # --- imports ------------------------------------------------------------------------------

    async def imports(self) -> None:
        triggers = [InvoiceStatus.DANFE_PRINTED]
        if self.account.settings.import_authorized:
            triggers.append(InvoiceStatus.AUTHORIZED)
        for status in triggers:
            async for batch in self._batches(status):
                await self._import_batch(status, batch)
        await self._retry_quarantined()

    async def _retry_quarantined(self) -> None:
        """Quarantined notes due for another attempt that this window did not list (older than
        every sweep reaches) are fetched by their id, so none waits forever for a `--since`.
        API v2 finds a note only by número and série, which a quarantine entry does not keep:
        those wait for a sweep or `sync --since` that lists them."""
        if self.client.generation is not ApiGeneration.V3:
            return
        now = self.importer._now()
        due = [entry for entry in await self.store.quarantined(self.account.id)
               if entry.kind == self.kind.value and entry.next_attempt_at <= now
               and entry.bling_id not in self.seen]
        for entry in due:
            await self.import_note(NoteRef(kind=self.kind, bling_id=entry.bling_id, numero=entry.number,
                                            chave=entry.access_key))

    async def _batches(self, status: InvoiceStatus) -> AsyncIterator[list[NoteSummary]]:
        batch: list[NoteSummary] = []
        async for note in self.client.iter_notes(
            status, issued_from=self.window.start, issued_to=self.window.end, kind=self.kind,
            tipo=NoteType.SAIDA, skip=self._unreadable,
        ):
            batch.append(note)
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    async def _import_batch(self, status: InvoiceStatus, batch: list[NoteSummary]) -> None:
        self.listed += len(batch)
        ids = [note.bling_id for note in batch]
        self.seen.update(ids)
        known = await self.store.known_notes(self.account.id, ids, kind=self.kind.value)
        held = await self.store.quarantine_holds(self.account.id, ids, kind=self.kind.value)
        todo = [note for note in batch
                if not _settled(known.get(note.bling_id), status) and note.bling_id not in held]
        skipped = len(batch) - len(todo)
        await self.store.count_in_run(self.run_id, listed=len(batch), skipped=skipped)
        self.done += skipped
        self._report()
        gate = asyncio.Semaphore(self.importer._concurrency)

        async def one(note: NoteSummary) -> None:
            async with gate:
                await self.import_note(note.ref)
                self.done += 1
                self._report()

        try:
            async with asyncio.TaskGroup() as group:
                for note in todo:
                    group.create_task(one(note))
        except BaseExceptionGroup as group:
            # One note's failure that concerns the whole account (a revoked token, Bling down)
            # ends the batch; the caller handles it like any other such error.
            raise _first_error(group) from None

    def _unreadable(self, record: UnreadableRecord) -> None:
        """A listed note Bling described in a way we cannot read: quarantined when it has an
        id (done after the listing: this callback cannot wait), reported in any case."""
        self.problems.append(f"unreadable note in the listing (id {record.bling_id}): {record.reason}")
        if record.bling_id is not None:
            self._pending.append(record)

    async def flush_unreadable(self) -> None:
        pending, self._pending = self._pending, []
        for record in pending:
            if record.bling_id is not None:
                self.held += 1
                await self.store.quarantine(self.account.id, QuarantineEntry(
                    kind=self.kind.value, bling_id=record.bling_id, reason=record.reason,
                    reason_code=QuarantineCode.LISTING_ENTRY_UNREADABLE,
                ), run_id=self.run_id)

    def _report(self) -> None:
        if self.importer._progress is not None:
            self.importer._progress(Progress(self.account.name, self.kind.value, self.listed, self.done))

    # --- cancellations ------------------------------------------------------------------------

    async def cancellations(self) -> None:
        await self.flush_unreadable()
        canceled: list[int] = []
        async for note in self.client.iter_notes(
            InvoiceStatus.CANCELED, issued_from=self.window.start, issued_to=self.window.end,
            kind=self.kind, tipo=NoteType.SAIDA, skip=self._unreadable,
        ):
            canceled.append(note.bling_id)
        for start in range(0, len(canceled), BATCH):
            ids = canceled[start:start + BATCH]
            known = await self.store.known_notes(self.account.id, ids, kind=self.kind.value)
            for bling_id, stored in known.items():
                if stored.status is OrderStatus.READY:
                    outcome = await self.store.cancel_order(self.account.id, bling_id, kind=self.kind.value,
                                                            run_id=self.run_id)
                    if outcome.result is SaveResult.CANCELED:
                        log.info("account %s: order %s canceled in Bling", self.account.name,
                                 stored.access_key)
        await self.flush_unreadable()

    # --- what was seen but not imported -------------------------------------------------------

    async def unimported(self) -> None:
        """Notes at Autorizada (SEFAZ accepted them, the DANFE was never printed) are the
        commonest "where is my order?": list them and say why they wait. Listed afresh for the
        window in every sweep wider than a plain poll (the first import, `--since`, the hourly
        and daily sweeps: one more list call), and only when the account does not import
        Autorizada notes anyway; after every sweep, notes imported since leave the list."""
        settings = self.account.settings
        if settings.import_authorized:
            return
        shortest = min(settings.tiers, key=lambda tier: tier.lookback).name
        if self.window.tier == shortest:  # a plain poll: keep it at its two list calls
            await self._prune_unimported()
            return
        stale = timedelta(hours=settings.stale_authorized_hours)
        waiting: list[UnimportedNote] = []
        async for note in self.client.iter_notes(
            InvoiceStatus.AUTHORIZED, issued_from=self.window.start, issued_to=self.window.end,
            kind=self.kind, tipo=NoteType.SAIDA, skip=self._unreadable,
        ):
            age = self.window.end - note.issued_at
            if age >= stale:
                waiting.append(UnimportedNote(
                    kind=self.kind.value, bling_id=note.bling_id, number=note.numero,
                    situation=note.status, issued_at=note.issued_at, access_key=note.chave,
                    reason=_waiting_reason(age), reason_code=UnimportedCode.WAITING_FOR_DANFE,
                ))
        await self.store.replace_unimported(self.account.id, self.kind.value, waiting,
                                            within=(self.window.start, self.window.end))
        await self._prune_unimported()
        await self.flush_unreadable()


    async def _prune_unimported(self) -> None:
        waiting = [n for n in await self.store.unimported(self.account.id) if n.kind == self.kind.value]
        if not waiting:
            return
        imported = await self.store.known_notes(self.account.id, [n.bling_id for n in waiting],
                                                kind=self.kind.value)
        if imported:
            await self.store.replace_unimported(
                self.account.id, self.kind.value, [n for n in waiting if n.bling_id not in imported])


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first exception of a (possibly nested) group, preferring Bling's errors, which
    say what the user should do."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    return next((e for e in leaves if isinstance(e, BlingError)), leaves[0])


def _waiting_reason(age: timedelta) -> str:
    days = age.days
    since = f"{days} day{'s' if days != 1 else ''}" if days else f"{age.seconds // 3600} hours"
    return (f"Autorizada for {since}: the DANFE has not been printed yet, so Bling has not "
            "moved it to Emitida DANFE (print the DANFE in Bling to send it to the warehouse)")


def _settled(known: KnownNote | None, listed_as: InvoiceStatus) -> bool:
    """Whether a listed note needs no detail call: stored at this situation, canceled (final),
    or already imported at Emitida DANFE while this is the Autorizada listing."""
    if known is None:
        return False
    return (known.situation is listed_as or known.status is OrderStatus.CANCELED
            or (listed_as is InvoiceStatus.AUTHORIZED
                and known.situation is InvoiceStatus.DANFE_PRINTED))
