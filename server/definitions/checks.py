"""Checks of single values at absolute pointers: expressions, templates, JSONPath, cron,
time zones and durations. Each reports into a :class:`Reporter` and never raises."""

from __future__ import annotations

import warnings
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from croniter import croniter
from jsonpath_ng.ext.parser import parse as parse_jsonpath

from server.definitions.context import DefinitionLimits
from server.definitions.pointers import describe, pointer, suggest
from server.definitions.references import CONSTANT_NAMES, ReferenceChecker
from server.definitions.report import Reporter
from server.durations import ACCEPTED_FORMS, DurationError, parse_duration
from server.errors import ExpressionError
from server.expressions import ExpressionInfo, check_expression, find_references

CRON_FIELDS = "minute hour day-of-month month day-of-week"


@dataclass
class ValueChecks:
    """The shared value checks, reporting at absolute pointers."""

    reporter: Reporter
    limits: DefinitionLimits

    def duration(self, path: str, value: object) -> float | None:
        try:
            return parse_duration(value)
        except DurationError as exc:
            self.reporter.error(path, str(exc))
        except (OverflowError, ValueError):
            self.reporter.error(path, f"{describe(value)} is not a duration; use {ACCEPTED_FORMS}")
        return None

    def cron(self, path: str, text: object) -> None:
        if not isinstance(text, str):
            self.reporter.error(path, f"a cron schedule is a string, not {describe(text)}")
            return
        fields = text.split()
        if len(fields) not in (5, 6):
            self.reporter.error(
                path,
                f"cron {describe(text)} has {len(fields)} fields; write 5 ({CRON_FIELDS}), "
                'or 6 with seconds first, e.g. "0 9 * * 1" (Mondays at 09:00)',
            )
            return
        problem = _cron_problem(" ".join(fields))
        if problem:
            self.reporter.error(path, f"invalid cron {describe(text)}: {problem}")

    def timezone(self, path: str, text: object) -> None:
        if not isinstance(text, str):
            self.reporter.error(path, f"a time zone is a string, not {describe(text)}")
            return
        zones = _time_zones()
        if text not in zones:
            self.reporter.error(
                path,
                f"unknown time zone {describe(text)}; use an IANA name such as "
                f'"UTC" or "Europe/Berlin"{suggest(text, sorted(zones))}',
            )

    def jsonpath(self, path: str, text: object) -> None:
        if not isinstance(text, str):
            self.reporter.error(path, f"a JSONPath is a string, not {describe(text)}")
            return
        limit = self.limits.max_jsonpath_length
        if len(text) > limit:
            self.reporter.error(
                path,
                f"the JSONPath is {len(text):,} characters long; the limit is {limit:,} "
                f"(setting {self.limits.setting('max_jsonpath_length')})",
            )
            return
        problem, notes = _jsonpath_problem(text)
        if problem:
            self.reporter.error(path, f"invalid JSONPath {describe(text)}: {problem}")
        for note in notes:
            self.reporter.warning(path, f"JSONPath {describe(text)}: {note}")

    def expression(
        self, path: str, text: object, references: ReferenceChecker
    ) -> ExpressionInfo | None:
        if not isinstance(text, str):
            self.reporter.error(path, f"an expression is a string, not {describe(text)}")
            return None
        limit = self.limits.max_expression_length
        if len(text) > limit:
            self.reporter.error(
                path,
                f"the expression is {len(text):,} characters long; the limit is {limit:,} "
                f"(setting {self.limits.setting('max_expression_length')})",
            )
            return None
        if not text.strip():
            self.reporter.error(path, "the expression is empty")
            return None
        try:
            info = check_expression(text, max_length=limit)
            refs = find_references(text)
        except ExpressionError as exc:
            self.reporter.error(path, f"invalid expression {describe(text)}: {_reason(exc)}")
            return None
        seen_roots = set()
        for ref in refs:
            seen_roots.add(ref.root)
            self._report(path, references, ref.path, "${" + ref.raw + "}")
        for name in sorted(info.names - seen_roots - CONSTANT_NAMES):
            self._report(path, references, (name,), f"name {name!r} in {describe(text)}")
        return info

    def template(self, path: str, value: object, references: ReferenceChecker) -> None:
        stack: list[tuple[str, object]] = [(path, value)]
        while stack:
            where, item = stack.pop()
            if isinstance(item, str):
                self._template_string(where, item, references)
            elif isinstance(item, dict):
                stack.extend((where + pointer(key), child) for key, child in item.items())
            elif isinstance(item, list):
                stack.extend((where + pointer(index), child) for index, child in enumerate(item))

    def _template_string(self, path: str, text: str, references: ReferenceChecker) -> None:
        if "${" not in text:
            return
        try:
            refs = find_references(text)
        except ExpressionError as exc:
            self.reporter.error(path, f"malformed template {describe(text)}: {_reason(exc)}")
            return
        for ref in refs:
            self._report(path, references, ref.path, "${" + ref.raw + "}")

    def _report(
        self, path: str, references: ReferenceChecker, ref_path: Iterable[str | int], shown: str
    ) -> None:
        finding = references.check_path(tuple(ref_path), shown)
        if finding is None:
            return
        if finding.is_error:
            self.reporter.error(path, finding.message)
        else:
            self.reporter.warning(path, finding.message)


def _reason(exc: ExpressionError) -> str:
    where = f" (at position {exc.position})" if exc.position is not None else ""
    return f"{exc.reason}{where}"


@lru_cache(maxsize=1024)
def _jsonpath_problem(text: str) -> tuple[str | None, tuple[str, ...]]:
    """Parse once per distinct text (a parse costs ~1 ms): (error, warnings)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            parse_jsonpath(text)
        except Exception as exc:  # any parser failure is about the user's input
            return str(exc) or type(exc).__name__, ()
    return None, tuple(dict.fromkeys(str(w.message) for w in caught))


@lru_cache(maxsize=1024)
def _cron_problem(text: str) -> str | None:
    try:
        croniter(text, second_at_beginning=True)
    except Exception as exc:  # any parser failure is about the user's input
        return str(exc) or type(exc).__name__
    return None


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}
