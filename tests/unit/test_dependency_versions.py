"""The installed dependencies carry the published security fixes (docs/security.md).

Each floor is the version that fixed the newest advisory we know of for that package;
pyproject.toml must require at least it, and the environment the tests run in must have
it — an old wheel left in a virtualenv would otherwise pass every other test.
"""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

SECURITY_FLOORS = {
    # CVE-2026-25478/25479/25480 fixed in 2.20.0; CVE-2026-48060 (csrf_input not escaped,
    # reported against 2.21.0) — 2.25.0 escapes the token.
    "litestar": Version("2.25.0"),
    # CVE-2024-56201, CVE-2024-56326 (3.1.5); CVE-2025-27516, the |attr filter (3.1.6).
    "jinja2": Version("3.1.6"),
    # CVE-2026-32640 (1.0.5); three further sandbox security fixes in 1.0.8.
    "simpleeval": Version("1.0.8"),
}


def declared_floor(package: str) -> Version:
    """The lowest version pyproject.toml's dependencies allow for ``package``."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    for line in project["dependencies"]:
        requirement = Requirement(line)
        if requirement.name.lower() == package:
            floors = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
            assert floors, f"{line!r} has no >= floor"
            return max(floors)
    raise AssertionError(f"{package} is not a dependency in pyproject.toml")


@pytest.mark.parametrize("package", sorted(SECURITY_FLOORS))
def test_installed_version_carries_the_security_fixes(package: str) -> None:
    installed = Version(version(package))
    assert installed >= SECURITY_FLOORS[package], (
        f"{package} {installed} is installed; {SECURITY_FLOORS[package]} or later carries the "
        "security fixes (pip install -e '.[dev]')"
    )


@pytest.mark.parametrize("package", sorted(SECURITY_FLOORS))
def test_pyproject_requires_at_least_the_security_floor(package: str) -> None:
    assert declared_floor(package) >= SECURITY_FLOORS[package]


def test_the_floors_are_documented() -> None:
    text = (PYPROJECT.parent / "docs" / "security.md").read_text()
    dependencies = text.split("## Dependencies", 1)[1]
    for package, floor in SECURITY_FLOORS.items():
        assert re.search(rf"{package}[^\n]*{re.escape(str(floor))}", dependencies, re.I), package
