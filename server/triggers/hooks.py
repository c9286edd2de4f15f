"""Webhook triggers: ``POST /api/v1/hooks/{path}`` starts the workflow that owns the path.

A hook request is handled in this order, so a caller learns nothing it should not:

1. **rate limit** per client address and per hook path (429 with ``Retry-After``);
2. **the path** must belong to a live webhook trigger (else 404);
3. **the signature**, when the trigger has a ``secret``: Standard Webhooks
   (``server.signing.verify`` — constant-time, ±5 minutes, any of several secrets for
   rotation); a bad or stale signature is a 401;
4. **the input**: without ``input_mapping`` a JSON object body is the input (over the
   trigger's static ``input``); with it, each input name takes the value at its path —
   ``body``/``body.<path>``, ``headers.<name>``, ``query.<name>`` — and text from
   headers and the query is converted to the variable's declared type (integer,
   number, boolean) when it reads as one;
5. **the start**, exactly once per delivery: the execution's idempotency key is derived
   from the ``webhook-id`` header (or else the ``Idempotency-Key`` header), so a
   redelivered message finds the execution the first delivery started — even two
   deliveries racing on two processes — and is answered as a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from processors.api import has_nul
from server.callbacks import parse_body
from server.definitions.model import parse_trigger
from server.engine.service import ExecutionService, StartOptions
from server.errors import Conflict, ExpressionError, InvalidInput, NotFound, Problem, Unavailable
from server.expressions.templates import find_references, parse_path, render, resolve_path
from server.ratelimit import RateLimiter
from server.signing import verify
from server.store.models import utcnow
from server.triggers.fires import start_key
from server.triggers.live import LiveHook, read_live

log = logging.getLogger("flowyard.triggers")

#: The values of stored secrets by name (absent names left out): ``SecretsVault.values``.
SecretLookup = Callable[[Collection[str]], Awaitable[Mapping[str, str]]]
Outcome = Literal["accepted", "duplicate"]
UNKNOWN = "no webhook trigger listens at this path"
#: Above this many bytes, signature checks and JSON parsing run off the event loop.
OFF_LOOP_BYTES = 64 * 1024


@dataclass(frozen=True)
class HookRequest:
    """What the route hands over (``headers`` with lower-case names; ``query`` with every
    value of each parameter)."""

    path: str
    headers: Mapping[str, str]
    query: Mapping[str, list[str]]
    body: bytes
    client: str
    idempotency_key: str | None = None


@dataclass(frozen=True)
class HookResult:
    status: Outcome
    execution_id: str
    workflow_id: str
    trigger_id: str

    def as_dict(self) -> dict[str, str]:
        return {
            "status": self.status,
            "execution_id": self.execution_id,
            "workflow_id": self.workflow_id,
            "trigger_id": self.trigger_id,
        }


class Hooks:
    """The live webhook triggers of this process, and what a request to one does."""

    def __init__(
        self,
        executions: ExecutionService,
        limiter: RateLimiter,
        *,
        secrets: SecretLookup | None = None,
    ) -> None:
        self.executions = executions
        self.limiter = limiter
        self.secrets = secrets
        self.live: dict[str, LiveHook] = {}
        #: set by the sync: re-reads the registry when it changed (called on a miss)
        self.refresh: Callable[[], Awaitable[bool]] | None = None

    def update(self, hooks: Mapping[str, LiveHook]) -> None:
        self.live = dict(hooks)

    async def find(self, path: str) -> LiveHook | None:
        """The live hook at ``path``; on a miss, look again if the registry changed
        (another process may have just published it)."""
        hook = self.live.get(path)
        if hook is None and self.refresh is not None and await self.refresh():
            hook = self.live.get(path)
        return hook

    async def receive(self, request: HookRequest) -> HookResult:
        """Start the hook's workflow for this request (see the module docstring)."""
        self.limiter.check(f"client:{request.client}", "webhook requests from this address")
        self.limiter.check(f"path:{request.path}", "webhook requests to this hook")
        hook = await self.find(request.path)
        if hook is None:
            raise NotFound(UNKNOWN)
        trigger = hook.trigger
        keys = await self._secrets(hook)
        size = len(request.body)
        if keys:
            message_id: str | None = await _off_loop(
                size, verify, keys, request.headers, request.body, utcnow()
            )
        else:
            message_id = request.headers.get("webhook-id") or None
        body = await _off_loop(size, parse_body, request.body, request.headers.get("content-type"))
        data = hook_input(hook, body, request.headers, request.query)
        if has_nul(data):  # PostgreSQL's JSONB cannot store it
            raise InvalidInput("the webhook contains a NUL character (\\u0000), which is refused")
        delivery = message_id or request.idempotency_key
        options = StartOptions(
            input=data,
            version=hook.version,
            triggered_by=f"webhook:{trigger.id}",
            idempotency_key=(
                start_key("hook", hook.workflow_id, trigger.id, delivery) if delivery else None
            ),
        )
        execution_id, created = await self.executions.start(hook.workflow_id, options)
        log.info(
            "webhook trigger fired" if created else "webhook delivery repeated",
            extra={
                "action": "triggers.hook_fired" if created else "triggers.hook_duplicate",
                "workflow_id": hook.workflow_id,
                "trigger_id": trigger.id,
                "execution_id": execution_id,
                "signed": bool(keys),
            },
        )
        status: Outcome = "accepted" if created else "duplicate"
        return HookResult(status, execution_id, hook.workflow_id, trigger.id)

    async def _secrets(self, hook: LiveHook) -> list[str]:
        """The trigger's secrets with ``${secrets.NAME}`` resolved (503 when one is not
        set: the sender's signature is not what is wrong)."""
        written = written_secrets(hook.trigger.secret)
        names = {
            str(ref.path[1])
            for text in written
            for ref in find_references(text)
            if ref.root == "secrets" and len(ref.path) == 2
        }
        values: Mapping[str, str] = {}
        if names and self.secrets is not None:
            values = await self.secrets(sorted(names))
        missing = sorted(names - set(values))
        if missing:
            log.warning(
                "webhook secret not set",
                extra={
                    "action": "triggers.hook_secret_missing",
                    "workflow_id": hook.workflow_id,
                    "trigger_id": hook.trigger.id,
                    "secret": missing[0],
                },
            )
            raise Unavailable(
                "this hook's signing secret is not set on the server; its operator must "
                "store it (PUT /api/v1/secrets/<name>)"
            )
        resolved = []
        for text in written:
            try:
                resolved.append(str(render(text, {"secrets": dict(values)})))
            except ExpressionError:
                raise Unavailable("this hook's signing secret cannot be resolved") from None
        return [key for key in resolved if key]


