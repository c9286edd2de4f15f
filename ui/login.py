"""``/login`` and ``/logout``: the dashboard's sign-in pages (SPEC §7, §8).

Thin handlers: they read the form, check the sign-in form's CSRF token, call
:class:`~server.security.sessions.SignIn` and render the answer. Both pages are public
routes. The cookies they set are described in ``server.security.sessions`` (session)
and ``server.security.csrf`` (the sign-in form's token); the page statuses:

* ``GET /login`` — 200, the form (``next`` = where to go after signing in);
* ``POST /login`` — 303 to ``next`` (default ``/``) with a new session cookie; or the
  page again with a message: 400 (username or password missing), 401 (wrong username
  or password — the same message whichever it was), 403 (the form's CSRF token is
  missing or stale), 429 with ``Retry-After`` (rate limit, or the username is locked);
* ``POST /logout`` — 303 to ``/login``; the session is deleted on the server and the
  cookie cleared. With a live session the form must carry its CSRF token (403 without).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from litestar import MediaType, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from server.config import Settings
from server.ratelimit import TooManyRequests
from server.security import csrf
from server.security.permissions import permission
from server.security.sessions import COOKIE, Lock, SignIn, is_https, remember, request_session
from ui.forms import form_text

#: ``next`` must be a path on this server: one leading slash (``//host`` is another
#: site), no backslash, no control characters.
_LOCAL_PATH = re.compile(r"/(?![/\\])[^\\\x00-\x1f\x7f]{0,2000}")
LOGIN_PAGE = "pages/login.html"


def local_path(value: str | None) -> str:
    """``value`` when it is a path on this server, else ``/`` (no open redirects)."""
    if value and _LOCAL_PATH.fullmatch(value):
        return value
    return "/"


@get("/login", opt=permission("public"), include_in_schema=False)
async def login_page(
    request: Request[Any, Any, Any],
    settings: NamedDependency[Settings],
    sign_in: NamedDependency[SignIn],
    login_csrf: NamedDependency[csrf.LoginCsrf],
    next_url: Annotated[str | None, QueryParameter(name="next", max_length=2000)] = None,
) -> Template:
    """The sign-in form (saying who is signed in already, if someone is)."""
    token = request.cookies.get(COOKIE)
    session = await sign_in.sessions.resolve(token) if token else None
    if session is not None:
        remember(request, session)
    return _page(request, settings, login_csrf, next_url=local_path(next_url))


@post("/login", opt=permission("public"), include_in_schema=False, status_code=303)
async def login(
    request: Request[Any, Any, Any],
    settings: NamedDependency[Settings],
    sign_in: NamedDependency[SignIn],
    login_csrf: NamedDependency[csrf.LoginCsrf],
) -> Response[Any]:
    """Check the form; on success a new session and a redirect, else the page again."""
    form = await request.form()
    username = form_text(form, "username", 200)
    password = form_text(form, "password", 4096)
    next_url = local_path(form_text(form, "next", 2000))
    page: dict[str, Any] = {"username": username, "next_url": next_url}
    if not login_csrf.verify(
        request.cookies.get(csrf.LOGIN_COOKIE), form_text(form, csrf.FIELD, 200)
    ):
        message = (
            "This sign-in form has expired or did not come from this server. "
            "Please enter your password again."
        )
        return _page(request, settings, login_csrf, message=message, status=403, **page)
    if not username or not password:
        message = "Enter your username and password."
        return _page(request, settings, login_csrf, message=message, status=400, **page)
    address = request.client.host if request.client else None
    try:
        outcome = await sign_in.attempt(username, password, remote_addr=address)
    except TooManyRequests as error:
        message = f"Too many sign-in attempts: {error.message}."
        return _page(
            request,
            settings,
            login_csrf,
            message=message,
            status=429,
            headers={"Retry-After": str(error.retry_after)},
            **page,
        )
    if outcome.new_session is None:
        if outcome.lock is not None:
            return _page(
                request,
                settings,
                login_csrf,
                message=_locked_message(username, outcome.lock),
                status=429,
                headers={"Retry-After": str(outcome.lock.seconds_left())},
                **page,
            )
        message = "Incorrect username or password."
        return _page(request, settings, login_csrf, message=message, status=401, **page)
    previous = request.cookies.get(COOKIE)
    if previous:
        await sign_in.sessions.end(previous)  # the old session must not live on
    secure = is_https(request, settings.server.public_url)
    response: Response[Any] = Redirect(next_url, status_code=303)
    response.set_cookie(
        Cookie(
            key=COOKIE,
            value=outcome.new_session.token,
            max_age=sign_in.sessions.cookie_max_age,
            path="/",
            httponly=True,
            samesite="lax",
            secure=secure,
        )
    )
    response.delete_cookie(csrf.LOGIN_COOKIE, path="/login")
    return response


@post("/logout", opt=permission("public"), include_in_schema=False, status_code=303)
async def logout(
    request: Request[Any, Any, Any],
    settings: NamedDependency[Settings],
    sign_in: NamedDependency[SignIn],
) -> Response[Any]:
    """End the session on the server and clear the cookie."""
    token = request.cookies.get(COOKIE)
    session = await sign_in.sessions.resolve(token) if token else None
    if session is not None:
        await csrf.require_session_token(request, session.csrf_token)
        await sign_in.sessions.end(token or "")
        await sign_in.audit.record(
            "logout",
            actor=session.actor.name,
            target_type="user",
            target_id=session.actor.name,
            remote_addr=request.client.host if request.client else None,
        )
    response: Response[Any] = Redirect("/login", status_code=303)
    response.set_cookie(
        Cookie(
            key=COOKIE,
            value="",
            max_age=0,
            expires=0,
            path="/",
            httponly=True,
            samesite="lax",
            secure=is_https(request, settings.server.public_url),
        )
    )
    return response


SIGN_IN_HANDLERS = [login_page, login, logout]


def _page(
    request: Request[Any, Any, Any],
    settings: Settings,
    login_csrf: csrf.LoginCsrf,
    *,
    message: str = "",
    status: int = 200,
    headers: dict[str, str] | None = None,
    username: str = "",
    next_url: str = "/",
) -> Template:
    """The sign-in page, with the form token of this browser's nonce (set if missing)."""
    nonce = request.cookies.get(csrf.LOGIN_COOKIE)
    cookies = []
    if not login_csrf.valid_nonce(nonce):
        nonce = csrf.new_token()
        cookies.append(
            Cookie(
                key=csrf.LOGIN_COOKIE,
                value=nonce,
                path="/login",
                httponly=True,
                samesite="strict",
                secure=is_https(request, settings.server.public_url),
            )
        )
    assert nonce is not None
    current = request_session(request)
    return Template(
        LOGIN_PAGE,
        context={
            "form_token": login_csrf.token_for(nonce),
            "message": message,
            "username": username,
            "next_url": "" if next_url == "/" else next_url,
            "current": current.actor.name if current else None,
        },
        status_code=status,
        headers=headers,
        cookies=cookies,
        media_type=MediaType.HTML,
    )


def _locked_message(username: str, lock: Lock) -> str:
    minutes = max(1, round(lock.seconds_left() / 60))
    return (
        f"Too many failed sign-ins for {username!r}: this username is locked for "
        f"{minutes} more minute{'s' if minutes != 1 else ''} "
        f"(until {lock.until.strftime('%H:%M')} UTC). Try again later, or ask an "
        "administrator."
    )
