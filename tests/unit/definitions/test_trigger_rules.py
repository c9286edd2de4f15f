"""Definition checks of triggers: misfire policy, input mapping, secrets (docs/triggers.md)."""

from __future__ import annotations

from typing import Any

import pytest

from server.definitions.model import parse_definition
from tests.unit.definitions.conftest import base, check


def with_triggers(*triggers: dict[str, Any]) -> dict[str, Any]:
    doc = base()
    doc["triggers"] = list(triggers)
    return doc


def cron(**fields: Any) -> dict[str, Any]:
    return {"id": "c", "type": "cron", "schedule": "* * * * *", **fields}


def hook(**fields: Any) -> dict[str, Any]:
    return {"id": "h", "type": "webhook", "path": "orders", **fields}


def test_the_new_trigger_fields_are_accepted_and_parsed() -> None:
    doc = with_triggers(
        cron(misfire="run_all", max_catch_up=3),
        hook(
            secret=["${secrets.NEW}", "whsec_b2xk"],
            input_mapping={"order_id": "body.order.id", "source": "headers.x-source"},
        ),
    )
    report = check(doc)
    assert report.valid, report.errors
    assert report.warnings == []
    timer, webhook = parse_definition(doc).triggers
    assert (timer.misfire, timer.max_catch_up) == ("run_all", 3)
    assert webhook.input_mapping == {"order_id": "body.order.id", "source": "headers.x-source"}
    assert webhook.secret == ("${secrets.NEW}", "whsec_b2xk")


def test_defaults_are_run_once_and_ten() -> None:
    (timer,) = parse_definition(with_triggers(cron())).triggers
    assert (timer.misfire, timer.max_catch_up, timer.input_mapping) == ("run_once", 10, None)


@pytest.mark.parametrize(
    ("trigger", "pointer", "fragment"),
    [
        (cron(misfire="later"), "/triggers/0/misfire", "not one of: run_once, skip, run_all"),
        (cron(max_catch_up=0), "/triggers/0/max_catch_up", "≥ 1"),
        (cron(max_catch_up=5000), "/triggers/0/max_catch_up", "≤ 1000"),
        (
            hook(input_mapping={"a": "cookies.session"}),
            "/triggers/0/input_mapping/a",
            "must start with body, headers or query",
        ),
        (
            hook(input_mapping={"a": "headers.x.y"}),
            "/triggers/0/input_mapping/a",
            "exactly one headers entry",
        ),
        (hook(input_mapping={"a": "body..x"}), "/triggers/0/input_mapping/a", "invalid path"),
        (hook(input_mapping={"a": 5}), "/triggers/0/input_mapping/a", "string"),
        (
            hook(secret="${input.token}"),
            "/triggers/0/secret",
            "can only use a stored secret",
        ),
        (
            hook(secret=["${secrets.OK}", "${execution.id}"]),
            "/triggers/0/secret/1",
            "can only use a stored secret",
        ),
    ],
)
def test_bad_trigger_fields_are_errors_at_their_pointer(
    trigger: dict[str, Any], pointer: str, fragment: str
) -> None:
    report = check(with_triggers(trigger))
    assert not report.valid
    messages = [e.message for e in report.errors if e.path == pointer]
    assert any(fragment in m for m in messages), report.errors


def test_fields_of_the_other_trigger_type_are_warnings() -> None:
    report = check(with_triggers(cron(path="x"), hook(id="h2", misfire="skip")))
    assert report.valid, report.errors
    assert {w.path for w in report.warnings} == {"/triggers/0/path", "/triggers/1/misfire"}
