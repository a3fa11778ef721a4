"""The accounts pages: every brand's health at a glance (`/contas`), one brand in depth
(`/contas/{id}`), and the brand's "Conectar Bling" wizard (`/contas/nova`).

Why they are shaped this way:

* **The wizard proves the key on the spot.** A brand that pastes a key wants to know *now*
  whether it works and, if not, which box to tick in Bling; the page calls Bling through
  `Service.add_account` (which stores the account first and removes it again when Bling refuses
  the key, so a refused key leaves nothing behind) and shows one line per permission, named as
  Bling's screen names it, with the menu path to it.
* **Every figure on the list comes from a fixed number of grouped queries over one page of
  accounts** (`Store.account_figures`, with the pages' other reads in `store/account_views.py`),
  each answered from an index (the latest run by a backward probe of `sync_runs(account_id, id)`
  per account, not by grouping every run ever made), so the page costs the same with 10 brands
  or 1,000, and with 1,000 orders or 100,000.
* **Live counts without noise**: the list and the account page poll every 10 s with a
  fingerprint of what they show (`digest`); an unchanged region is answered 204 and left alone.
* **State changes are POST + CSRF + redirect** (post/redirect/get): a reload never repeats an
  action, and the one-shot flash message says what happened. The exceptions are the permission
  check and the connect link, whose answer *is* the page.
* **Texts come from the catalogue** (`messages/pt_BR.accounts.json`). What Bling or the importer
  said (a quarantined note's reason, a note not imported, a run's error, Bling's refusal) is
  said in Portuguese by its stable code (`sync/reasons.py`, `BlingError.code`), from
  `messages/pt_BR.reasons.json`: what happened and what to do. The English text stays
  available as a collapsed technical detail, never instead of the sentence; a row stored
  before the codes (no code) gets the generic sentence it always had.
* **A reason shared by many rows is said once.** The history gives the full sentence under the
  newest run with each reason and a few words ("1 nota em quarentena") on the others; the notes
  not imported state their shared reason above the table, each row keeping only its own fact
  ("Há 3 dias sem DANFE"). A poll a minute would otherwise repeat one sentence twenty times.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Annotated, Final
from urllib.parse import urlencode

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from blingsync.bling.errors import (
    ApiDiscontinued,
    BlingError,
    CredentialsInvalid,
    ReauthorizationNeeded,
)
from blingsync.bling.models import PermissionCheck
from blingsync.bling.secrets import redact_url
from blingsync.domain import ApiGeneration, InvoiceStatus
from blingsync.service import Added, Service, ServiceError
from blingsync.store import AccountExists, AccountNotFound, CredentialsUnreadable
from blingsync.store.account_views import AccountFigures, HeldNote
from blingsync.store.records import (
    Account,
    AccountSettings,
    AccountState,
    RunOutcome,
    SinkKind,
    SyncRun,
    UnimportedNote,
)
from blingsync.sync.reasons import RunCode, UnimportedCode, bling_code
from blingsync.web import deps
from blingsync.web.oauth import ConnectUnavailable, connect_link
from blingsync.web.ui.auth import csrf_protect, require_operator
from blingsync.web.ui.i18n import SAO_PAULO, catalogue, date_br, t
from blingsync.web.ui.render import error_page, flash, render

log = logging.getLogger(__name__)

router = APIRouter(prefix="/contas", dependencies=[Depends(require_operator)])

ServiceDep = Annotated[Service, Depends(deps.service)]
WakeupsDep = Annotated[deps.Wakeups, Depends(deps.wakeups)]
RunningDep = Annotated[set[int], Depends(deps.syncs_running)]
CSRF: Final = [Depends(csrf_protect)]

PAGE_SIZE: Final = 50
"""Accounts per page of the list: a screenful that still reads, whatever the number of brands."""
MAX_ID: Final = 2_147_483_647
"""Ids above this are no account (and PostgreSQL's integer would refuse them)."""
NAME_MAX: Final = 120
KEY_MAX: Final = 200
SITUATION_MAX: Final = 100
LOOKBACK_DAYS: Final = (1, 3650)
"""Bling rejects periods over a year per request, but the importer splits longer ones: ten years
is the outer bound of any brand's history worth importing."""
POLL_SECONDS: Final = (30, 86_400)
"""From 30 s (a poll costs at least one request per stream against Bling's 120,000 a day per
account, shared with the brand's other apps) to once a day."""
DETAIL_ROWS: Final = 50
"""Rows of the account page's lists of notes not imported and quarantined; a count says how many
more there are."""
RUNS_SHOWN: Final = 20
"""The latest runs on the account page (a poll every minute makes 1,440 a day: history beyond a
screenful belongs to the logs and metrics)."""
RUNS_VISIBLE: Final = 5
"""Of those, shown at first; the rest are one click away ("Ver as 15 importações anteriores")."""
SYNC_TRIGGER: Final = "dashboard"

REFUSED: Final = (CredentialsInvalid, ReauthorizationNeeded, ApiDiscontinued)
"""Bling's answers meaning the credentials given cannot be used (nothing stays stored)."""


# --- words ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Badge:
    """A state as a coloured label: `tone` is the `badge--` modifier of app.css (ok, warn, error,
    neutral, info)."""

    text: str
    tone: str


_STATE_TONES: Final[dict[AccountState, str]] = {
    AccountState.ACTIVE: "ok",
    AccountState.PAUSED: "neutral",
    AccountState.NEEDS_REAUTH: "error",
    AccountState.INVALID_CREDENTIALS: "error",
    AccountState.MISSING_PERMISSIONS: "warn",
    AccountState.API_DISCONTINUED: "error",
    AccountState.DAILY_LIMIT: "warn",
}

_RUN_TONES: Final[dict[RunOutcome, str]] = {
    RunOutcome.RUNNING: "info",
    RunOutcome.OK: "ok",
    RunOutcome.PARTIAL: "warn",
    RunOutcome.FAILED: "error",
    RunOutcome.INTERRUPTED: "error",
}

ATTENTION_STATES: Final = frozenset(set(AccountState) - {AccountState.ACTIVE, AccountState.PAUSED})
"""States that stop the imports and need someone to look (a new key, a reauthorization, a
permission in Bling; the daily limit passes at midnight but still says why nothing arrives)."""

STATE_FILTERS: Final = ("todas", "atencao", *(state.value for state in AccountState))
"""The list's state filter: every account, those needing attention, or one state."""


def state_badge(state: AccountState) -> Badge:
    return Badge(t(f"accounts.badge.{state.value}"), _STATE_TONES[state])


def run_badge(outcome: RunOutcome) -> Badge:
    return Badge(t(f"accounts.run.outcome.{outcome.value}"), _RUN_TONES[outcome])


def _known(prefix: str, value: str | None) -> str:
    """A catalogue text for a value the code may grow (a trigger, a tier), else the value."""
    if not value:
        return "—"
    text = t(f"{prefix}.{value}")
    return value if text == f"{prefix}.{value}" else text


# --- reasons, by code ------------------------------------------------------------------------------


_RUN_CODES: Final = frozenset(code.value for code in RunCode)


def reason_text(area: str, code: str | None, **params: object) -> str | None:
    """The pt-BR sentence of a reason by its stable code (`reasons.<area>.<code>`), or None:
    no code (a row stored before the codes) or one this version's catalogue lacks; the caller
    then says its generic sentence."""
    if not code:
        return None
    key = f"reasons.{area}.{code}"
    return t(key, **params) if key in catalogue() else None


def bling_reason(error: BlingError | None, *, now: bool = False) -> str | None:
    """What Bling's refusal means and what to do, in pt-BR (by `bling_code`, else the class's
    plain `code`). `now`: the answer to what the operator just did (a key, a check), which
    nothing retries by itself: the `reasons.bling_now` wording where it differs from the stored
    one ("tente de novo em alguns minutos", not "o blingsync tenta de novo sozinho")."""
    if error is None:
        return None
    codes = (bling_code(error), error.code)
    areas = ("bling_now", "bling") if now else ("bling",)
    # The most specific code first, in either wording: a daily limit is `rate_limited_day`
    # before it is any `rate_limited`.
    return next((text for code in codes for area in areas
                 if (text := reason_text(area, code)) is not None), None)


def run_reason(run: SyncRun) -> str | None:
    """Why a run failed or finished partially, in pt-BR: a `RunCode` or the Bling error's code.
    The number a partial run's sentence names comes from its own counters."""
    if run.error_code in _RUN_CODES:
        return reason_text("run", run.error_code, count=run.counters.quarantined)
    return reason_text("bling", run.error_code)


@dataclass(frozen=True)
class Problem:
    """Something that needs a person: in pt-BR at length (the account page) and `short` (the
    list), with what the code recorded as `detail` (often Bling's or the importer's English)."""

    text: str
    short: str
    detail: str | None = None  # shown collapsed, as the technical detail


def _problem(key: str, detail: str | None = None, **params: object) -> Problem:
    return Problem(t(f"accounts.{key}", **params), t(f"accounts.problem_short.{key.rsplit('.', 1)[-1]}",
                                                     **params), detail)


def problems(account: Account, figures: AccountFigures) -> list[Problem]:
    """What to tell an operator about the account, most urgent first (the list shows the first)."""
    found: list[Problem] = []
    if account.state in ATTENTION_STATES:
        found.append(_problem(f"state_help.{account.state.value}", account.state_reason))
    run = figures.last_run
    if run is not None and run.outcome in (RunOutcome.FAILED, RunOutcome.INTERRUPTED):
        problem = _problem(f"problem.run_{run.outcome.value}", run.error)
        reason = run_reason(run)
        found.append(replace(problem, text=f"{problem.text} {reason}") if reason else problem)
    if figures.dead:
        found.append(_problem("problem.dead", count=figures.dead))
    if figures.quarantined:
        found.append(_problem("problem.quarantined", count=figures.quarantined))
    return found


# --- today ----------------------------------------------------------------------------------------


def start_of_today(now: datetime) -> datetime:
    """Midnight in São Paulo, the day the warehouse counts "orders today" in."""
    local = now.astimezone(SAO_PAULO)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


# --- forms ------------------------------------------------------------------------------------------


async def _fields(request: Request) -> dict[str, str]:
    """The posted form's text fields (files are ignored; the CSRF check already read the form)."""
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _name(value: str | None, errors: dict[str, str]) -> str:
    name = " ".join((value or "").split())
    if not name:
        errors["name"] = t("accounts.error.name_required")
    elif len(name) > NAME_MAX:
        errors["name"] = t("accounts.error.name_too_long", max=NAME_MAX)
    return name


def _whole(value: str | None, bounds: tuple[int, int], field_name: str, message: str,
           errors: dict[str, str], default: int) -> int:
    text = (value or "").strip()
    if not text:
        errors[field_name] = t(message, low=bounds[0], high=bounds[1])
        return default
    try:
        number = int(text)
    except ValueError:
        errors[field_name] = t(message, low=bounds[0], high=bounds[1])
        return default
    if not bounds[0] <= number <= bounds[1]:
        errors[field_name] = t(message, low=bounds[0], high=bounds[1])
    return number


def _checked(fields: dict[str, str], name: str) -> bool:
    return fields.get(name, "") in {"on", "1", "true", "sim"}


@dataclass
class ConnectForm:
    """The wizard's fields as typed (re-shown with the errors; never the API key)."""

    name: str = ""
    import_nfce: bool = False
    import_authorized: bool = False
    lookback_days: str = "30"
    errors: dict[str, str] = field(default_factory=dict)


def _connect_form(fields: dict[str, str]) -> tuple[ConnectForm, AccountSettings]:
    form = ConnectForm(name=fields.get("name", "")[:NAME_MAX * 2],
                       import_nfce=_checked(fields, "import_nfce"),
                       import_authorized=_checked(fields, "import_authorized"),
                       lookback_days=fields.get("lookback_days", "")[:12])
    form.name = _name(form.name, form.errors) or form.name
    days = _whole(form.lookback_days, LOOKBACK_DAYS, "lookback_days", "accounts.error.lookback",
                  form.errors, 30)
    return form, AccountSettings(import_nfce=form.import_nfce, import_authorized=form.import_authorized,
                                 initial_lookback_days=days)


@dataclass(frozen=True)
class CheckLine:
    """One permission of the checklist: its name in Bling, granted or not, and where to tick it:
    a menu path in Bling's screens (API v2: the API user's permission boxes) and a sentence."""

    label: str
    granted: bool
    path: tuple[str, ...]
    where: str


MENU_SEPARATOR: Final = " › "


def checklist(generation: ApiGeneration, checks: Sequence[PermissionCheck]) -> list[CheckLine]:
    """Each permission as a line, missing ones first (the reader's next step)."""
    lines = [CheckLine(check.label, check.granted, *_where(generation, check.resource)) for check in checks]
    return sorted(lines, key=lambda line: line.granted)


def _where(generation: ApiGeneration, resource: str) -> tuple[tuple[str, ...], str]:
    """The menu path (split on " › ") and the sentence saying where `resource` is granted."""
    prefix = f"accounts.perm.{generation.value}"
    path = t(f"{prefix}.path.{resource}")
    if path == f"{prefix}.path.{resource}":
        path = t(f"{prefix}.path.other")
    return tuple(path.split(MENU_SEPARATOR)), t(f"{prefix}.how")


# --- the list ---------------------------------------------------------------------------------------


def digest(*shown: object) -> str:
    """A fingerprint of what a live region shows. The page polls with the fingerprint it has
    (`hx-vals`), and an unchanged region is answered 204, which HTMX leaves alone: a screen
    reader hears the `aria-live` region when a count changed, not every 10 s, and the focus of
    someone tabbing through the table's buttons stays where it is."""
    return hashlib.sha256(repr(shown).encode()).hexdigest()[:20]



@dataclass(frozen=True)
class Row:
    account: Account
    badge: Badge
    figures: AccountFigures
    problem: Problem | None  # the most urgent, in full
    others: tuple[str, ...] = ()  # the rest, by their short text (named, not just counted)


def _list_query(request: Request) -> tuple[str, str, int]:
    params = request.query_params
    q = " ".join(params.get("q", "").split())[:NAME_MAX]
    state = params.get("estado", "todas")
    if state not in STATE_FILTERS:
        state = "todas"
    try:
        page = max(1, min(int(params.get("pagina", "1")), 100_000))
    except ValueError:
        page = 1
    return q, state, page


def _states(state: str) -> frozenset[AccountState] | None:
    """The accounts a state filter of the list keeps (None: every account)."""
    if state == "atencao":
        return ATTENTION_STATES
    if state in {s.value for s in AccountState}:
        return frozenset({AccountState(state)})
    return None


async def _list_context(request: Request, service: Service) -> dict[str, object]:
    q, state, page = _list_query(request)
    found = await service.store.accounts_page(name=q, states=_states(state), page=page, size=PAGE_SIZE)
    numbers = await service.store.account_figures([a.id for a in found.accounts],
                                                  today=start_of_today(service.now()))
    rows = []
    for account in found.accounts:
        figs = numbers.get(account.id, AccountFigures())
        listed = problems(account, figs)
        rows.append(Row(account, state_badge(account.state), figs, listed[0] if listed else None,
                        tuple(problem.short for problem in listed[1:])))
    pages = max(1, math.ceil(found.total / PAGE_SIZE))
    base = {"q": q, "estado": state} if q or state != "todas" else {}
    total_accounts = sum(found.by_state.values())
    summary = [(state_value, state_badge(state_value), found.by_state.get(state_value, 0))
               for state_value in AccountState]
    return {
        "rows": rows, "q": q, "estado": state, "page": page, "pages": pages, "total": found.total,
        "total_accounts": total_accounts, "summary": summary,
        "digest": digest(rows, summary, found.total, page, pages),
        "attention": sum(found.by_state.get(s, 0) for s in ATTENTION_STATES),
        "state_filters": [(value, t(f"accounts.filter.{value}")) for value in STATE_FILTERS],
        "query_string": urlencode({**base, "pagina": page}),
        "prev_url": f"/contas?{urlencode({**base, 'pagina': page - 1})}" if page > 1 else None,
        "next_url": f"/contas?{urlencode({**base, 'pagina': page + 1})}" if page < pages else None,
        "back": f"/contas?{urlencode({**base, 'pagina': page})}",
    }


@router.get("", response_class=HTMLResponse)
async def list_accounts(request: Request, service: ServiceDep) -> Response:
    return render(request, "accounts/list.html", await _list_context(request, service))


@router.get("/_vivo", response_class=HTMLResponse)
async def list_fragment(request: Request, service: ServiceDep) -> Response:
    """The list's table and summary, for the page's refresh every 10 s (no layout); nothing
    (204) when they are as the page shows them (see `digest`)."""
    context = await _list_context(request, service)
    if request.query_params.get("v") == context["digest"]:
        return Response(status_code=204)
    return render(request, "accounts/_list_live.html", context)


# --- the wizard -------------------------------------------------------------------------------------


def _oauth_ready(service: Service) -> bool:
    return bool(service.settings.oauth_client_id and service.settings.oauth_client_secret)


@router.get("/nova", response_class=HTMLResponse)
async def connect_start(request: Request, service: ServiceDep) -> Response:
    return render(request, "accounts/new.html", {"oauth_ready": _oauth_ready(service)})


def _key_page(request: Request, form: ConnectForm, *, error: str | None = None, detail: str | None = None,
              status_code: int = 200) -> Response:
    return render(request, "accounts/new_key.html", {"form": form, "error": error, "detail": detail},
                  status_code=status_code)


@router.get("/nova/chave", response_class=HTMLResponse)
async def key_form(request: Request) -> Response:
    return _key_page(request, ConnectForm())


@router.post("/nova/chave", response_class=HTMLResponse, dependencies=CSRF)
async def key_connect(request: Request, service: ServiceDep, wakeups: WakeupsDep) -> Response:
    """Check the pasted key with Bling and show the checklist; a key Bling refuses stores nothing
    (`add_account` removes the account again) and the form comes back with why."""
    fields = await _fields(request)
    form, settings = _connect_form(fields)
    api_key = "".join(fields.get("api_key", "").split())
    if not api_key:
        form.errors["api_key"] = t("accounts.error.key_required")
    elif len(api_key) > KEY_MAX:
        form.errors["api_key"] = t("accounts.error.key_too_long")
    if form.errors:
        return _key_page(request, form, status_code=422)
    try:
        added = await service.add_account(form.name, api_key=api_key, settings=settings)
    except AccountExists:
        form.errors["name"] = t("accounts.error.name_taken", name=form.name)
        return _key_page(request, form, status_code=409)
    except REFUSED as exc:
        return _key_page(request, form, error=_refusal(exc, "accounts.error.nothing_stored"),
                         detail=exc.user_message, status_code=422)
    except ServiceError as exc:  # stored, but Bling did not finish the check
        account = await _by_name(service, form.name)
        cause = exc.__cause__ if isinstance(exc.__cause__, BlingError) else None
        detail = cause.user_message if cause is not None else None
        if account is None:
            error = bling_reason(cause, now=True)
            return _key_page(request, form, error=(f"{error} {t('accounts.error.nothing_stored')}" if error
                                                   else t("accounts.error.bling_unavailable")),
                             detail=detail, status_code=502)
        return render(request, "accounts/checked.html", _checked_context(
            account, None, new=True, unfinished=True, reason=bling_reason(cause, now=True), detail=detail),
            status_code=502)
    if wakeups.schedules_syncs and not added.missing:
        wakeups.sync(added.account.id)
    return render(request, "accounts/checked.html", _checked_context(added.account, added, new=True))


def _refusal(exc: BlingError, outcome: str) -> str:
    """Why Bling refused a key, by its code, and what became of it (`outcome`: nothing stored,
    or the old key kept); the generic sentences for a code the catalogue lacks."""
    reason = bling_reason(exc, now=True)
    if reason is not None:
        return f"{reason} {t(outcome)}"
    if isinstance(exc, ApiDiscontinued):
        return t("accounts.error.key_discontinued")
    if isinstance(exc, ReauthorizationNeeded):
        return t("accounts.error.key_inactive")
    return t("accounts.error.key_refused")


def _checked_context(account: Account, added: Added | None, *, new: bool, unfinished: bool = False,
                     checks: Sequence[PermissionCheck] | None = None, error: str | None = None,
                     reason: str | None = None, detail: str | None = None) -> dict[str, object]:
    """The checklist page's context: the permissions found (by `add_account`, `reconnect` or a
    check), or why there are none (`error`: Bling refused; `unfinished`: Bling did not answer,
    `reason` saying why in pt-BR when known). `detail` is Bling's English, shown collapsed."""
    permissions = list(added.permissions) if added is not None else list(checks or [])
    return {"account": account, "lines": checklist(account.generation, permissions), "new": new,
            "unfinished": unfinished, "error": error, "reason": reason, "detail": detail,
            "missing": [p for p in permissions if not p.granted], "badge": state_badge(account.state)}


async def _by_name(service: Service, name: str) -> Account | None:
    try:
        return await service.store.account(name)
    except AccountNotFound:
        return None


@router.get("/nova/oauth", response_class=HTMLResponse)
async def oauth_form(request: Request, service: ServiceDep) -> Response:
    return render(request, "accounts/new_oauth.html",
                  {"form": ConnectForm(), "oauth_ready": _oauth_ready(service), "error": None})


@router.post("/nova/oauth", response_class=HTMLResponse, dependencies=CSRF)
async def oauth_connect(request: Request, service: ServiceDep) -> Response:
    form, settings = _connect_form(await _fields(request))
    context: dict[str, object] = {"form": form, "oauth_ready": _oauth_ready(service), "error": None}
    if form.errors:
        return render(request, "accounts/new_oauth.html", context, status_code=422)
    try:
        link = await connect_link(service, form.name, settings=settings)
    except ConnectUnavailable:
        context.update(oauth_ready=False)
        return render(request, "accounts/new_oauth.html", context, status_code=503)
    except AccountExists:
        form.errors["name"] = t("accounts.error.name_taken", name=form.name)
        return render(request, "accounts/new_oauth.html", context, status_code=409)
    return render(request, "accounts/link.html",
                  {"name": form.name, "url": link.url, "expires_at": link.expires_at, "reconnect": False})


# --- one account ------------------------------------------------------------------------------------


async def _find(service: Service, account_id: int) -> Account | None:
    if not 1 <= account_id <= MAX_ID:
        return None
    try:
        return await service.store.account_by_id(account_id)
    except AccountNotFound:
        return None


def _not_found(request: Request) -> Response:
    return error_page(request, 404, "accounts.not_found.text")


@dataclass
class SettingsForm:
    """The settings form as typed, with its errors (pt-BR) per field."""

    import_authorized: bool
    import_nfce: bool
    lookback_days: str
    poll_interval_s: str
    write_back: bool
    write_back_situation: str
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, settings: AccountSettings) -> SettingsForm:
        return cls(import_authorized=settings.import_authorized, import_nfce=settings.import_nfce,
                   lookback_days=str(settings.initial_lookback_days),
                   poll_interval_s=str(settings.poll_interval_s), write_back=settings.write_back,
                   write_back_situation=settings.write_back_situation or "")


