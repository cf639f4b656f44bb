"""A fast structural FHIR R4 check of the contract's Observations, on the parsed JSON, closed world.

It knows exactly the elements and data types that ``fhir_contract.observation`` builds (``meta``,
``identifier``, ``status``, ``category``, ``code``, ``subject``, ``device``, ``effectiveDateTime``,
``valueQuantity``, ``dataAbsentReason``, ``interpretation``, ``bodySite``, ``component[]`` and the three
extensions of the contract) and checks their FHIR primitives: ``dateTime``/``instant`` by the R4
regexes plus a real calendar date, ``decimal`` as a finite JSON number, ``code`` without leading,
trailing or doubled whitespace, non-empty ``string``, ``id``, ``uri``, and only one ``value[x]``.

``check_observation`` has three outcomes:

- it returns: the resource is valid R4 (``fhir.resources`` would accept it too);
- ``StructureError``: it is invalid, for a reason ``fhir.resources`` rejects as well;
- ``Unsupported``: the resource has something this module does not know (an element or extension a
  third-party sender added) or a corner where the FHIR specification and ``fhir.resources`` disagree
  (null, empty object or array, whitespace-only string, empty uri, number given as a string, partial
  date, leap second, ``id`` longer than 64 characters). The caller must then run the full
  ``fhir.resources`` validation, which decides.

So the verdict is never more lenient nor stricter than ``fhir.resources``; ``tests/fhir_contract``
holds a differential test that proves it on mutated Observations. Codes, units, value ranges and the
contract's required elements are left to ``fhir_contract.validate``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import orjson

from fhir_contract.terminology import DEVICE_TIME_EXTENSION, GATEWAY_DEVICE_EXTENSION, RECEIVED_EXTENSION

# The R4 regexes (datatypes.html), as fhir.resources applies them: a full match on the string.
DATE_TIME = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
    r"(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
    r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?"
)
INSTANT = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
    r"-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
    r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
)
ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
# fhir.resources allows ids up to 255 characters (R4 says 64): those go to it to decide.
_LONG_ID = re.compile(r"[A-Za-z0-9\-.]{65,255}")
# The part of dateTime/instant decided here: a full time, at most microseconds, no leap second. A
# partial date, a leap second or a longer fraction is valid R4 but goes to fhir.resources.
_FULL_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:[0-5]\d(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")

Check = Callable[[Any], None]


class StructureProblem(Exception):
    """Base of the two outcomes other than valid; ``element`` is the FHIRPath-like place."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self._path: list[str] = []

    def at(self, part: str) -> StructureProblem:
        """Prepend ``part`` (``.key`` or ``[index]``) to the element; used as the error bubbles up."""
        self._path.append(part)
        return self

    @property
    def element(self) -> str:
        return "Observation" + "".join(reversed(self._path))

    def __str__(self) -> str:
        return f"{self.element}: {self.reason}"


class StructureError(StructureProblem):
    """Invalid FHIR R4, and ``fhir.resources`` rejects it too."""


class Unsupported(StructureProblem):
    """Outside what this module decides: run the full ``fhir.resources`` validation instead."""


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else type(value).__name__


def _not_a_string(value: Any) -> StructureProblem:
    if value is None:
        return Unsupported("null (fhir.resources reads it as absent)")
    if isinstance(value, str):  # a subclass: not from JSON, left to fhir.resources
        return Unsupported("string of a subclass of str")
    return StructureError(f"expected a JSON string, got {_json_type(value)}")


# --- primitives ---------------------------------------------------------------------------------


def check_string(value: Any) -> None:
    """FHIR ``string``: non-empty; whitespace-only or non-printable text is left to fhir.resources."""
    if type(value) is not str:
        raise _not_a_string(value)
    if not value:
        raise StructureError("empty string")
    if not value.isprintable() or not value.strip(" "):
        raise Unsupported("string of spaces or with control characters")


def check_code(value: Any) -> None:
    """FHIR ``code``: non-empty, no leading or trailing whitespace, single spaces inside."""
    if type(value) is not str:
        raise _not_a_string(value)
    if not value:
        raise StructureError("empty code")
    if not value.isprintable():
        raise Unsupported("code with control characters")
    if value[0] == " " or value[-1] == " " or "  " in value:
        raise StructureError(f"code {value!r} has leading, trailing or repeated whitespace")


def check_uri(value: Any) -> None:
    """FHIR ``uri``/``canonical``: non-empty, no whitespace (fhir.resources accepts any string)."""
    if type(value) is not str:
        raise _not_a_string(value)
    if not value or " " in value or not value.isprintable():
        raise Unsupported("empty uri or uri with whitespace")


