"""The server key file, link signatures, the permission rule and form checks, directly."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from server.errors import ConfigurationError, Forbidden
from server.identity import actor_with_roles, may_decide
from server.keys import KEY_FILE, derive, load_master_key
from server.tasks.forms import check_data
from server.tasks.links import TaskLinks
from server.tasks.service import TaskFacts


def test_the_key_file_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    first = load_master_key(tmp_path / "data", environ={})
    path = tmp_path / "data" / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_master_key(tmp_path / "data", environ={}) == first
    assert len(first) >= 32


def test_the_environment_key_wins_and_must_be_long(tmp_path: Path) -> None:
    key = "k" * 40
    assert load_master_key(tmp_path, environ={"FLOWYARD_SECRET_KEY": key}) == key.encode()
    assert not (tmp_path / KEY_FILE).exists()
    with pytest.raises(ConfigurationError, match="FLOWYARD_SECRET_KEY"):
        load_master_key(tmp_path, environ={"FLOWYARD_SECRET_KEY": "short"})


def test_each_purpose_gets_its_own_key() -> None:
    assert derive(b"m" * 32, "task-links") != derive(b"m" * 32, "fernet")
    assert derive(b"m" * 32, "task-links") != derive(b"n" * 32, "task-links")


def test_a_link_is_bound_to_its_task_its_expiry_and_the_key() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    links = TaskLinks(lambda: b"a" * 32, "http://127.0.0.1:8000/")
    expires = links.expiry(now + timedelta(hours=1), now)
    assert expires == int((now + timedelta(days=1, hours=1)).timestamp())
    signature = links.signature("t1", expires)
    links.verify("t1", expires, signature, now)
    for task_id, exp, sig in [("t2", expires, signature), ("t1", expires + 1, signature)]:
        with pytest.raises(Forbidden, match="not valid"):
            links.verify(task_id, exp, sig, now)
    with pytest.raises(Forbidden, match="not valid"):
        TaskLinks(lambda: b"b" * 32, "").verify("t1", expires, signature, now)
    with pytest.raises(Forbidden, match="expired"):
        links.verify("t1", expires, signature, now + timedelta(days=2))
    assert links.url("t1", expires).startswith("http://127.0.0.1:8000/tasks/t1?exp=")


def facts(**fields: object) -> TaskFacts:
    base: dict[str, object] = {
        "assignee": "bob",
        "candidate_roles": ("finance",),
        "claimed_by": None,
        "allow_self_approval": True,
        "started_by": frozenset({"eve"}),
    }
    return TaskFacts(**{**base, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "roles", "task", "allowed"),
    [
        ("bob", [], {}, True),
        ("fay", ["finance"], {}, True),
        ("carol", [], {}, False),
        ("mia", ["manager"], {}, True),
        ("ada", ["admin"], {}, True),
        ("vic", ["viewer", "finance"], {}, False),
        ("fay", ["finance"], {"claimed_by": "fin"}, False),
        ("mia", ["manager"], {"claimed_by": "fin"}, True),
        ("eve", ["admin"], {"allow_self_approval": False}, False),
        ("eve", ["admin"], {}, True),
    ],
)
def test_who_may_decide(
    name: str, roles: list[str], task: dict[str, object], allowed: bool
) -> None:
    reason = may_decide(facts(**task), actor_with_roles(name, roles))
    assert (reason is None) == allowed, reason


def test_form_values_are_checked_and_typed() -> None:
    form = [
        {"name": "n", "type": "number", "required": True},
        {"name": "b", "type": "boolean"},
        {"name": "s", "type": "select", "options": [1, True, "x"]},
        {"name": "t"},
    ]
    data, problems = check_data(form, {"n": "-3", "b": "off", "s": True})
    assert problems == []
    assert data == {"n": -3, "b": False, "s": True, "t": None}
    _, problems = check_data(form, {"n": True, "s": 1.5, "t": 5})
    assert {p.path for p in problems} == {"/data/n", "/data/s", "/data/t"}
    _, problems = check_data(form, {"n": "inf"})
    assert [p.message for p in problems] == ["must be a finite number"]
    assert check_data([], {"anything": [1]}) == ({"anything": [1]}, [])