@dataclass(frozen=True)
class RunLine:
    """A run of the history. A run that failed or finished partially says why once per reason:
    the newest run with that reason carries the full sentence and the English (`explains`); an
    older one with the same reason shows only its `short` phrase ("1 nota em quarentena"), or,
    lacking one, a link to the run that explains it (`same_as`)."""

    run: SyncRun
    badge: Badge
    trigger: str
    tier: str
    window: str  # "20/10 a 21/11/2026": the year once when both ends share it
    reason: str | None = None  # pt-BR, when the run has an error (its English is the detail)
    short: str | None = None  # a few words for the outcome column, from the run's own counters
    explains: bool = False
    same_as: SyncRun | None = None


RUN_SHORT: Final = {RunCode.NOTES_QUARANTINED.value, RunCode.LISTING_ENTRIES_SKIPPED.value}
"""Run codes with a phrase of a few words (`accounts.run.short.<code>`) for the outcome column."""


def _window(run: SyncRun) -> str:
    start, end = date_br(run.window_from), date_br(run.window_to)
    if start[-4:] == end[-4:]:
        start = start[:-5]
    return t("accounts.detail.window", start=start, end=end)


def _run_lines(runs: Sequence[SyncRun]) -> list[RunLine]:
    """The history's lines, newest first, each reason said in full once (see `RunLine`): a
    reason is the stored code, or, for a run stored before the codes, its English text."""
    explained: dict[str, SyncRun] = {}
    lines = []
    for run in runs:
        line = RunLine(run, run_badge(run.outcome), _known("accounts.trigger", run.trigger),
                       _known("accounts.tier", run.tier), _window(run))
        if run.error or run.error_code:
            short = (t(f"accounts.run.short.{run.error_code}", count=run.counters.quarantined)
                     if run.error_code in RUN_SHORT else None)
            reason_key = run.error_code or run.error or ""
            first = explained.setdefault(reason_key, run)
            line = replace(line, reason=run_reason(run) or t("accounts.detail.run_error"), short=short,
                           explains=first is run, same_as=None if first is run or short else first)
        lines.append(line)
    return lines


