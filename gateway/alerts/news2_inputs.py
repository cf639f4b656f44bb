"""From stored readings to NEWS2 inputs: which reading stands for which NEWS2 parameter.

Pure: takes the newest final reading of each kind (as of the moment scored) and returns
``models.news2.VitalSigns``. The readings are never preliminary ones (a cuff's pressure while inflating
is no blood pressure): ``gateway.store.evaluation_reads`` and ``repository.latest_observations`` pass
them over. A home measures SpO2, pulse, blood pressure and temperature; respiration rate only when a
device sends it, and consciousness and supplemental oxygen never: those stay missing and NEWS2 says so.
Values are read in their canonical unit, stored at ingest (a thermometer in Fahrenheit scores as one in
Celsius); nothing is converted here. Any row with the canonical fields will do (``CanonicalValues``):
the scorer's ``ScoringReading``, the repository's ``StoredObservation``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from models.news2 import Measured, VitalSigns

#: Stored kinds that feed NEWS2.
NEWS2_KINDS = (
    "spo2",
    "blood-pressure",
    "pulse-rate-oximeter",
    "pulse-rate-cuff",
    "heart-rate",
    "body-temperature",
    "respiratory-rate",
)
_PULSE_KINDS = ("pulse-rate-oximeter", "pulse-rate-cuff", "heart-rate")


class CanonicalValues(Protocol):
    """A stored reading as NEWS2 reads it: when, and its value(s) in the canonical unit."""

    @property
    def effective(self) -> datetime: ...

    @property
    def canonical_value(self) -> float | None: ...

    @property
    def canonical_components(self) -> Mapping[str, float | None]: ...


def _measured(obs: CanonicalValues | None) -> Measured | None:
    if obs is None or obs.canonical_value is None:
        return None
    return Measured(obs.canonical_value, obs.effective)


def vitals_from_observations(latest: Mapping[str, CanonicalValues], *, scale2: bool) -> VitalSigns:
    """NEWS2 inputs from the newest reading per kind; the newest pulse of any device wins."""
    pulses = [latest[k] for k in _PULSE_KINDS if k in latest and latest[k].canonical_value is not None]
    pulse = max(pulses, key=lambda o: o.effective, default=None)
    bp = latest.get("blood-pressure")
    systolic = bp.canonical_components.get("systolic") if bp is not None else None
    return VitalSigns(
        respiration_rate=_measured(latest.get("respiratory-rate")),
        spo2=_measured(latest.get("spo2")),
        systolic_bp=Measured(systolic, bp.effective) if bp is not None and systolic is not None else None,
        pulse=_measured(pulse),
        temperature=_measured(latest.get("body-temperature")),
        on_oxygen=None,
        acvpu=None,
        scale2=scale2,
    )