def check_id(value: Any) -> None:
    """FHIR ``id``: 1-64 of A-Z a-z 0-9 - and '.'."""
    if type(value) is not str:
        raise _not_a_string(value)
    if ID.fullmatch(value):
        return
    if _LONG_ID.fullmatch(value):
        raise Unsupported("id longer than 64 characters")
    raise StructureError(f"id {value!r} is not 1-64 of A-Z, a-z, 0-9, '-' and '.'")


def check_decimal(value: Any) -> None:
    """FHIR ``decimal``: a finite JSON number (a boolean is not one)."""
    if type(value) is int:
        return
    if type(value) is float:
        if not math.isfinite(value):
            raise StructureError(f"decimal {value!r} is not a finite number")
        return
    if type(value) is bool:
        raise StructureError("expected a JSON number, got a boolean")
    raise Unsupported(f"decimal given as {_json_type(value)}")


def _check_time(value: str, pattern: re.Pattern[str], kind: str) -> None:
    if not pattern.fullmatch(value):
        raise StructureError(f"{value!r} is not a FHIR {kind}")
    if not _FULL_TIME.fullmatch(value):
        raise Unsupported(f"{kind} that is a partial date, has a leap second or over 6 fractional digits")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise StructureError(f"{value!r} is no calendar date") from None


def check_date_time(value: Any) -> None:
    """FHIR ``dateTime``: the R4 regex (a time needs a zone) and a real date."""
    if type(value) is not str:
        raise Unsupported(f"dateTime given as {_json_type(value)}")  # pydantic reads numbers as Unix time
    _check_time(value, DATE_TIME, "dateTime")


def check_instant(value: Any) -> None:
    """FHIR ``instant``: the R4 regex (to the second, zone required) and a real date."""
    if type(value) is not str:
        raise Unsupported(f"instant given as {_json_type(value)}")
    _check_time(value, INSTANT, "instant")


# --- complex types ------------------------------------------------------------------------------


def _object_problem(value: Any) -> StructureProblem:
    # fhir.resources reads null as absent and a string as JSON; a Mapping that is no dict is not JSON.
    if value is None or isinstance(value, str | Mapping):
        return Unsupported(f"object given as {_json_type(value)}")
    return StructureError(f"expected a JSON object, got {_json_type(value)}")


def _fields(value: dict[str, Any], fields: Mapping[str, Check]) -> None:
    if not value:
        raise Unsupported("empty object")
    for key, item in value.items():
        check = fields.get(key)
        if check is None:
            raise Unsupported("element unknown to the fast check").at(f".{key}")
        try:
            check(item)
        except StructureProblem as problem:
            raise problem.at(f".{key}") from None