@dataclass(frozen=True)
class WaitingLine:
    """A note not imported: its own fact in a few words (`short`: "Há 3 dias sem DANFE"); the
    sentence its rows share is said once, above the table (`WaitingReason`)."""

    note: UnimportedNote
    situation: str
    short: str


@dataclass(frozen=True)
class WaitingReason:
    """Why some notes of the table are not imported, said once for all of them, with each one's
    English (`details`: note number and text) in one collapsed technical detail."""

    text: str
    details: tuple[tuple[int, str], ...]


_DANFE: Final = UnimportedCode.WAITING_FOR_DANFE.value


def _waiting(notes: Sequence[UnimportedNote], now: datetime) -> tuple[list[WaitingLine], list[WaitingReason]]:
    """The table's lines and the reasons above it. A note is grouped by its code when the
    catalogue has it; one stored before the codes (or with a code this version lacks) is
    waiting for its DANFE when Autorizada (the one reason the importer ever had for those), and
    otherwise gets the generic sentence."""
    lines: list[WaitingLine] = []
    groups: dict[str, list[UnimportedNote]] = {}
    for note in notes:
        code = note.reason_code
        if not code or f"reasons.unimported.{code}" not in catalogue():
            code = _DANFE if note.situation is InvoiceStatus.AUTHORIZED else ""
        groups.setdefault(code, []).append(note)
        short = (t("accounts.unimported.waiting_days", count=max(0, (now - note.issued_at).days))
                 if code == _DANFE else t("accounts.unimported.other_short"))
        lines.append(WaitingLine(note, note.situation.label, short))
    reasons = [WaitingReason(reason_text("unimported", code, count=len(group))
                             or t("accounts.unimported.other", count=len(group)),
                             tuple((note.number, note.reason) for note in group if note.reason))
               for code, group in groups.items()]
    return lines, reasons


