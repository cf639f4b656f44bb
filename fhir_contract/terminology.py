"""The reading types of the contract (``fhir/terminology.json``): LOINC, MDC and UCUM per reading.

A type may have no LOINC code (the MDC code stands alone), a LOINC code that depends on the unit
(glucose by mass or by moles), body sites that replace its MDC code and add a SNOMED CT ``bodySite``
(body temperature), or a supplemental type that marks it as a variant of another type sharing its MDC
code (fast- and slow-response SpO2). Every (MDC code, supplemental type) pair names one type.
"""

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
SNOMED = "http://snomed.info/sct"
IDENTIFIER_SYSTEM = "urn:homewatch:observation"
# The device's own time stamp exactly as sent (local wall time, no zone: a FHIR string, not a dateTime)
# and the hub's receipt time: kept beside the corrected effective time so a clock correction can be checked.
DEVICE_TIME_EXTENSION = "urn:homewatch:fhir:extension:device-time"
RECEIVED_EXTENSION = "urn:homewatch:fhir:extension:received-by-hub"
SUPPLEMENTAL_TYPES_CODE = "68193"
"""MDC_ATTR_SUPPLEMENTAL_TYPES: the PHD IG component whose valueCodeableConcept names a variant."""


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
class BodySite:
    """A site a reading type can be measured at: its own MDC code, extra LOINC codings, SNOMED CT site."""

    key: str
    mdc: Coding
    loinc: tuple[str, ...]
    snomed: Coding | None


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
    loinc_by_unit: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (unit, LOINC codes) replacing ``loinc``
    sites: tuple[BodySite, ...] = ()
    supplemental_type: Coding | None = None

    def loinc_for(self, unit: str | None) -> tuple[str, ...]:
        """The LOINC codes of a value in ``unit`` (the type's own when the unit has none of its own)."""
        return next((codes for u, codes in self.loinc_by_unit if u == unit), self.loinc)

    def codings(self, unit: str | None = None, site: str | None = None) -> list[Coding]:
        """Observation.code: LOINC codes (for ``unit``, then the site's), then the (site's) MDC code."""
        body_site = self.site(site) if site is not None else None
        codes = [*self.loinc_for(unit), *(body_site.loinc if body_site else ())]
        loinc = [Coding(LOINC, code, self.display if i == 0 else None) for i, code in enumerate(codes)]
        return [*loinc, body_site.mdc if body_site else self.mdc]

    def site(self, key: str) -> BodySite:
        for site in self.sites:
            if site.key == key:
                return site
        raise KeyError(f"{self.key} has no body site {key!r}; known: {', '.join(s.key for s in self.sites)}")

    def component(self, key: str) -> ComponentType:
        for component in self.components:
            if component.key == key:
                return component
        raise KeyError(f"{self.key} has no component {key!r}")


def _mdc(raw: dict[str, str]) -> Coding:
    return Coding(MDC, raw["code"], raw.get("display"))


def _site(key: str, raw: dict[str, Any]) -> BodySite:
    snomed = raw.get("snomed")
    return BodySite(
        key=key,
        mdc=_mdc(raw["mdc"]),
        loinc=tuple(raw.get("loinc", ())),
        snomed=Coding(SNOMED, snomed["code"], snomed.get("display")) if snomed else None,
    )


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
            loinc_by_unit=tuple((unit, tuple(codes)) for unit, codes in raw.get("loinc_by_unit", {}).items()),
            sites=tuple(_site(skey, site) for skey, site in raw.get("sites", {}).items()),
            supplemental_type=_mdc(raw["supplemental_type"]) if "supplemental_type" in raw else None,
        )
    return types


def reading_type(key: str) -> ReadingType:
    try:
        return reading_types()[key]
    except KeyError:
        raise KeyError(f"unknown reading type {key!r}; known: {', '.join(sorted(reading_types()))}") from None


@cache
def _by_mdc() -> dict[tuple[str, str | None], ReadingType]:
    """Each type by (MDC code, supplemental type code); site codes name their type too."""
    index: dict[tuple[str, str | None], ReadingType] = {}
    for t in reading_types().values():
        supplemental = t.supplemental_type.code if t.supplemental_type else None
        for code in (t.mdc.code, *(site.mdc.code for site in t.sites)):
            if (code, supplemental) in index:
                other = index[(code, supplemental)].key
                raise ValueError(f"{t.key} and {other} share MDC code {code}; add a supplemental type")
            index[(code, supplemental)] = t
    return index


def find_reading_type(
    codings: list[tuple[str, str]], supplemental_type: str | None = None
) -> ReadingType | None:
    """The reading type named by an Observation's codings: the MDC code decides (it tells a cuff's pulse
    rate from an oximeter's, which share LOINC 8867-4), with the MDC code of the Observation's
    supplemental-types component telling variants apart (fast SpO2 from SpO2; a supplemental type no
    variant has, such as spot-check, names the plain type). LOINC alone is accepted when it is
    unambiguous; it never names a variant."""
    for system, code in codings:
        if system == MDC:
            found = _by_mdc().get((code, supplemental_type))
            if found is None and supplemental_type is not None:
                found = _by_mdc().get((code, None))
            if found is not None:
                return found
    for system, code in codings:
        if system == LOINC:
            matches = [
                t
                for t in reading_types().values()
                if t.supplemental_type is None
                and code in {codes[0] for codes in (t.loinc, *(c for _, c in t.loinc_by_unit)) if codes}
            ]
            if len(matches) == 1:
                return matches[0]
    return None