def hook_input(
    hook: LiveHook, body: Any, headers: Mapping[str, str], query: Mapping[str, list[str]]
) -> dict[str, Any]:
    """The execution input for one request (see the module docstring)."""
    data = dict(hook.trigger.input)
    mapping = hook.trigger.input_mapping
    if mapping is None:
        if isinstance(body, dict):
            data.update(body)
        return data
    sources: dict[str, Any] = {
        "body": body,
        "headers": dict(headers),
        "query": {
            name: values[0] if len(values) == 1 else values for name, values in query.items()
        },
    }
    for name, source in mapping.items():
        found, value = pick(sources, source)
        if found:
            from_text = not source.startswith("body")
            data[name] = coerce(value, hook.variables.get(name)) if from_text else value
    return data


def pick(sources: Mapping[str, Any], source: str) -> tuple[bool, Any]:
    """The value at ``source`` (``body.order.id``, ``headers.x-source``, ``query.page``);
    ``(False, None)`` when the request does not have it."""
    try:
        path = parse_path(source)
    except ExpressionError:
        return False, None
    if path[0] == "headers" and len(path) == 2:
        path = ("headers", str(path[1]).lower())
    try:
        return True, resolve_path(sources, path, source)
    except ExpressionError:
        return False, None


def coerce(value: Any, declared: str | None) -> Any:
    """Text from a header or the query as the declared type, when it reads as one."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if declared == "integer":
        try:
            return int(text)
        except ValueError:
            return value
    if declared == "number":
        try:
            number = float(text)
        except ValueError:
            return value
        return number if number == number and abs(number) != float("inf") else value
    if declared == "boolean" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    return value


async def unique_hook_paths(session: AsyncSession, document: Mapping[str, Any]) -> None:
    """A registry guard: refuse (409) to make live a webhook path that another workflow's
    live version already uses, naming that workflow."""
    raw = document.get("triggers")
    wanted = {
        trigger.path: index
        for index, trigger in enumerate(
            parse_trigger(item) if isinstance(item, dict) else None for item in raw or ()
        )
        if trigger is not None and trigger.type == "webhook" and trigger.enabled and trigger.path
    }
    if not wanted:
        return
    problems: list[Problem] = []
    holders: list[str] = []
    for version in await read_live(session):
        if version.workflow_id == document.get("id"):
            continue
        for trigger in version.triggers:
            if trigger.type == "webhook" and trigger.enabled and trigger.path in wanted:
                problems.append(
                    Problem(
                        f"/triggers/{wanted[trigger.path]}/path",
                        f"webhook path {trigger.path!r} is used by workflow "
                        f"{version.workflow_id!r} (trigger {trigger.id!r}); choose another "
                        "path, or remove or deactivate it there first",
                    )
                )
                holders.append(version.workflow_id)
    if problems:
        raise Conflict(f"webhook path already in use by workflow {holders[0]!r}", details=problems)


async def _off_loop(size: int, function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)``, in a thread when the body is large enough to stall the loop."""
    if size > OFF_LOOP_BYTES:
        return await asyncio.to_thread(function, *args)
    return function(*args)


def written_secrets(raw: str | Sequence[str] | None) -> list[str]:
    """A trigger's ``secret`` as a list (a string, a list for rotation, or none)."""
    return [raw] if isinstance(raw, str) else list(raw or ())
