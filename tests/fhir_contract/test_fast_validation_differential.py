"""The fast path gives the strict path's verdict: valid contract Observations of every reading type,
mutated (elements dropped, wrong JSON types, bad dateTimes, empty strings, arrays and objects, nulls,
unknown keys at every level, a second value[x], numbers as strings, huge numbers, nested garbage),
are accepted by both with an equal ValidObservation, or rejected by both with the same code."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fhir.resources.R4B.observation import Observation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from fhir_contract.examples import examples
from fhir_contract.fast_structure import StructureError, Unsupported, check_observation
from fhir_contract.observation import build_observation
from fhir_contract.readings import Absent, Quantity, Reading
from fhir_contract.validate import ContractViolation, validate_observation, validate_observation_strict

Path = tuple[str | int, ...]


def _bases() -> list[dict[str, Any]]:
    """Every example Observation, plus the measurement-status options and an absent value."""
    bases = [r for name, r in sorted(examples().items()) if name.startswith("Observation-")]
    when = datetime(2026, 11, 2, 7, 30, tzinfo=UTC)
    variants: list[tuple[Reading, dict[str, Any]]] = [
        (Reading("spo2", Quantity(Decimal("97"), "%")), {"questionable": True, "test_data": True}),
        (Reading("body-weight", Absent("not-a-number")), {}),
        (Reading("body-temperature", Quantity(Decimal("99.1"), "[degF]")), {"received": when}),
    ]
    for reading, options in variants:
        ids: dict[str, Any] = {"patient_id": "p-1", "device_id": "d-1", "hub_id": "h-1"}
        bases.append(build_observation(reading, **ids, effective=when, **options))
    return bases


BASES = _bases()


def verdict(validate: Any, resource: Any) -> Any:
    """The ValidObservation, or the rejection's code (or, were the validator to crash, the crash)."""
    try:
        return validate(copy.deepcopy(resource))
    except ContractViolation as exc:
        return ("rejected", exc.code)
    except Exception as exc:  # pragma: no cover - kept so a crash shows as a difference, not an error
        return ("crashed", type(exc).__name__)