@dataclass(frozen=True)
class HeldLine:
    note: HeldNote
    reason: str  # pt-BR by its code, else the generic sentence; `note.reason` is the detail


def _held_line(note: HeldNote) -> HeldLine:
    said = reason_text("quarantine", note.reason_code)
    return HeldLine(note, said or t("accounts.detail.quarantine_reason"))


async def _detail_context(service: Service, account: Account, *,
                          form: SettingsForm | None = None) -> dict[str, object]:
    store = service.store
    now = service.now()
    live = await _live_context(service, account)
    runs = await store.runs(account.id, limit=RUNS_SHOWN)
    held, held_total = await store.held_notes(account.id, limit=DETAIL_ROWS)
    waiting, waiting_total = await store.waiting_notes(account.id, limit=DETAIL_ROWS)
    waiting_lines, waiting_reasons = _waiting(waiting, now)
    sink = await store.sink(account.id)
    return {
        **live,
        "runs": _run_lines(runs), "runs_visible": RUNS_VISIBLE,
        "held": [_held_line(note) for note in held], "held_total": held_total,
        "waiting": waiting_lines, "waiting_reasons": waiting_reasons, "waiting_total": waiting_total,
        "sink": sink, "sink_url": None if sink is None or sink.url is None else redact_url(sink.url),
        "sink_kind": None if sink is None else _known("accounts.sink.kind", SinkKind(sink.kind).value),
        "form": form or SettingsForm.of(account.settings),
        "paused": account.state is AccountState.PAUSED,
        "v2": account.generation is ApiGeneration.V2,
    }


