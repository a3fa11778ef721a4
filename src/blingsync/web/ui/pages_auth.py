"""Sign-in (`/entrar`), sign-out (`/sair`) and the root (`/` → `/contas`).

The sign-in answers the same "usuário ou senha incorretos" for an unknown user, a wrong password
and a disabled user (and takes the same time: `UserStore.authenticate`), so the form does not
tell who has an account. See `auth` for the session, the throttle and the CSRF tokens."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from blingsync.web.deps import service as service_of
from blingsync.web.ui import auth
from blingsync.web.ui.auth import (
    HOME,
    SIGNIN_COOKIE,
    SIGNIN_PATH,
    Session,
    check_origin,
    clear_session_cookie,
    new_signin_token,
    safe_next,
    set_session_cookie,
    signin_address,
    signin_limits,
    tokens_match,
)
from blingsync.web.ui.render import UiError, apply_headers, render

router: APIRouter = APIRouter(include_in_schema=False)

_FIELD_LIMIT = 1024 * 4


def _signin_page(request: Request, *, next_path: str, username: str = "", error: str | None = None,
                 notice: str | None = None, status_code: int = 200,
                 error_params: dict[str, object] | None = None) -> Response:
    """The form, with a fresh sign-in CSRF token in the form and in its cookie."""
    token = new_signin_token()
    response = render(request, "auth/signin.html", {
        "next_path": next_path, "username": username, "error": error, "error_params": error_params or {},
        "notice": notice, "signin_token": token,
    }, status_code=status_code)
    response.set_cookie(SIGNIN_COOKIE, token, path=SIGNIN_PATH, httponly=True, samesite="lax",
                        secure=auth.secure_cookies(service_of(request)), max_age=2 * 3600)
    return response


@router.get("/")
async def root() -> Response:
    return apply_headers(RedirectResponse(HOME, status_code=303))


@router.get(SIGNIN_PATH)
async def signin_form(request: Request, session: Session, next: str | None = None,
                      saiu: str | None = None) -> Response:
    target = safe_next(next)
    if session is not None:  # already signed in: straight on
        return apply_headers(RedirectResponse(target, status_code=303))
    notice = "auth.signout.done" if saiu == "1" else ("auth.signin.required" if next else None)
    return _signin_page(request, next_path=target, notice=notice)


@router.post(SIGNIN_PATH)
async def signin(
    request: Request,
    username: Annotated[str, Form(max_length=_FIELD_LIMIT)] = "",
    password: Annotated[str, Form(max_length=_FIELD_LIMIT)] = "",
    csrf_token: Annotated[str, Form(max_length=_FIELD_LIMIT)] = "",
    next: Annotated[str, Form(max_length=_FIELD_LIMIT)] = "",
) -> Response:
    service = service_of(request)
    target = safe_next(next)
    username = username.strip()
    try:
        check_origin(request)
    except UiError:
        return _signin_page(request, next_path=target, username=username, error="errors.csrf.origin",
                            status_code=403)
    if not tokens_match(csrf_token, request.cookies.get(SIGNIN_COOKIE, "")):
        return _signin_page(request, next_path=target, username=username, error="auth.signin.form_expired",
                            status_code=403)
    if not username or not password:
        return _signin_page(request, next_path=target, username=username, error="auth.signin.missing",
                            status_code=400)
    address = signin_address(request)
    # Counted as a failure before the password is checked (a success clears it): see UserStore.begin_signin.
    wait = await service.store.begin_signin(username, address, limits=signin_limits(request))
    if wait is not None:
        minutes = max(1, math.ceil(wait.total_seconds() / 60))
        page = _signin_page(request, next_path=target, username=username, error="auth.signin.throttled",
                            error_params={"minutes": minutes}, status_code=429)
        page.headers["Retry-After"] = str(max(1, math.ceil(wait.total_seconds())))
        return page
    user = await service.store.authenticate(username, password)
    if user is None:
        return _signin_page(request, next_path=target, username=username, error="auth.signin.invalid",
                            status_code=401)
    await service.store.signin_succeeded(username, address)
    old = request.cookies.get(auth.SESSION_COOKIE)
    if old:  # session fixation: whatever token the browser had is dropped, never reused
        await service.store.end_ui_session(old)
    _, token = await service.store.start_ui_session(user.id)
    response = apply_headers(RedirectResponse(target, status_code=303))
    set_session_cookie(response, service, token)
    response.delete_cookie(SIGNIN_COOKIE, path=SIGNIN_PATH, httponly=True, samesite="lax",
                           secure=auth.secure_cookies(service))
    return response


@router.post("/sair", dependencies=[Depends(auth.csrf_protect)])
async def signout(request: Request) -> Response:
    service = service_of(request)
    token = request.cookies.get(auth.SESSION_COOKIE)
    if token:
        await service.store.end_ui_session(token)
    request.state.ui_session = None  # nothing left to keep messages for
    response = apply_headers(RedirectResponse(f"{SIGNIN_PATH}?saiu=1", status_code=303))
    clear_session_cookie(response, service)
    return response