def _paths(node: Any, path: Path = ()) -> list[Path]:
    found = [path]
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, (*path, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _paths(child, (*path, index))
    return found


def _parent(resource: Any, path: Path) -> Any:
    node = resource
    for step in path[:-1]:
        node = node[step]
    return node


BAD_DATE_TIMES: list[Any] = [
    "2026-11-02T07:30:00",  # no zone
    "2026-11-02T07:30:00.123",
    "2026-11-02 07:30:00Z",
    "2026-02-30T07:30:00Z",
    "2026-11-02T25:00:00Z",
    "2026-11-02T07:30:00+15:00",
    "2026-11-02",
    "2026",
    "2016-12-31T23:59:60Z",
    "2026-11-02T07:30:00.1234567Z",
    "yesterday",
    "0000-01-01T00:00:00Z",
]
GARBAGE: list[Any] = [
    None,
    "",
    " ",
    " final",
    "a  b",
    "\t",
    "é",
    "72",
    "36.8",
    "{}",
    '{"text": "x"}',
    "not a uri",
    "Patient/",
    "Device/x",
    "a" * 65,
    "a" * 300,
    [],
    {},
    [None],
    [{}],
    [""],
    {"a": [1, {"b": None}]},
    0,
    -1,
    1,
    72,
    1.5,
    -0.0,
    10**40,
    1e308,
    True,
    False,
    *BAD_DATE_TIMES,
]
EXTRA_KEYS = [
    "unknown",
    "valueString",
    "valueCodeableConcept",
    "valueQuantity",
    "valueInteger",
    "dataAbsentReason",
    "id",
    "extension",
    "modifierExtension",
    "_status",
    "_value",
    "text",
    "display",
    "comparator",
    "url",
    "issued",
    "note",
    "resourceType",
    "lastUpdated",
]
# A third-party extension fhir.resources accepts and the fast check does not know.
FOREIGN_EXTENSION = {"url": "http://example.org/fhir/StructureDefinition/x", "valueBoolean": True}

_values = st.one_of(
    st.sampled_from(GARBAGE),
    st.text(max_size=6),
    st.integers(),
    st.floats(allow_nan=False),
    st.sampled_from(BAD_DATE_TIMES),
    st.recursive(
        st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3),
        lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner, max_size=2),
        max_leaves=4,
    ),
).map(copy.deepcopy)  # a fresh copy: later mutations must not change the constants above


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A base Observation with one to three mutations at random places."""
    resource: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(resource)))
        node = _parent(resource, path)[path[-1]] if path else resource
        operation = draw(st.sampled_from(["drop", "replace", "add-key", "append", "copy-sibling"]))
        if operation == "drop" and path:
            del _parent(resource, path)[path[-1]]
        elif operation == "replace" and path:
            _parent(resource, path)[path[-1]] = draw(_values)
        elif operation == "add-key" and isinstance(node, dict):
            extra = st.sampled_from([{"text": "x"}, {"value": 1}, [FOREIGN_EXTENSION]]).map(copy.deepcopy)
            node[draw(st.sampled_from(EXTRA_KEYS))] = draw(st.one_of(_values, extra))
        elif operation == "append" and isinstance(node, list):
            node.append(draw(st.one_of(_values, st.builds(dict, st.just(FOREIGN_EXTENSION)))))
        elif operation == "copy-sibling" and isinstance(node, list) and node:
            node.append(copy.deepcopy(node[0]))
    return resource


def assert_same_verdicts(resource: dict[str, Any]) -> None:
    """The end verdicts are equal, and so are the structural ones (which the contract's rules could
    mask): what the fast check accepts, fhir.resources accepts; what it rejects, fhir.resources rejects."""
    assert verdict(validate_observation, resource) == verdict(validate_observation_strict, resource)
    try:
        check_observation(resource)
        fast: bool | None = True
    except StructureError:
        fast = False
    except Unsupported:
        fast = None
    try:
        Observation.model_validate(copy.deepcopy(resource))
        strict = True
    except (ValidationError, ValueError, TypeError):
        strict = False
    if fast is not None:
        assert fast == strict


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_fast_and_strict_give_the_same_verdict_on_mutated_observations(resource: dict[str, Any]) -> None:
    assert_same_verdicts(resource)


# One base of each shape, for the exhaustive sweeps below: a compound, a preliminary compound with
# absent components, a variant with a CodeableConcept component, a body site, and the status options.
SHAPES = [
    r
    for r in BASES
    if r.get("id")
    in {
        "example-blood-pressure",
        "example-blood-pressure-intermediate",
        "example-spo2-fast",
        "example-body-temperature",
    }
    or "id" not in r
]
# A value of each JSON type, and the empty and near-miss ones.
RETYPED: list[Any] = [None, True, 0, 72, 1.5, 10**40, "72", "", " ", "x", [], {}, [None], [{}], {"text": "x"}]
# value[x] (and dataAbsentReason) that could be added beside an existing one.
SECOND_VALUES = {
    "valueQuantity": {"value": 1, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
    "valueCodeableConcept": {"text": "x"},
    "valueString": "x",
    "valueReference": {"reference": "Device/x"},
    "valueDateTime": "2026-11-02T07:30:00Z",
    "dataAbsentReason": {"text": "x"},
}


def _sweep(mutate: Any) -> None:
    for base in SHAPES:
        for path in _paths(base):
            resource = copy.deepcopy(base)
            if mutate(resource, path):
                assert_same_verdicts(resource)


def _set(value: Any) -> Any:
    def mutate(resource: dict[str, Any], path: Path) -> bool:
        if not path:
            return False
        _parent(resource, path)[path[-1]] = copy.deepcopy(value)
        return True

    return mutate


@pytest.mark.parametrize("value", RETYPED + BAD_DATE_TIMES, ids=repr)
def test_every_element_replaced_gives_the_same_verdict(value: Any) -> None:
    _sweep(_set(value))


def test_every_element_dropped_gives_the_same_verdict() -> None:
    def drop(resource: dict[str, Any], path: Path) -> bool:
        if path:
            del _parent(resource, path)[path[-1]]
        return bool(path)

    _sweep(drop)


@pytest.mark.parametrize("key", [*SECOND_VALUES, "unknown", "id", "extension"])
def test_every_object_with_an_added_element_gives_the_same_verdict(key: str) -> None:
    def add(resource: dict[str, Any], path: Path) -> bool:
        node = _parent(resource, path)[path[-1]] if path else resource
        if not isinstance(node, dict):
            return False
        node[key] = copy.deepcopy(SECOND_VALUES.get(key, "x"))
        return True

    _sweep(add)


@pytest.mark.parametrize("resource", BASES, ids=lambda r: str(r.get("id", r["code"]["text"])))
def test_valid_observations_are_accepted_alike(resource: dict[str, Any]) -> None:
    fast = validate_observation(copy.deepcopy(resource))
    assert fast == validate_observation_strict(copy.deepcopy(resource))


def test_a_third_party_extension_falls_back_to_fhir_resources_and_is_accepted() -> None:
    resource = copy.deepcopy(BASES[0])
    resource["extension"].append(FOREIGN_EXTENSION)
    with pytest.raises(Unsupported):
        check_observation(resource)
    assert validate_observation(resource) == validate_observation_strict(resource)


@pytest.mark.parametrize(
    ("mutate", "element"),
    [
        (lambda r: r.update(effectiveDateTime="2026-11-02T07:30:00"), "Observation.effectiveDateTime"),
        (lambda r: r["code"]["coding"][0].update(code=" 8310-5"), "Observation.code.coding[0].code"),
        (lambda r: r["valueQuantity"].update(value=True), "Observation.valueQuantity.value"),
        (lambda r: r["code"].update(text=""), "Observation.code.text"),
        (lambda r: r.update(category=[None]), "Observation.category[0]"),
        (lambda r: r.pop("status"), "Observation.status"),
    ],
)
def test_fast_rejections_are_invalid_fhir_and_name_the_element(mutate: Any, element: str) -> None:
    resource = copy.deepcopy(examples()["Observation-body-temperature.json"])
    mutate(resource)
    with pytest.raises(ContractViolation) as fast:
        validate_observation(resource)
    with pytest.raises(ContractViolation) as strict:
        validate_observation_strict(resource)
    assert fast.value.code == strict.value.code == "invalid-fhir"
    assert element in fast.value.reason
