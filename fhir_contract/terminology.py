"""The reading types of the contract (``fhir/terminology.json``): LOINC, MDC and UCUM per reading."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

LOINC = "http://loinc.org"
MDC = "urn:iso:std:iso:11073:10101"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
PHD_CATEGORY = "http://hl7.org/fhir/uv/phd/CodeSystem/PhdObservationCategories"
DATA_ABSENT_REASON = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
GATEWAY_DEVICE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/observation-gatewayDevice"
IDENTIFIER_SYSTEM = "urn:homewatch:observation"


def contract_dir() -> Path:
    """Where the contract's data lives: inside the wheel, or ``fhir/`` at the top of a checkout."""
    packaged = Path(__file__).parent / "data"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[1] / "fhir"


@dataclass(frozen=True, slots=True)
class Coding:
    system: str
    code: str
    display: str | None = None

    def to_fhir(self) -> dict[str, str]:
        out = {"system": self.system, "code": self.code}
        if self.display:
            out["display"] = self.display
        return out


@dataclass(frozen=True, slots=True)
class ComponentType:
    key: str
    loinc: tuple[str, ...]
    mdc: Coding
    units: tuple[str, ...]
    range: tuple[float, float]


@dataclass(frozen=True, slots=True)
class ReadingType:
    """One reading type: how it is coded and which values are physically possible."""

    key: str
    display: str
    loinc: tuple[str, ...]  # the first is the code the vital-signs profile requires
    mdc: Coding
    profile: str | None
    vital_sign: bool
    units: tuple[str, ...] = ()
    range: tuple[float, float] | None = None
    components: tuple[ComponentType, ...] = ()
    required_components: tuple[str, ...] = ()

    def codings(self) -> list[Coding]:
        loinc = [Coding(LOINC, code, self.display if i == 0 else None) for i, code in enumerate(self.loinc)]
        return [*loinc, self.mdc]

    def component(self, key: str) -> ComponentType:
        for component in self.components:
            if component.key == key:
                return component
        raise KeyError(f"{self.key} has no component {key!r}")


def _mdc(raw: dict[str, str]) -> Coding:
    return Coding(MDC, raw["code"], raw.get("display"))


def _range(raw: Any) -> tuple[float, float]:
    low, high = raw
    return float(low), float(high)


@cache
def reading_types() -> dict[str, ReadingType]:
    """Every reading type of the contract, by key."""
    data = json.loads((contract_dir() / "terminology.json").read_text(encoding="utf-8"))
    types: dict[str, ReadingType] = {}
    for key, raw in data["readings"].items():
        components = tuple(
            ComponentType(ckey, tuple(c["loinc"]), _mdc(c["mdc"]), tuple(c["units"]), _range(c["range"]))
            for ckey, c in raw.get("components", {}).items()
        )
        types[key] = ReadingType(
            key=key,
            display=raw["display"],
            loinc=tuple(raw["loinc"]),
            mdc=_mdc(raw["mdc"]),
            profile=raw.get("profile"),
            vital_sign=bool(raw.get("vital_sign", False)),
            units=tuple(raw.get("units", ())),
            range=_range(raw["range"]) if "range" in raw else None,
            components=components,
            required_components=tuple(raw.get("required_components", ())),
        )
    return types


def reading_type(key: str) -> ReadingType:
    try:
        return reading_types()[key]
    except KeyError:
        raise KeyError(f"unknown reading type {key!r}; known: {', '.join(sorted(reading_types()))}") from None


@cache
def _by_mdc() -> dict[str, ReadingType]:
    return {t.mdc.code: t for t in reading_types().values()}


def find_reading_type(codings: list[tuple[str, str]]) -> ReadingType | None:
    """The reading type named by an Observation's codings: the MDC code decides (it tells a cuff's pulse
    rate from an oximeter's, which share LOINC 8867-4); LOINC alone is accepted when it is unambiguous."""
    for system, code in codings:
        if system == MDC and code in _by_mdc():
            return _by_mdc()[code]
    for system, code in codings:
        if system == LOINC:
            matches = [t for t in reading_types().values() if t.loinc[0] == code]
            if len(matches) == 1:
                return matches[0]
    return None


# Unit conversions to the first (canonical) unit of a reading type, for range checks and scoring.
_TO_CANONICAL: dict[str, tuple[str, float, float]] = {
    "[degF]": ("Cel", 5 / 9, -32 * 5 / 9),
    "[lb_av]": ("kg", 0.45359237, 0.0),
    "[in_i]": ("cm", 2.54, 0.0),
    "kPa": ("mm[Hg]", 7.500617, 0.0),
}


def to_canonical(value: float, unit: str) -> tuple[float, str]:
    """``value`` in ``unit`` converted to the reading type's first unit (identity when it already is)."""
    if unit in _TO_CANONICAL:
        target, factor, offset = _TO_CANONICAL[unit]
        return value * factor + offset, target
    return value, unit
