"""Semantic versions of definitions: parsing, ordering keys, and the next version."""

from __future__ import annotations

import re
from dataclasses import dataclass

SEMVER = re.compile(
    r"^(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)


@dataclass(frozen=True, slots=True)
class SemVer:
    major: int
    minor: int
    patch: int
    prerelease: str = ""

    @classmethod
    def parse(cls, text: str) -> SemVer:
        match = SEMVER.match(text)
        if not match:
            raise ValueError(f"{text!r} is not a semantic version such as 1.0.0")
        major, minor, patch, pre, _build = match.groups()
        return cls(int(major), int(minor), int(patch), pre or "")

    def sort_key(self) -> str:
        """A string that sorts like the version (releases after their pre-releases).

        Pre-release identifiers compare per SemVer: numeric ones numerically, before
        alphanumeric ones.
        """
        release = f"{self.major:09d}.{self.minor:09d}.{self.patch:09d}"
        if not self.prerelease:
            return release + "~"
        parts = []
        for ident in self.prerelease.split("."):
            parts.append(f"0{int(ident):09d}" if ident.isdigit() else f"1{ident}")
        return release + "-" + ".".join(parts)

    def next_patch(self) -> SemVer:
        return SemVer(self.major, self.minor, self.patch + 1)

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return f"{core}-{self.prerelease}" if self.prerelease else core
