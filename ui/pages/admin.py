"""``/admin``: users, API keys and secrets (admin only, like their API routes).

Thin handlers over the services the REST API calls — :class:`UserService`,
:class:`ApiKeyService`, :class:`SecretsVault` — which also write the audit rows
(``user.created``, ``api_key.revoked``, ``secret.deleted``…), so a change made here is
recorded exactly as one made through the API.

* Users: list (paged), create (username, password, role, e-mail), and per user: change
  the role, disable / enable, set a new password. Users are never deleted.
* API keys: list (prefix only, paged), create — the key is shown **once**, on the page
  the POST answers (never in a URL, never stored; ``Cache-Control: no-store``) — and
  revoke (after a confirmation).
* Secrets: names and times only, never a value; set (create or replace) and delete
  (after a confirmation). A value typed in is never shown again, not even when the form
  is refused.

A form the service refuses is shown again with the message next to the field (422) and
what was typed kept — passwords and secret values excepted.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import PathParameter

from server.errors import Conflict, FlowyardError, InvalidInput
from server.identity import SEED_ROLES, Actor
from server.secrets.vault import NAME_RULE, SecretsVault
from server.security.apikeys import ApiKeyService
from server.security.permissions import permission
from server.security.users import UserService
from ui.forms import form_text
from ui.paging import PAGE_SIZE, Offset
from ui.templating import after_post, page

Id = Annotated[str, PathParameter(max_length=64)]
SecretName = Annotated[str, PathParameter(max_length=200)]
#: Longest text kept from an input (the services check the real limits).
INPUT_LIMIT = 70_000


def form_errors(error: FlowyardError, fields: tuple[str, ...], default: str) -> dict[str, str]:
    """The messages of a refused form, keyed by the input they belong to.

    A problem's pointer names the input (``/username``; ``/path/name`` for a secret's
    name); an error without details (a duplicate username) goes to ``default``.
    """
    messages: dict[str, list[str]] = {}
    for problem in error.details:
        name = problem.path.rsplit("/", 1)[-1]
        messages.setdefault(name if name in fields else default, []).append(problem.message)
    if not error.details:
        messages.setdefault(default, []).append(error.message)
    return {name: " · ".join(texts) for name, texts in messages.items()}


@get("/admin", opt=permission("admin"), include_in_schema=False)
async def admin_page(
    request: Request[Any, Any, Any],
    users: NamedDependency[UserService],
    api_keys: NamedDependency[ApiKeyService],
    vault: NamedDependency[SecretsVault],
    users_offset: Offset = 0,
    keys_offset: Offset = 0,
) -> Response[Any]:
    """Users, API keys and secrets."""
    return await _page(
        request, users, api_keys, vault, users_offset=users_offset, keys_offset=keys_offset
    )


@post("/admin/users", opt=permission("admin"), status_code=303, include_in_schema=False)
async def create_user(
    request: Request[Any, Any, Any],
    users: NamedDependency[UserService],
    api_keys: NamedDependency[ApiKeyService],
    vault: NamedDependency[SecretsVault],
    actor: NamedDependency[Actor],
) -> Response[Any]:
    form = await request.form()
    typed = {name: form_text(form, name, INPUT_LIMIT) for name in ("username", "role", "email")}
    try:
        await users.create(
            typed["username"].strip(),
            form_text(form, "password", INPUT_LIMIT),
            typed["role"],
            typed["email"].strip() or None,
            by=actor.name,
            remote_addr=_client(request),
        )
    except (InvalidInput, Conflict) as error:
        fields = ("username", "password", "role", "email")
        errors = {"user": form_errors(error, fields, "username")}
        return await _page(request, users, api_keys, vault, errors=errors, typed={"user": typed})
    return after_post("/admin", "user-created")


#: The changes of one user the page offers (the last part of each form's action URL).
UserChange = Literal["role", "disable", "enable", "password"]


@post(
    "/admin/users/{user_id:str}/{change:str}",
    opt=permission("admin"),
    status_code=303,
    include_in_schema=False,
)
async def change_user(
    request: Request[Any, Any, Any],
    user_id: Id,
    change: Annotated[UserChange, PathParameter()],
    users: NamedDependency[UserService],
    api_keys: NamedDependency[ApiKeyService],
    vault: NamedDependency[SecretsVault],
    actor: NamedDependency[Actor],
) -> Response[Any]:
    """One change of one user (role, disable, enable, password), through the service."""
    form = await request.form()
    changes: dict[str, dict[str, Any]] = {
        "role": {"role": form_text(form, "role", INPUT_LIMIT) or None},
        "disable": {"disabled": True},
        "enable": {"disabled": False},
        "password": {"password": form_text(form, "password", INPUT_LIMIT)},
    }
    return await _change(request, user_id, users, api_keys, vault, actor, **changes[change])


async def _change(
    request: Request[Any, Any, Any],
    user_id: str,
    users: UserService,
    api_keys: ApiKeyService,
    vault: SecretsVault,
    actor: Actor,
    **change: Any,
) -> Response[Any]:
    try:
        await users.update(user_id, **change, by=actor.name, remote_addr=_client(request))
    except (InvalidInput, Conflict) as error:
        field = next(iter(change))
        errors = {f"user:{user_id}": form_errors(error, ("role", "password"), field)}
        return await _page(request, users, api_keys, vault, errors=errors)
    return after_post("/admin", "user-updated")


@post("/admin/api-keys", opt=permission("admin"), status_code=200, include_in_schema=False)
async def create_key(
    request: Request[Any, Any, Any],
    users: NamedDependency[UserService],
    api_keys: NamedDependency[ApiKeyService],
    vault: NamedDependency[SecretsVault],
    actor: NamedDependency[Actor],
) -> Response[Any]:
    """Make a key and show it, this once, on the page this POST answers."""
    form = await request.form()
    typed = {name: form_text(form, name, INPUT_LIMIT) for name in ("name", "role")}
    try:
        created = await api_keys.create(
            typed["name"].strip(), typed["role"], by=actor.name, remote_addr=_client(request)
        )
    except InvalidInput as error:
        errors = {"key": form_errors(error, ("name", "role"), "name")}
        return await _page(request, users, api_keys, vault, errors=errors, typed={"key": typed})
    response = page(request, "pages/admin_key.html", created=created)
    response.headers["Cache-Control"] = "no-store"
    return response


@post(
    "/admin/api-keys/{key_id:str}/revoke",
    opt=permission("admin"),
    status_code=303,
    include_in_schema=False,
)
async def revoke_key(
    request: Request[Any, Any, Any],
    key_id: Id,
    api_keys: NamedDependency[ApiKeyService],
    actor: NamedDependency[Actor],
) -> Response[Any]:
    await api_keys.revoke(key_id, by=actor.name, remote_addr=_client(request))
    return after_post("/admin", "key-revoked")


@post("/admin/secrets", opt=permission("admin"), status_code=303, include_in_schema=False)
async def put_secret(
    request: Request[Any, Any, Any],
    users: NamedDependency[UserService],
    api_keys: NamedDependency[ApiKeyService],
    vault: NamedDependency[SecretsVault],
    actor: NamedDependency[Actor],
) -> Response[Any]:
    """Create or replace a secret. Its value is never shown again, even on an error."""
    form = await request.form()
    name = form_text(form, "name", INPUT_LIMIT).strip()[:200]
    try:
        await vault.put(name, form_text(form, "value", INPUT_LIMIT), actor.name)
    except InvalidInput as error:
        errors = {"secret": form_errors(error, ("name", "value"), "name")}
        typed = {"secret": {"name": name}}
        return await _page(request, users, api_keys, vault, errors=errors, typed=typed)
    return after_post("/admin", "secret-saved")


@post(
    "/admin/secrets/{name:str}/delete",
    opt=permission("admin"),
    status_code=303,
    include_in_schema=False,
)
async def delete_secret(
    name: SecretName,
    vault: NamedDependency[SecretsVault],
    actor: NamedDependency[Actor],
) -> Response[Any]:
    await vault.delete(name, actor.name)
    return after_post("/admin", "secret-deleted")


async def _page(
    request: Request[Any, Any, Any],
    users: UserService,
    api_keys: ApiKeyService,
    vault: SecretsVault,
    *,
    errors: dict[str, dict[str, str]] | None = None,
    typed: dict[str, dict[str, str]] | None = None,
    users_offset: int = 0,
    keys_offset: int = 0,
) -> Response[Any]:
    user_list = await users.list(limit=PAGE_SIZE, offset=users_offset)
    key_list = await api_keys.list(limit=PAGE_SIZE, offset=keys_offset)
    return page(
        request,
        "pages/admin.html",
        status=422 if errors else 200,
        users=user_list,
        keys=key_list,
        secrets=await vault.catalog(),
        roles=SEED_ROLES,
        errors=errors or {},
        typed=typed or {},
        limit=PAGE_SIZE,
        secret_rule=NAME_RULE,
    )


def _client(request: Request[Any, Any, Any]) -> str | None:
    return request.client.host if request.client else None


HANDLERS = [
    admin_page,
    create_user,
    change_user,
    create_key,
    revoke_key,
    put_secret,
    delete_secret,
]