@router.get("/{account_id:int}", response_class=HTMLResponse)
async def show_account(request: Request, account_id: int, service: ServiceDep) -> Response:
    account = await _find(service, account_id)
    if account is None:
        return _not_found(request)
    return render(request, "accounts/detail.html", await _detail_context(service, account))


@router.get("/{account_id:int}/_vivo", response_class=HTMLResponse)
async def detail_fragment(request: Request, account_id: int, service: ServiceDep) -> Response:
    """The account's figures, for the page's refresh every 10 s (no layout)."""
    account = await _find(service, account_id)
    if account is None:
        return _not_found(request)
    context = await _live_context(service, account)
    if request.query_params.get("v") == context["digest"]:
        return Response(status_code=204)
    return render(request, "accounts/_detail_live.html", context)


async def _live_context(service: Service, account: Account) -> dict[str, object]:
    """The account page's live region: its badge, figures and problems, and their `digest`."""
    figs = (await service.store.account_figures([account.id], today=start_of_today(service.now()))).get(
        account.id, AccountFigures())
    totals = await service.store.order_totals(account.id)
    found = problems(account, figs)
    badge = state_badge(account.state)
    return {"account": account, "badge": badge, "figures": figs, "totals": totals, "problems": found,
            "digest": digest(badge, figs, totals, found)}


