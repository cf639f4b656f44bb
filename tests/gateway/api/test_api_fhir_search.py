"""The declared FHIR search parameters: parsing, formatting, cursors. No server, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qsl

import pytest

from gateway.api.errors import FhirError
from gateway.api.fhir_search import (
    DEFAULT_COUNT,
    MAX_COUNT,
    Cursor,
    Period,
    Reference,
    Sort,
    Token,
    decode_cursor,
    encode_cursor,
    format_search,
    parse_date,
    parse_reference,
    parse_search,
    parse_token,
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "start", "end"),
    [
        ("2024", utc(2024, 1, 1), utc(2025, 1, 1)),
        ("2024-12", utc(2024, 12, 1), utc(2025, 1, 1)),
        ("2024-02", utc(2024, 2, 1), utc(2024, 3, 1)),
        ("2024-02-29", utc(2024, 2, 29), utc(2024, 3, 1)),
        ("2024-05-01T10:15", utc(2024, 5, 1, 10, 15), utc(2024, 5, 1, 10, 16)),
        ("2024-05-01T10:15:30Z", utc(2024, 5, 1, 10, 15, 30), utc(2024, 5, 1, 10, 15, 31)),
        ("2024-05-01T12:15:30+02:00", utc(2024, 5, 1, 10, 15, 30), utc(2024, 5, 1, 10, 15, 31)),
    ],
)
def test_a_date_covers_the_range_of_its_precision(value: str, start: datetime, end: datetime) -> None:
    assert parse_date(value) == Period(start, end)
    assert parse_date(f"eq{value}") == Period(start, end)


def test_date_prefixes_bound_the_range() -> None:
    start, end = utc(2024, 5, 1), utc(2024, 5, 2)
    assert parse_date("ge2024-05-01") == Period(start, None)
    assert parse_date("gt2024-05-01") == Period(end, None)
    assert parse_date("lt2024-05-01") == Period(None, start)
    assert parse_date("le2024-05-01") == Period(None, end)


def test_negative_zone_offsets_are_honoured() -> None:
    period = parse_date("2024-05-01T05:00:00-05:00")
    assert period.lower == datetime(2024, 5, 1, 5, tzinfo=timezone(-timedelta(hours=5)))
    assert period.lower == utc(2024, 5, 1, 10)


@pytest.mark.parametrize(
    "value", ["2024-5-1", "yesterday", "2024-13", "2024-02-30", "ap2024", "2024-05-01T25:00"]
)
def test_malformed_or_unsupported_dates_are_refused(value: str) -> None:
    with pytest.raises(FhirError) as caught:
        parse_date(value)
    assert caught.value.status == 400


def test_references_and_tokens() -> None:
    assert parse_reference("Patient/p-1") == Reference("p-1")
    assert parse_reference("p-1") == Reference("p-1")
    assert parse_token("http://loinc.org|8867-4") == Token("http://loinc.org", "8867-4")
    assert parse_token("8867-4") == Token(None, "8867-4")
    assert parse_token("|8867-4") == Token(None, "8867-4")
    for bad in ("Observation/1", "Patient/", "Patient/a b"):
        with pytest.raises(FhirError):
            parse_reference(bad)
    with pytest.raises(FhirError):
        parse_token("http://loinc.org|")


def test_repeated_parameters_and_commas() -> None:
    search = parse_search("Observation", [("code", "a,b"), ("date", "ge2024"), ("date", "lt2025")])
    assert [c.name for c in search.criteria] == ["code", "date", "date"]
    assert search.criteria[0].alternatives == (Token(None, "a"), Token(None, "b"))
    assert search.count == DEFAULT_COUNT and search.cursor is None


def test_count_is_capped_and_must_be_given_once() -> None:
    assert parse_search("Observation", [("_count", "5000")]).count == MAX_COUNT
    with pytest.raises(FhirError):
        parse_search("Observation", [("_count", "5"), ("_count", "6")])


def test_risk_assessment_supports_only_patient() -> None:
    parse_search("RiskAssessment", [("patient", "p-1"), ("_count", "3")])
    with pytest.raises(FhirError) as caught:
        parse_search("RiskAssessment", [("code", "x")], strict=True)
    assert caught.value.code == "not-supported"
    assert parse_search("RiskAssessment", [("code", "x")]).criteria == ()  # ignored unless strict


def test_format_search_round_trips_through_parse() -> None:
    items = [
        ("patient", "Patient/p-1"),
        ("code", "http://loinc.org|8867-4,59408-5"),
        ("date", "ge2024-05-01"),
    ]
    search = parse_search("Observation", [*items, ("_count", "7")])
    cursor = Cursor(utc(2024, 5, 3, 8, 30, 0), "urn:x|y:2024-05-03")
    formatted = parse_qsl(format_search(search, cursor))
    assert formatted[:3] == items
    again = parse_search("Observation", formatted)
    assert again.criteria == search.criteria and again.count == 7 and again.cursor == cursor


def test_cursor_round_trip_and_garbage() -> None:
    cursor = Cursor(datetime(2024, 5, 3, 8, 30, 0, 123456, tzinfo=UTC), "id with spaces, commas | bars")
    assert decode_cursor(encode_cursor(cursor)) == cursor
    for garbage in ("", "%%%", encode_cursor(cursor)[:-3], "WyJ4Il0"):
        with pytest.raises(FhirError):
            decode_cursor(garbage)


def test_sort_by_date_either_way_and_nothing_else() -> None:
    assert parse_search("Observation", []).sort is None
    assert parse_search("Observation", []).descending
    ascending = parse_search("Observation", [("_sort", "date")])
    assert ascending.sort == Sort("date", descending=False) and not ascending.descending
    assert parse_search("Observation", [("_sort", "-date")]).descending
    for bad in ("code", "-code", "date,-date", "", "+date"):
        with pytest.raises(FhirError) as caught:
            parse_search("Observation", [("_sort", bad)])
        assert caught.value.status == 400 and caught.value.code == "not-supported"
    with pytest.raises(FhirError):
        parse_search("RiskAssessment", [("_sort", "-date")])


def test_links_carry_the_sort_that_was_asked_for() -> None:
    cursor = Cursor(utc(2024, 5, 3, 8, 30, 0), "urn:x")
    for value in ("date", "-date"):
        search = parse_search("Observation", [("patient", "p-1"), ("_sort", value)])
        formatted = parse_qsl(format_search(search, cursor))
        assert ("_sort", value) in formatted
        again = parse_search("Observation", formatted)
        assert again.sort == search.sort and again.cursor == cursor
    assert "_sort" not in format_search(parse_search("Observation", []), cursor)
