"""The contract's examples in ``fhir/examples/``, generated from the builders so they never drift.

One Observation per reading type of the terminology, an intermediate (preliminary) cuff pressure, a
sensor Device, a gateway Device and a batch Bundle. ``python -m fhir_contract.examples --write``
rewrites the files; without ``--write`` it reports the files that differ from what the builders make
now and exits 1 if any do (a test runs the same check).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from fhir_contract.device import DeviceVersions, build_gateway_device, build_sensor_device
from fhir_contract.observation import FhirJson, build_bundle, build_observation
from fhir_contract.readings import Absent, Component, Quantity, Reading
from fhir_contract.terminology import contract_dir, reading_types

PATIENT_ID = "example-patient"
SENSOR_ADDRESS = "00-E5-DE-AD-77-C3"
SENSOR_ID = "00E5DEAD77C3"
HUB_ID = "hub-example"
HUB_SYSTEM_ID = "FE-ED-AB-EE-DE-AD-77-C3"
EFFECTIVE = datetime(2026, 11, 2, 7, 30, tzinfo=UTC)
DEVICE_TIME = datetime(2026, 11, 2, 8, 30)  # the device's local wall clock, one hour ahead of UTC
RECEIVED = datetime(2026, 11, 2, 7, 30, 4, tzinfo=UTC)

# One plausible value per single-valued reading type, in the type's first unit. A new type in
# fhir/terminology.json needs a line here (a test fails until it has one).
_VALUES: dict[str, str] = {
    "pulse-rate-cuff": "68",
    "pulse-rate-oximeter": "71",
    "heart-rate": "72",
    "spo2": "97",
    "body-temperature": "36.8",
    "body-weight": "72.35",
    "body-height": "175.3",
    "bmi": "23.5",
    "respiratory-rate": "16",
    "spo2-fast": "96",
    "spo2-slow": "97",
    "pulse-rate-oximeter-fast": "73",
    "pulse-rate-oximeter-slow": "70",
    "rr-interval": "812.5",
    "energy-expended": "1234",
    "body-fat-percentage": "22.5",
    "fat-free-mass": "56.1",
    "soft-lean-mass": "52.9",
    "body-water-mass": "40.2",
    "body-impedance": "512.3",
    "basal-metabolism": "6500",
    "muscle-percentage": "40.1",
    "muscle-mass": "36.2",
    "glucose-capillary-whole-blood": "97",
    "glucose-capillary-plasma": "104",
    "glucose-venous-whole-blood": "95",
    "glucose-venous-plasma": "101",
    "glucose-arterial-whole-blood": "96",
    "glucose-arterial-plasma": "102",
    "glucose-undetermined-whole-blood": "98",
    "glucose-undetermined-plasma": "103",
    "cgm-glucose": "120",
    "battery-level": "75",
}
_SITES: dict[str, str] = {"body-temperature": "tympanum"}


def example_reading(kind: str) -> Reading:
    """The example reading of type ``kind``; KeyError if the table above has none."""
    if kind == "blood-pressure":
        return Reading(
            kind,
            components=(
                Component("systolic", Quantity(Decimal("128"), "mm[Hg]")),
                Component("diastolic", Quantity(Decimal("82"), "mm[Hg]")),
                Component("mean", Quantity(Decimal("97"), "mm[Hg]")),
            ),
            device_time=DEVICE_TIME,
        )
    unit = reading_types()[kind].units[0]
    return Reading(
        kind, Quantity(Decimal(_VALUES[kind]), unit), device_time=DEVICE_TIME, body_site=_SITES.get(kind)
    )


def intermediate_cuff_pressure_reading() -> Reading:
    """What 0x2A36 gives while the cuff inflates: the cuff pressure as systolic, the rest NaN."""
    return Reading(
        "blood-pressure",
        components=(
            Component("systolic", Quantity(Decimal("142"), "mm[Hg]")),
            Component("diastolic", Absent("not-a-number")),
            Component("mean", Absent("not-a-number")),
        ),
    )


def _observation(reading: Reading, *, preliminary: bool = False) -> FhirJson:
    return build_observation(
        reading,
        patient_id=PATIENT_ID,
        device_id=SENSOR_ID,
        hub_id=HUB_ID,
        effective=EFFECTIVE,
        received=RECEIVED,
        preliminary=preliminary,
    )


def examples() -> dict[str, FhirJson]:
    """Every example, by file name."""
    out: dict[str, FhirJson] = {}
    for kind in reading_types():
        obs = _observation(example_reading(kind))
        obs["id"] = f"example-{kind}"
        out[f"Observation-{kind}.json"] = obs
    intermediate = _observation(intermediate_cuff_pressure_reading(), preliminary=True)
    intermediate["id"] = "example-blood-pressure-intermediate"
    out["Observation-blood-pressure-intermediate.json"] = intermediate
    out["Device-sensor.json"] = build_sensor_device(
        SENSOR_ID,
        "blood-pressure-monitor",
        bluetooth_address=SENSOR_ADDRESS,
        system_id="FE-ED-AB-EE-00-E5-DE-AD",
        manufacturer="Example Medical",
        model="BP-100",
        serial_number="SN-0001",
        versions=DeviceVersions(hardware="1.0", software="2.3.1", firmware="2.3"),
        patient_id=PATIENT_ID,
    )
    out["Device-gateway.json"] = build_gateway_device(
        HUB_ID, HUB_SYSTEM_ID, manufacturer="homewatch", model="hub", software_version="0.1.0"
    )
    batch = [_observation(example_reading(kind)) for kind in ("blood-pressure", "pulse-rate-cuff")]
    out["Bundle-batch.json"] = build_bundle(batch, bundle_id="example-batch", timestamp=RECEIVED)
    return out


def render(resource: FhirJson) -> str:
    """A resource as it is stored: two-space indented JSON with a final newline."""
    return json.dumps(resource, indent=2, ensure_ascii=False) + "\n"


def examples_dir() -> Path:
    """``fhir/examples/`` (or its copy inside the wheel)."""
    return contract_dir() / "examples"


def stale(directory: Path | None = None) -> list[str]:
    """File names in ``directory`` that differ from the builders' output, are missing, or are extra."""
    folder = directory or examples_dir()
    wanted = {name: render(resource) for name, resource in examples().items()}
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in folder.glob("*.json")}
    return sorted(name for name in wanted.keys() | on_disk.keys() if wanted.get(name) != on_disk.get(name))


def write(directory: Path | None = None) -> list[Path]:
    """Rewrite every example in ``directory`` and delete JSON files that are no example any more."""
    folder = directory or examples_dir()
    folder.mkdir(parents=True, exist_ok=True)
    wanted = examples()
    for path in folder.glob("*.json"):
        if path.name not in wanted:
            path.unlink()
    paths = []
    for name, resource in wanted.items():
        path = folder / name
        path.write_text(render(resource), encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """Check the examples (exit 1 if stale) or, with ``--write``, regenerate them."""
    parser = argparse.ArgumentParser(prog="python -m fhir_contract.examples", description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite fhir/examples/ from the builders")
    args = parser.parse_args(argv)
    if args.write:
        print(f"wrote {len(write())} examples to {examples_dir()}")
        return 0
    differing = stale()
    for name in differing:
        print(f"stale: {name}", file=sys.stderr)
    return 1 if differing else 0


if __name__ == "__main__":
    raise SystemExit(main())