_BACK: Final = re.compile(r"/contas(/[0-9]{1,10})?(\?[A-Za-z0-9=&%+._-]{0,300})?")


def _back(fields: dict[str, str], account_id: int) -> str:
    """Where an action returns to: the page it was posted from when that is one of these pages
    (never anywhere else: an open redirect would be a phishing aid), else the account."""
    wanted = fields.get("voltar", "")
    return wanted if _BACK.fullmatch(wanted) else f"/contas/{account_id}"


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@router.post("/{account_id:int}/sincronizar", dependencies=CSRF)
async def sync_now(request: Request, account_id: int, service: ServiceDep, wakeups: WakeupsDep,
                   running: RunningDep, background: BackgroundTasks) -> Response:
    """Import the account now; the answer comes at once and the run shows in its history."""
    account = await _find(service, account_id)
    if account is None:
        return _not_found(request)
    back = _back(await _fields(request), account.id)
    if account.state is AccountState.PAUSED:
        flash(request, "accounts.flash.sync_paused", kind="error", name=account.name)
    elif wakeups.schedules_syncs:
        wakeups.sync(account.id)
        flash(request, "accounts.flash.sync_started", name=account.name)
    elif account.id in running:
        flash(request, "accounts.flash.sync_running", name=account.name)
    else:
        running.add(account.id)
        background.add_task(deps.sync_in_background, service, wakeups, running, account.id,
                            trigger=SYNC_TRIGGER)
        flash(request, "accounts.flash.sync_started", name=account.name)
    return _redirect(back)