def _required(value: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        if name not in value:
            raise StructureError("required element is missing").at(f".{name}")


def complex_type(fields: Mapping[str, Check], required: tuple[str, ...] = ()) -> Check:
    """A checker for a complex type with exactly ``fields`` (unknown ones are Unsupported)."""

    def check(value: Any) -> None:
        if type(value) is not dict:
            raise _object_problem(value)
        _fields(value, fields)
        if required:
            _required(value, required)

    return check


def array(item: Check, *, primitive: bool = False) -> Check:
    """A checker for a repeating element; null items are an error in complex arrays only."""

    def check(value: Any) -> None:
        if type(value) is not list:
            if value is None or not isinstance(value, str | int | float | dict):
                raise Unsupported(f"array given as {_json_type(value)}")
            raise StructureError(f"expected a JSON array, got {_json_type(value)}")
        if not value:
            raise Unsupported("empty array")
        for index, element in enumerate(value):
            if element is None:
                problem: StructureProblem = (
                    Unsupported("null item") if primitive else StructureError("null item in an array")
                )
                raise problem.at(f"[{index}]")
            try:
                item(element)
            except StructureProblem as problem:
                raise problem.at(f"[{index}]") from None

    return check


CODING = complex_type({"system": check_uri, "code": check_code, "display": check_string})
CODEABLE_CONCEPT = complex_type({"coding": array(CODING), "text": check_string})
REFERENCE = complex_type({"reference": check_string})
QUANTITY = complex_type(
    {"value": check_decimal, "unit": check_string, "system": check_uri, "code": check_code}
)
IDENTIFIER = complex_type({"system": check_uri, "value": check_string})
META = complex_type(
    {"profile": array(check_uri, primitive=True), "security": array(CODING), "lastUpdated": check_instant}
)

# The contract's extensions: url -> (its value[x] element, that element's check).
EXTENSIONS: dict[str, tuple[str, Check]] = {
    GATEWAY_DEVICE_EXTENSION: ("valueReference", REFERENCE),
    DEVICE_TIME_EXTENSION: ("valueString", check_string),
    RECEIVED_EXTENSION: ("valueDateTime", check_date_time),
}


def check_extension(value: Any) -> None:
    """One of the contract's extensions with its value[x]; any other url is Unsupported."""
    if type(value) is not dict:
        raise _object_problem(value)
    url = value.get("url")
    known = EXTENSIONS.get(url) if type(url) is str else None
    if known is None:
        raise Unsupported(f"extension {url!r} unknown to the fast check")
    value_key, check = known
    _fields(value, {"url": check_uri, value_key: check})
    if value_key not in value:
        raise Unsupported(f"extension {url} without {value_key}")


_COMPONENT_FIELDS = {
    "code": CODEABLE_CONCEPT,
    "valueQuantity": QUANTITY,
    "valueCodeableConcept": CODEABLE_CONCEPT,
    "dataAbsentReason": CODEABLE_CONCEPT,
}


def check_component(value: Any) -> None:
    """Observation.component: a code and one value[x] (Quantity or CodeableConcept) or a reason."""
    if type(value) is not dict:
        raise _object_problem(value)
    _fields(value, _COMPONENT_FIELDS)
    _required(value, ("code",))
    if "valueQuantity" in value and "valueCodeableConcept" in value:
        raise StructureError("more than one value[x]: valueQuantity and valueCodeableConcept")


def check_resource_type(value: Any) -> None:
    """``resourceType``: "Observation" (fhir.resources also takes it absent)."""
    if value == "Observation" and type(value) is str:
        return
    if type(value) is str:
        raise StructureError(f"resourceType {value!r} is not 'Observation'")
    raise Unsupported(f"resourceType given as {_json_type(value)}")


_OBSERVATION_FIELDS: dict[str, Check] = {
    "resourceType": check_resource_type,
    "id": check_id,
    "meta": META,
    "extension": array(check_extension),
    "identifier": array(IDENTIFIER),
    "status": check_code,
    "category": array(CODEABLE_CONCEPT),
    "code": CODEABLE_CONCEPT,
    "subject": REFERENCE,
    "effectiveDateTime": check_date_time,
    "device": REFERENCE,
    "interpretation": array(CODEABLE_CONCEPT),
    "bodySite": CODEABLE_CONCEPT,
    "valueQuantity": QUANTITY,
    "dataAbsentReason": CODEABLE_CONCEPT,
    "component": array(check_component),
}


# Elements that repeat from one Observation to the next (the same codes, references, profiles and
# often the same value): their verdict "valid" is remembered, keyed by the element's name and its exact
# JSON text, so most Observations check only their identifier, times and new values. orjson's text is
# exact about JSON types (1, 1.0 and true differ); the only values it writes alike are null, NaN and
# infinity, none of which is ever remembered as valid. Python objects that are not JSON (datetime,
# subclasses) do not serialize with these options, and are checked every time.
_MEMOIZED = frozenset(
    {
        "meta",
        "extension",
        "category",
        "code",
        "subject",
        "device",
        "interpretation",
        "bodySite",
        "valueQuantity",
        "dataAbsentReason",
        "component",
    }
)
_MEMO_LIMIT = 8192
_EXACT_JSON = (
    orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS
)
_known_valid: set[tuple[str, bytes]] = set()


def _check_memoized(name: str, check: Check, value: Any) -> None:
    try:
        key = (name, orjson.dumps(value, option=_EXACT_JSON))
    except TypeError:  # not plain JSON (orjson.JSONEncodeError is a TypeError)
        check(value)
        return
    if key in _known_valid:
        return
    check(value)
    if len(_known_valid) >= _MEMO_LIMIT:
        _known_valid.clear()
    _known_valid.add(key)


def check_observation(resource: Mapping[str, Any]) -> None:
    """Check an Observation's structure; raises StructureError (invalid) or Unsupported (ask
    fhir.resources). ``resource["resourceType"] == "Observation"`` is the caller's to check."""
    if type(resource) is not dict:
        raise Unsupported("resource is not a plain dict")
    if not resource:
        raise Unsupported("empty object")
    for key, item in resource.items():
        check = _OBSERVATION_FIELDS.get(key)
        if check is None:
            raise Unsupported("element unknown to the fast check").at(f".{key}")
        try:
            if key in _MEMOIZED and type(item) in (dict, list):
                _check_memoized(key, check, item)
            else:
                check(item)
        except StructureProblem as problem:
            raise problem.at(f".{key}") from None
    _required(resource, ("status", "code"))
