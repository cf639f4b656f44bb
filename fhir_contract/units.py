"""The one table of unit conversions: each UCUM unit the contract allows besides a reading type's first
(canonical) unit, and how a value in it becomes a value in the canonical unit.

Every conversion in homewatch goes through here: the gateway's range check and the canonical value it
stores beside the original (``fhir_contract.validate``), the hub's kPa cuffs, converted to mm[Hg] before
an Observation is built (``edge_agent.gatt.blood_pressure``), and the models' offline reader of FHIR
files (``models.cohort_reader``). Migration 0006 back-fills the stored canonical values with the same
factors in SQL (``tests/gateway/store/test_canonical_columns.py`` holds the two equal).

Which units a reading type allows, and which is its first, is the terminology's business
(``fhir/terminology.json``, ``fhir_contract.terminology``); this module only knows units.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Conversion:
    """``canonical = (value + shift) * factor``: from ``unit`` to ``canonical`` (UCUM codes)."""

    unit: str
    canonical: str
    factor: Decimal
    shift: Decimal = Decimal(0)

    def apply(self, value: float) -> float:
        return (value + float(self.shift)) * float(self.factor)


# 1 mm[Hg] = 133.322387415 Pa (the conventional millimetre of mercury: 13.5951 g/cm3 under standard
# gravity, ISO 80000-4), so 1 kPa = 7.5006168 mm[Hg]; seven digits are far finer than any cuff measures.
MMHG_PER_KPA = Decimal("7.500617")
# The international avoirdupois pound is 0.45359237 kg exactly (1959 agreement).
KG_PER_LB = Decimal("0.45359237")
# The international inch is 2.54 cm exactly.
CM_PER_INCH = Decimal("2.54")
# Glucose is the only reading in mmol/L: 1 mmol/L = 18.0156 mg/dL (molar mass 180.156 g/mol).
MG_PER_DL_PER_MMOL_PER_L_GLUCOSE = Decimal("18.0156")

CONVERSIONS: Mapping[str, Conversion] = MappingProxyType(
    {
        c.unit: c
        for c in (
            Conversion("[degF]", "Cel", Decimal(5) / Decimal(9), shift=Decimal(-32)),
            Conversion("[lb_av]", "kg", KG_PER_LB),
            Conversion("[in_i]", "cm", CM_PER_INCH),
            Conversion("kPa", "mm[Hg]", MMHG_PER_KPA),
            Conversion("mmol/L", "mg/dL", MG_PER_DL_PER_MMOL_PER_L_GLUCOSE),
        )
    }
)


def to_canonical(value: float, unit: str) -> tuple[float, str]:
    """``value`` in ``unit`` converted to the canonical unit (itself, unchanged, when ``unit`` is
    canonical already or has no conversion)."""
    conversion = CONVERSIONS.get(unit)
    if conversion is None:
        return value, unit
    return conversion.apply(value), conversion.canonical


def kpa_to_mmhg(kpa: Decimal) -> Decimal:
    """A pressure in kPa in mm[Hg], exactly (the caller rounds to what the device resolves)."""
    return kpa * MMHG_PER_KPA