@router.post("/{account_id:int}/pausar", dependencies=CSRF)
async def pause(request: Request, account_id: int, service: ServiceDep) -> Response:
    account = await _find(service, account_id)
    if account is None:
        return _not_found(request)
    back = _back(await _fields(request), account.id)
    await service.pause(account.id)
    flash(request, "accounts.flash.paused", name=account.name)
    return _redirect(back)


@router.post("/{account_id:int}/retomar", dependencies=CSRF)
async def resume(request: Request, account_id: int, service: ServiceDep, wakeups: WakeupsDep) -> Response:
    account = await _find(service, account_id)
    if account is None:
        return _not_found(request)
    back = _back(await _fields(request), account.id)
    await service.resume(account.id)
    if wakeups.schedules_syncs:
        wakeups.sync(account.id)
    flash(request, "accounts.flash.resumed", name=account.name)
    return _redirect(back)


@router.post("/{account_id:int}/verificar", response_class=HTMLResponse, dependencies=CSRF)
async def check(request: Request, account_id: int, service: ServiceDep) -> Response:
    """Probe the permissions with Bling now and show the checklist (the answer is the page)."""
    account = await _find(service, account_id)
    if account is None:
        return _not_found(request)
    try:
        found = await service.check_account(account.id)
    except BlingError as exc:
        return render(request, "accounts/checked.html", _checked_context(
            account, None, new=False,
            error=bling_reason(exc, now=True) or t("accounts.error.check_unavailable"),
            detail=exc.user_message), status_code=502)
    except (CredentialsUnreadable, ServiceError) as exc:
        return render(request, "accounts/checked.html", _checked_context(
            account, None, new=False, error=t("accounts.error.credentials_unreadable"), detail=str(exc)),
            status_code=409)
    return render(request, "accounts/checked.html", _checked_context(
        found.account, None, new=False, checks=found.permissions,
        error=(bling_reason(found.cause, now=True) or t(f"accounts.state_help.{found.account.state.value}"))
        if found.error else None, detail=found.error))


@router.post("/{account_id:int}/configuracoes", response_class=HTMLResponse, dependencies=CSRF)
async def save_settings(request: Request, account_id: int, service: ServiceDep) -> Response:
    """Validate and store the account's settings; on an error the page comes back with the
    values as typed and each error beside its field."""
    account = await _find(service, account_id)
    if account is None:
        return _not_found(request)
    fields = await _fields(request)
    form = SettingsForm(
        import_authorized=_checked(fields, "import_authorized"), import_nfce=_checked(fields, "import_nfce"),
        lookback_days=fields.get("lookback_days", "")[:12],
        poll_interval_s=fields.get("poll_interval_s", "")[:12],
        write_back=_checked(fields, "write_back"),
        write_back_situation=" ".join(fields.get("write_back_situation", "").split())[:SITUATION_MAX * 2])
    errors = form.errors
    days = _whole(form.lookback_days, LOOKBACK_DAYS, "lookback_days", "accounts.error.lookback", errors,
                  account.settings.initial_lookback_days)
    seconds = _whole(form.poll_interval_s, POLL_SECONDS, "poll_interval_s", "accounts.error.poll", errors,
                     account.settings.poll_interval_s)
    situation = account.settings.write_back_situation
    if form.write_back:
        situation = await _situation(service, account, form.write_back_situation, errors)
    if errors:
        return render(request, "accounts/detail.html", await _detail_context(service, account, form=form),
                      status_code=422)
    await service.store.update_account_settings(account.id, replace(
        account.settings, import_authorized=form.import_authorized, import_nfce=form.import_nfce,
        initial_lookback_days=days, poll_interval_s=seconds, write_back=form.write_back,
        write_back_situation=situation))
    flash(request, "accounts.flash.settings_saved", name=account.name)
    return _redirect(f"/contas/{account.id}#configuracoes")


