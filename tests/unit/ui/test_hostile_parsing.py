"""The shared parsers behind the dashboard's query strings and JSON fields: offsets
(``ui.paging.read_offset``), time filters (``server.api.timefilters``), JSON text
(``server.api.body.parse_json_text``), and the bounded diff (``ui.diffview.compare``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from server.api.body import parse_json_text
from server.api.schemas import MAX_OFFSET
from server.api.timefilters import OUT_OF_RANGE, parse_time, to_utc
from server.errors import BadRequest
from ui.diffview import compare
from ui.forms import convert, parse_json
from ui.paging import read_offset


@pytest.mark.parametrize(("raw", "expected"), [(None, 0), ("", 0), ("0", 0), ("120", 120)])
def test_offsets_read(raw: str | None, expected: int) -> None:
    assert read_offset(raw) == expected


def test_the_largest_offset_the_databases_bind_is_accepted() -> None:
    assert read_offset(str(MAX_OFFSET)) == MAX_OFFSET


@pytest.mark.parametrize("raw", [str(MAX_OFFSET + 1), "9" * 40, "²", "١٢", "-1", "1.5", "x"])
def test_bad_offsets_are_a_400(raw: str) -> None:
    with pytest.raises(BadRequest, match="offset must be a whole number"):
        read_offset(raw)


def test_times_are_read_as_utc() -> None:
    assert parse_time("2026-01-31T09:30") == datetime(2026, 1, 31, 9, 30, tzinfo=UTC)
    assert parse_time("2026-01-31") == datetime(2026, 1, 31, tzinfo=UTC)
    assert parse_time("2026-01-31T09:30:00+02:00") == datetime(2026, 1, 31, 7, 30, tzinfo=UTC)
    assert parse_time("2026-01-31T09:30:00Z") == datetime(2026, 1, 31, 9, 30, tzinfo=UTC)
    assert parse_time("  ") is None


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00+05:00"])
def test_times_utc_cannot_hold_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse_time(text)
    with pytest.raises(ValueError, match="out of range"):
        to_utc(datetime.fromisoformat(text))


def test_text_that_is_not_a_time_is_refused() -> None:
    with pytest.raises(ValueError, match="not a time") as caught:
        parse_time("yesterday")
    assert str(caught.value) != OUT_OF_RANGE


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 100_000, "nested too deeply"),
        ('{"n": NaN}', "NaN is not valid JSON"),
        ("[Infinity]", "Infinity is not valid JSON"),
        ('{"n": ' + "9" * 5000 + "}", "not valid JSON"),
        ('{"a": 1,', "not valid JSON: Expecting property name enclosed in double quotes at line"),
        (b"\xff\xfe\xfd", "not"),
    ],
)
def test_json_text_the_api_refuses(text: str | bytes, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_json_text(text)


def test_the_forms_refuse_what_the_api_refuses() -> None:
    with pytest.raises(ValueError, match="NaN is not valid JSON"):
        parse_json("[NaN]")
    with pytest.raises(ValueError, match="NaN is not valid JSON"):
        convert("NaN", "array")
    assert convert("NaN", "any") == "NaN"  # "any" takes text that is not JSON as text


def test_the_diff_of_big_documents_is_not_compared_line_by_line() -> None:
    before = {"nodes": [{"id": f"n{i}"} for i in range(100)]}
    after = {"nodes": [{"id": f"m{i}"} for i in range(100)]}
    assert compare(before, after, max_text=100).too_big
    assert compare(before, after, max_text=100).rows == []
    full = compare(before, after)
    assert not full.too_big
    assert not full.identical
    assert full.rows


def test_the_diff_renders_at_most_max_rows() -> None:
    before = {"items": list(range(100))}
    after = {"items": [i + 1000 for i in range(100)]}
    capped = compare(before, after, max_rows=10)
    assert len(capped.rows) == 10
    assert capped.rows_left_out == len(compare(before, after).rows) - 10
    assert not capped.identical


def test_identical_documents_are_identical_however_big() -> None:
    document = {"text": "x" * 1000}
    result = compare(document, dict(document), max_text=10)
    assert result.identical
    assert not result.too_big
