"""The fast structural check's FHIR primitives, each held against fhir.resources R4B: what the fast check
accepts, fhir.resources accepts; what it rejects, fhir.resources rejects; the rest it hands over."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.observation import Observation
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from fhir_contract.examples import examples
from fhir_contract.fast_structure import (
    StructureError,
    Unsupported,
    check_code,
    check_date_time,
    check_decimal,
    check_id,
    check_instant,
    check_observation,
    check_string,
    check_uri,
)

OK, INVALID, FALLBACK = "ok", "invalid", "fallback"


def _fast(check: Callable[[Any], None], value: Any) -> str:
    try:
        check(value)
    except StructureError:
        return INVALID
    except Unsupported:
        return FALLBACK
    return OK


def _r4b_accepts(make: Callable[[Any], object], value: Any) -> bool:
    try:
        make(value)
    except (ValidationError, ValueError, TypeError):
        return False
    return True


def _observation_with(**elements: Any) -> Observation:
    base = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    return Observation.model_validate(base | elements)


def _assert_agrees(verdict: str, accepted: bool) -> None:
    if verdict == OK:
        assert accepted
    elif verdict == INVALID:
        assert not accepted


DATE_TIMES = [
    ("2026-11-02T07:30:00+00:00", OK),
    ("2026-11-02T07:30:00Z", OK),
    ("2026-11-02T07:30:00.123456-05:30", OK),
    ("2026-11-02T07:30:00+14:00", OK),
    ("0001-01-01T00:00:00Z", OK),
    ("2026-11-02T07:30:00", INVALID),  # a time needs a zone
    ("2026-11-02 07:30:00Z", INVALID),
    ("2026-11-02T07:30Z", INVALID),
    ("2026-11-02T24:00:00Z", INVALID),
    ("2026-13-02T07:30:00Z", INVALID),
    ("2026-11-02T07:30:00+14:30", INVALID),
    ("2026-11-02T07:30:00+1400", INVALID),
    ("0000-01-01T00:00:00Z", INVALID),
    ("2026-02-30T07:30:00Z", INVALID),  # matches the regex, but no such day
    ("2026-11-02T07:30:00Z ", INVALID),
    ("", INVALID),
    ("2026", FALLBACK),  # partial dates and leap seconds are valid R4 the fast check leaves alone
    ("2026-11", FALLBACK),
    ("2026-11-02", FALLBACK),
    ("2016-12-31T23:59:60Z", FALLBACK),
    ("2026-11-02T07:30:00.1234567Z", FALLBACK),
    (1700000000, FALLBACK),  # pydantic reads a number as Unix time
    (None, FALLBACK),
]


@pytest.mark.parametrize(("value", "verdict"), DATE_TIMES, ids=repr)
def test_date_time_follows_the_r4_regex_and_agrees_with_fhir_resources(value: Any, verdict: str) -> None:
    assert _fast(check_date_time, value) == verdict
    _assert_agrees(verdict, _r4b_accepts(lambda v: _observation_with(effectiveDateTime=v), value))


INSTANTS = [
    ("2026-11-02T07:30:04+00:00", OK),
    ("2026-11-02T07:30:04.5Z", OK),
    ("2026-11-02T07:30:04", INVALID),  # an instant always needs its zone
    ("2026-11-02", INVALID),
    ("2026-11", INVALID),
    ("2026-11-02T07:30Z", INVALID),
    ("2026-11-31T07:30:04Z", INVALID),
    ("2016-12-31T23:59:60Z", FALLBACK),
]


@pytest.mark.parametrize(("value", "verdict"), INSTANTS, ids=repr)
def test_instant_needs_seconds_and_a_time_zone(value: Any, verdict: str) -> None:
    assert _fast(check_instant, value) == verdict
    _assert_agrees(verdict, _r4b_accepts(lambda v: Meta.model_validate({"lastUpdated": v}), value))


CODES = [
    ("final", OK),
    ("mm[Hg]", OK),
    ("a b", OK),
    ("", INVALID),
    (" final", INVALID),
    ("final ", INVALID),
    ("a  b", INVALID),
    (5, INVALID),
    (True, INVALID),
    ("a\tb", FALLBACK),
    (None, FALLBACK),
]


@pytest.mark.parametrize(("value", "verdict"), CODES, ids=repr)
def test_code_has_no_leading_trailing_or_repeated_whitespace(value: Any, verdict: str) -> None:
    assert _fast(check_code, value) == verdict
    _assert_agrees(verdict, _r4b_accepts(lambda v: _observation_with(status=v), value))


STRINGS = [
    ("Body temperature", OK),
    ("é", OK),
    ("", INVALID),
    (72, INVALID),
    (["x"], INVALID),
    (" ", FALLBACK),
]


@pytest.mark.parametrize(("value", "verdict"), STRINGS, ids=repr)
def test_string_is_non_empty_text(value: Any, verdict: str) -> None:
    assert _fast(check_string, value) == verdict
    _assert_agrees(verdict, _r4b_accepts(lambda v: _observation_with(code={"text": v}), value))


IDS = [
    ("example-1.a", OK),
    ("a" * 64, OK),
    ("a" * 65, FALLBACK),  # R4 says 64, fhir.resources allows 255: it decides
    ("a" * 256, INVALID),
    ("", INVALID),
    ("a_b", INVALID),
    ("a\n", INVALID),
]


@pytest.mark.parametrize(("value", "verdict"), IDS, ids=lambda v: repr(v)[:20])
def test_id_is_letters_digits_dash_and_dot(value: Any, verdict: str) -> None:
    assert _fast(check_id, value) == verdict
    _assert_agrees(verdict, _r4b_accepts(lambda v: _observation_with(id=v), value))


DECIMALS = [
    (72, OK),
    (36.8, OK),
    (-0.0, OK),
    (1e-7, OK),
    (10**40, OK),
    (True, INVALID),
    (float("nan"), INVALID),
    (float("inf"), INVALID),
    ("72", FALLBACK),  # fhir.resources takes it; the contract's rules reject it after
    (None, FALLBACK),
]


@pytest.mark.parametrize(("value", "verdict"), DECIMALS, ids=repr)
def test_decimal_is_a_finite_json_number(value: Any, verdict: str) -> None:
    assert _fast(check_decimal, value) == verdict
    _assert_agrees(verdict, _r4b_accepts(lambda v: _observation_with(valueQuantity={"value": v}), value))


URIS = [("http://loinc.org", OK), ("urn:homewatch:observation", OK), ("", FALLBACK), ("a b", FALLBACK)]


@pytest.mark.parametrize(("value", "verdict"), URIS, ids=repr)
def test_uri_without_whitespace_is_decided_and_the_rest_handed_over(value: Any, verdict: str) -> None:
    assert _fast(check_uri, value) == verdict
    _assert_agrees(
        verdict, _r4b_accepts(lambda v: _observation_with(code={"coding": [{"system": v}]}), value)
    )


_DIGIT = st.sampled_from("0123456789")


@st.composite
def _near_date_times(draw: st.DrawFn) -> str:
    """Strings shaped like a dateTime, with random digits and an optional fraction and zone."""
    digits = "".join(draw(st.lists(_DIGIT, min_size=12, max_size=12)))
    date = f"{digits[:4]}-{digits[4:6]}-{digits[6:8]}"
    time = f"T{digits[8:10]}:{digits[10:12]}:{draw(st.integers(0, 61)):02d}"
    fraction = draw(st.sampled_from(["", ".5", ".123456", ".1234567"]))
    zone = draw(st.sampled_from(["", "Z", "+00:00", "-05:30", "+14:00", "+14:01", "+13:59", "-24:00"]))
    return draw(st.sampled_from([date, date + time + fraction + zone, date[:7], date[:4]]))


@settings(max_examples=300, deadline=None)
@given(_near_date_times())
def test_generated_date_times_agree_with_fhir_resources(value: str) -> None:
    _assert_agrees(
        _fast(check_date_time, value), _r4b_accepts(lambda v: _observation_with(effectiveDateTime=v), value)
    )


@pytest.mark.parametrize(
    "name", sorted(n for n in examples() if n.startswith("Observation-")), ids=lambda n: n[12:-5]
)
def test_every_example_observation_is_decided_by_the_fast_check(name: str) -> None:
    check_observation(examples()[name])  # neither StructureError nor Unsupported


def test_a_problem_names_the_element() -> None:
    resource = examples()["Observation-blood-pressure.json"]
    resource["component"][1]["valueQuantity"]["value"] = True
    with pytest.raises(StructureError) as problem:
        check_observation(resource)
    assert problem.value.element == "Observation.component[1].valueQuantity.value"
