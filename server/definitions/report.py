"""Collecting problems: errors and warnings with JSON pointers, and the final report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from server.definitions.pointers import sort_key, under
from server.errors import InvalidDefinition, Problem


@dataclass
class Reporter:
    """Accumulates problems during one validation run (duplicates are dropped)."""

    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def error(self, path: str, message: str) -> None:
        problem = Problem(path, message)
        if problem not in self.errors:
            self.errors.append(problem)

    def warning(self, path: str, message: str) -> None:
        problem = Problem(path, message)
        if problem not in self.warnings:
            self.warnings.append(problem)


@dataclass(frozen=True)
class ValidationReport:
    """The verdict on a definition: every error and warning, each with a JSON pointer."""

    errors: list[Problem]
    warnings: list[Problem]

    @property
    def valid(self) -> bool:
        """A definition is valid when it has no errors (warnings are advice)."""
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        """The ``POST /validate`` answer: ``{valid, errors: [{path, message}], warnings}``."""
        return {
            "valid": self.valid,
            "errors": [problem.as_dict() for problem in self.errors],
            "warnings": [problem.as_dict() for problem in self.warnings],
        }

    def raise_if_invalid(self) -> None:
        """Raise :class:`InvalidDefinition` (422, with every error) unless valid."""
        if self.errors:
            raise InvalidDefinition(self.errors)


def build_report(schema_errors: list[Problem], semantic: Reporter) -> ValidationReport:
    """Merge schema and hand-written findings, in document order.

    A semantic error at or below a place the schema already rejected would repeat the
    same problem in other words, so it is dropped.
    """
    rejected = [problem.path for problem in schema_errors]
    errors = list(schema_errors)
    for problem in semantic.errors:
        if problem not in errors and not any(under(problem.path, path) for path in rejected):
            errors.append(problem)
    errors.sort(key=lambda p: sort_key(p.path))
    warnings = sorted(semantic.warnings, key=lambda p: sort_key(p.path))
    return ValidationReport(errors, warnings)
