"""Durations as people write them in definitions and settings.

A duration is a number of seconds or a string: ``"30s"``, ``"5m"``, ``"1h30m"``,
``"3d"``, ``"1w"``, ``"3 days"``, ``"2 hours"``, ``"1 hour 30 minutes"`` or ISO-8601
(``"PT30S"``, ``"P1DT2H"``). Anything else raises :class:`DurationError` whose message
says what forms are accepted.
"""

from __future__ import annotations

import math
import re

UNIT_SECONDS: dict[str, float] = {
    "ms": 0.001, "millisecond": 0.001, "milliseconds": 0.001,
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}  # fmt: skip

_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*,?", re.IGNORECASE)
_ISO = re.compile(
    r"^P(?!$)(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?=\d)(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)
ACCEPTED_FORMS = (
    'a number of seconds, or a string such as "30s", "5m", "1h30m", "3d", "2 hours" '
    'or ISO-8601 "PT30S"'
)


class DurationError(ValueError):
    """The value is not a duration Flowyard understands."""


def parse_duration(value: object) -> float:
    """Return the duration in seconds; raise :class:`DurationError` when it is not one."""
    if isinstance(value, bool):
        raise DurationError(f"{value!r} is not a duration; use {ACCEPTED_FORMS}")
    if isinstance(value, int | float):
        if isinstance(value, int) and value.bit_length() > 64:
            raise DurationError(f"{value} seconds is not a usable duration: it is far too large")
        if not math.isfinite(value) or value < 0:
            raise DurationError(f"{value!r} is not a duration: it must be a finite number ≥ 0")
        return float(value)
    if not isinstance(value, str):
        raise DurationError(f"a {type(value).__name__} is not a duration; use {ACCEPTED_FORMS}")
    text = value.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    iso = _ISO.match(text)
    if iso:
        factors = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
        return sum(float(iso.group(k)) * f for k, f in factors.items() if iso.group(k))
    return _parse_units(value, text)


def _parse_units(original: str, text: str) -> float:
    total, pos = 0.0, 0
    if not text:
        raise DurationError(f"an empty string is not a duration; use {ACCEPTED_FORMS}")
    while pos < len(text):
        match = _PART.match(text, pos)
        if not match:
            raise DurationError(f"{original!r} is not a duration; use {ACCEPTED_FORMS}")
        number, unit = match.groups()
        factor = UNIT_SECONDS.get(unit.lower())
        if factor is None:
            units = "ms, s, m, h, d, w (or seconds, minutes, hours, days, weeks)"
            raise DurationError(f"{original!r}: unknown unit {unit!r}; use {units}")
        total += float(number) * factor
        pos = match.end()
    return total


def format_duration(seconds: float) -> str:
    """A compact human form (``"1h30m"``) of a number of seconds, for messages and pages."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    whole = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, whole = divmod(whole, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts) or "0s"
