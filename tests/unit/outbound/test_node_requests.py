"""What ``api`` and ``webhook`` nodes make of a rendered config, without any network.

Request building (auth, headers, bodies, expected statuses) and the receive side of a
webhook node (the wait it asks for, and how it resumes) — the parts that need no peer.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from processors.api import ApiConfigError, StatusMatcher, auth_header, build_request
from processors.runtime import Completed, Failed, NodeContext, Waiting, WaitResolution
from processors.webhook import WebhookProcessor

NOW = datetime(2030, 1, 15, 8, 30, tzinfo=UTC)
KEY = "exec-1:call"


def context(logs: list[str]) -> NodeContext:
    async def evaluate(*_: Any, **__: Any) -> Any:
        raise AssertionError("webhook nodes evaluate no expressions")

    return NodeContext(
        execution_id="exec-1",
        workflow_id="wf",
        node_id="call",
        node_name="Call",
        attempt=1,
        idempotency_key=KEY,
        scope={},
        outgoing_edges=(),
        evaluate=evaluate,
        log=logs.append,
        now=lambda: NOW,
    )


@pytest.mark.parametrize(
    ("expected", "accepted", "refused"),
    [
        (None, [200, 204, 299], [199, 300, 404, 500]),
        (404, [404], [200, 405]),
        ("4xx", [400, 404, 499], [200, 500]),
        ("3XX", [301], [200]),
        ([200, "404"], [200, 404], [201, 500]),
        (["2xx", 503], [201, 503], [500]),
    ],
)
def test_expected_status_patterns(expected: Any, accepted: list[int], refused: list[int]) -> None:
    matcher = StatusMatcher.parse(expected)
    assert all(matcher.accepts(status) for status in accepted)
    assert not any(matcher.accepts(status) for status in refused)


@pytest.mark.parametrize("expected", [[], 99, 600, "2xy", "6xx", True, [200, {}], 2.5])
def test_bad_expected_status_is_refused(expected: Any) -> None:
    with pytest.raises(ApiConfigError, match="expected_status"):
        StatusMatcher.parse(expected)


def test_auth_forms() -> None:
    assert auth_header({"type": "bearer", "token": "t"}) == ("Authorization", "Bearer t")
    basic = base64.b64encode(b"u:p").decode()
    assert auth_header({"type": "basic", "username": "u", "password": "p"}) == (
        "Authorization",
        f"Basic {basic}",
    )
    assert auth_header({"type": "header", "name": "X-Key", "value": 5}) == ("X-Key", "5")
    assert auth_header({"type": "header", "header": "X-Key", "value": "v"}) == ("X-Key", "v")
    assert auth_header("Token abc") == ("Authorization", "Token abc")


@pytest.mark.parametrize(
    "auth",
    [
        {"type": "bearer"},
        {"type": "bearer", "token": ""},
        {"type": "basic", "password": "p"},
        {"type": "header", "value": "v"},
        {"type": "oauth", "token": "t"},
        {"type": "bearer", "token": "t\r\nX-Evil: 1"},
        ["bearer"],
    ],
)
def test_unusable_auth_fails_without_showing_values(auth: Any) -> None:
    with pytest.raises(ApiConfigError) as caught:
        auth_header(auth)
    assert "X-Evil" not in str(caught.value)


def test_a_rendered_config_becomes_a_request() -> None:
    request = build_request(
        {
            "url": " http://127.0.0.1/x ",
            "method": "post",
            "headers": {"X-N": 3, "X-B": False, "X-None": None},
            "query": {"a": [1, "b"], "c": None},
            "json": {"n": 1},
            "auth": {"type": "header", "name": "X-Key", "value": "k"},
            "timeout": "2s",
        },
        KEY,
    )
    assert request.method == "POST"
    assert request.url == "http://127.0.0.1/x"
    assert request.headers == {
        "X-N": "3",
        "X-B": "false",
        "X-Key": "k",
        "Content-Type": "application/json",
        "Idempotency-Key": KEY,
    }
    assert request.params == {"a": ["1", "b"]}
    assert request.content == b'{"n": 1}'
    assert request.timeout == 2
    assert request.sensitive_headers == ("X-Key",)
    assert request.follow_redirects is True


def test_a_non_text_body_is_sent_as_json_and_user_headers_win() -> None:
    request = build_request(
        {
            "url": "http://h/",
            "body": [1, 2],
            "headers": {"content-type": "application/x-ndjson", "IDEMPOTENCY-KEY": "own"},
        },
        KEY,
    )
    assert request.content == b"[1, 2]"
    assert request.headers == {"content-type": "application/x-ndjson", "IDEMPOTENCY-KEY": "own"}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"url": None}, "'url'"),
        ({"url": "http://h/", "method": "TRACE"}, "'method'"),
        ({"url": "http://h/", "headers": ["a"]}, "'headers' must be an object"),
        ({"url": "http://h/", "headers": {"Bad Name": "v"}}, "not a valid header name"),
        ({"url": "http://h/", "headers": {"X": {"nested": 1}}}, "'headers.X'"),
        ({"url": "http://h/", "json": {"n": float("nan")}}, "cannot be sent as JSON"),
        ({"url": "http://h/", "json": {}, "body": "x"}, "not both"),
        ({"url": "http://h/", "timeout": 0}, "more than zero"),
        ({"url": "http://h/", "response_type": "xml"}, "'response_type'"),
        ({"url": "http://h/", "follow_redirects": "yes"}, "'follow_redirects'"),
    ],
)
def test_unusable_configs_say_which_key(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ApiConfigError, match=message):
        build_request(config, KEY)


async def test_receive_waits_with_an_unguessable_token_and_logs_the_address() -> None:
    logs: list[str] = []
    webhook = WebhookProcessor()
    config = {"mode": "receive", "secret": ["s1", "s2"], "timeout": "10m"}
    first = await webhook.run(config, context(logs))
    second = await webhook.run(config, context([]))
    assert isinstance(first, Waiting)
    assert isinstance(second, Waiting)
    assert first.kind == "callback"
    assert first.until == NOW + timedelta(minutes=10)
    assert first.token is not None
    assert second.token is not None
    assert first.token != second.token
    assert len(base64.urlsafe_b64decode(first.token + "=")) == 32  # 256 random bits
    assert first.data == {
        "callback_url": f"/api/v1/callbacks/{first.token}",
        "secrets": ["s1", "s2"],
        "timeout": "10m",
    }
    assert logs == [
        f"waiting for a callback: POST /api/v1/callbacks/{first.token} (signed: Standard "
        "Webhooks), for at most 10m"
    ]


async def test_receive_without_timeout_waits_for_ever() -> None:
    outcome = await WebhookProcessor().run({"mode": "receive"}, context([]))
    assert isinstance(outcome, Waiting)
    assert outcome.until is None
    assert outcome.data["secrets"] == []


@pytest.mark.parametrize("secret", ["", [], ["ok", ""], "whsec_!!", 5])
async def test_receive_refuses_an_unusable_secret(secret: Any) -> None:
    outcome = await WebhookProcessor().run({"mode": "receive", "secret": secret}, context([]))
    assert isinstance(outcome, Failed)
    assert outcome.retryable is False


async def test_resume_completes_with_the_callback_or_fails_at_the_timeout() -> None:
    webhook = WebhookProcessor()
    answer = {
        "payload": {"ok": 1},
        "headers": {"content-type": "application/json"},
        "received_at": "2030-01-15T08:31:00.000Z",
        "webhook_id": "msg_1",
    }
    resolution = WaitResolution("callback", NOW, None, NOW, answer, {"timeout": "5m"})
    assert await webhook.resume({}, context([]), resolution) == Completed(
        {
            "payload": {"ok": 1},
            "headers": {"content-type": "application/json"},
            "received_at": "2030-01-15T08:31:00.000Z",
        }
    )
    timed_out = WaitResolution("callback", NOW, NOW, NOW, {}, {"timeout": "5m"})
    outcome = await webhook.resume({}, context([]), timed_out)
    assert isinstance(outcome, Failed)
    assert outcome.retryable is False
    assert "no callback arrived within 5m" in outcome.error


async def test_send_without_the_http_service_fails_clearly() -> None:
    outcome = await WebhookProcessor().run({"url": "http://127.0.0.1/"}, context([]))
    assert outcome == Failed("the server has no HTTP service for webhook nodes", retryable=False)