async def _situation(service: Service, account: Account, wanted: str, errors: dict[str, str]) -> str | None:
    """The write-back's sales-order situation as Bling spells it (None: leave orders as they
    are), checked against Bling's list as `blingsync writeback set` does."""
    from blingsync.delivery.writeback import find_situation

    if account.generation is ApiGeneration.V2:
        errors["write_back"] = t("accounts.error.writeback_v2")
        return None
    if not wanted:
        return None
    if len(wanted) > SITUATION_MAX:
        errors["write_back_situation"] = t("accounts.error.situation_too_long", max=SITUATION_MAX)
        return None
    if wanted == account.settings.write_back_situation:
        return wanted  # already checked when it was chosen: no need to ask Bling again
    try:
        situations = await (await service.client(account)).order_situations()
    except (BlingError, CredentialsUnreadable, ServiceError) as exc:
        reason = bling_reason(exc, now=True) if isinstance(exc, BlingError) else None
        errors["write_back_situation"] = " ".join(
            filter(None, (t("accounts.error.situations_unavailable"), reason)))
        return None
    chosen = find_situation(situations, wanted)
    if chosen is None:
        known = ", ".join(f"“{s.nome}”" for s in situations) or t("accounts.settings.no_situations")
        errors["write_back_situation"] = t("accounts.error.situation_unknown", name=wanted, known=known)
        return None
    return chosen.nome


@router.post("/{account_id:int}/reconectar", response_class=HTMLResponse, dependencies=CSRF)
async def reconnect(request: Request, account_id: int, service: ServiceDep) -> Response:
    """A one-time link through which the brand authorises again (or moves a v2 key to OAuth)."""
    account = await _find(service, account_id)
    if account is None:
        return _not_found(request)
    try:
        link = await connect_link(service, account.name, reconnect=True)
    except AccountNotFound:  # removed meanwhile
        return _not_found(request)
    except ConnectUnavailable:
        return render(request, "accounts/link.html", {"name": account.name, "url": None, "account": account,
                                                      "reconnect": True}, status_code=503)
    return render(request, "accounts/link.html", {"name": account.name, "url": link.url, "account": account,
                                                  "expires_at": link.expires_at, "reconnect": True})


@router.post("/{account_id:int}/chave", response_class=HTMLResponse, dependencies=CSRF)
async def new_key(request: Request, account_id: int, service: ServiceDep, wakeups: WakeupsDep) -> Response:
    """A new API key for an account (a key revoked in Bling): checked like a new one, the old
    key kept when Bling refuses the new."""
    account = await _find(service, account_id)
    if account is None:
        return _not_found(request)
    api_key = "".join((await _fields(request)).get("api_key", "").split())
    if not api_key or len(api_key) > KEY_MAX:
        flash(request, "accounts.error.key_required", kind="error")
        return _redirect(f"/contas/{account.id}#conexao")
    try:
        added = await service.reconnect(account.name, api_key=api_key)
    except REFUSED as exc:
        return render(request, "accounts/checked.html", _checked_context(
            account, None, new=False, error=_refusal(exc, "accounts.error.old_key_kept"),
            detail=exc.user_message), status_code=422)
    except ServiceError as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, BlingError) else None
        return render(request, "accounts/checked.html", _checked_context(
            await service.store.account_by_id(account.id), None, new=False,
            error=bling_reason(cause, now=True) or t("accounts.error.check_unavailable"),
            detail=cause.user_message if cause is not None else None), status_code=502)
    if wakeups.schedules_syncs and not added.missing:
        wakeups.sync(account.id)
    return render(request, "accounts/checked.html", _checked_context(added.account, added, new=False))


@router.post("/{account_id:int}/quarentena", dependencies=CSRF)
async def retry_held(request: Request, account_id: int, service: ServiceDep) -> Response:
    """Make quarantined notes due now (one by its Bling id, or all): the next import retries them."""
    account = await _find(service, account_id)
    if account is None:
        return _not_found(request)
    fields = await _fields(request)
    wanted = fields.get("bling_id", "")
    if wanted == "todas":
        ids = [note.bling_id for note in (await service.store.held_notes(account.id, limit=10_000))[0]]
    elif wanted.isdigit() and len(wanted) <= 19:
        ids = [int(wanted)]
    else:
        ids = []
    released = sum([await service.store.release(account.id, bling_id) for bling_id in ids])
    if released:
        flash(request, "accounts.flash.released", count=released)
    else:
        flash(request, "accounts.flash.release_none", kind="error")
    return _redirect(f"/contas/{account.id}#quarentena")


@router.get("/{account_id:int}/remover", response_class=HTMLResponse)
async def remove_confirm(request: Request, account_id: int, service: ServiceDep) -> Response:
    account = await _find(service, account_id)
    if account is None:
        return _not_found(request)
    totals = await service.store.order_totals(account.id)
    return render(request, "accounts/remove.html", {"account": account, "totals": totals, "error": None})


@router.post("/{account_id:int}/remover", response_class=HTMLResponse, dependencies=CSRF)
async def remove(request: Request, account_id: int, service: ServiceDep) -> Response:
    """Remove the account once its name was typed back: the confirmation step of a deletion
    that takes the account's orders, events and history with it."""
    account = await _find(service, account_id)
    if account is None:
        return _not_found(request)
    typed = " ".join((await _fields(request)).get("confirm", "").split())
    if typed != account.name:
        totals = await service.store.order_totals(account.id)
        return render(request, "accounts/remove.html", {
            "account": account, "totals": totals, "error": t("accounts.remove.mismatch")}, status_code=422)
    await service.remove(account.id)
    flash(request, "accounts.flash.removed", name=account.name)
    return _redirect("/contas")


__all__ = [
    "PAGE_SIZE",
    "Badge",
    "CheckLine",
    "checklist",
    "router",
    "start_of_today",
    "state_badge",
]
