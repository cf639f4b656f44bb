"""How fast the gateway can check Observations against the contract, next to parsing them alone.

Prints Observations per second for: orjson parsing only (the floor), and ``validate_observation``
(fhir.resources R4B + the contract's codes, units and ranges), on the same 10-Observation batch
Bundles a hub sends. The ratio is the figure that matters: it says how much of ingest's CPU goes to
validation (DESIGN.md expects fhir.resources at about 0.2 ms per Observation).

    .venv/bin/python bench/contract_validation.py [--bundles 500]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson

from edge_agent.readings import Component, Quantity, Reading
from fhir_contract.observation import build_bundle, build_observation
from fhir_contract.validate import parse_bundle, validate_observation


def _bundle(i: int) -> bytes:
    at = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=i)
    readings = [
        Reading("spo2", Quantity(Decimal(95 + i % 4), "%")),
        Reading("pulse-rate-oximeter", Quantity(Decimal(70 + i % 9), "/min")),
        Reading(
            "blood-pressure",
            components=(
                Component("systolic", Quantity(Decimal(120 + i % 30), "mm[Hg]")),
                Component("diastolic", Quantity(Decimal(80 + i % 10), "mm[Hg]")),
            ),
        ),
        Reading("pulse-rate-cuff", Quantity(Decimal(68), "/min")),
        Reading("body-weight", Quantity(Decimal("81.350"), "kg")),
        Reading("body-temperature", Quantity(Decimal("36.9"), "Cel")),
    ]
    obs = [
        build_observation(
            readings[j % len(readings)],
            patient_id="p-1",
            device_id=f"d-{j}",
            hub_id="h-1",
            effective=at + timedelta(seconds=j),
        )
        for j in range(10)
    ]
    return orjson.dumps(build_bundle(obs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=int, default=500)
    args = parser.parse_args()
    payloads = [_bundle(i) for i in range(args.bundles)]
    count = 10 * len(payloads)
    print(f"{len(payloads)} Bundles of 10 Observations, {len(payloads[0]):,} bytes each")

    start = time.perf_counter()
    for payload in payloads:
        orjson.loads(payload)
    parse_rate = count / (time.perf_counter() - start)

    start = time.perf_counter()
    for payload in payloads:
        for resource in parse_bundle(payload, max_bytes=1_000_000).resources:
            validate_observation(resource)
    validate_rate = count / (time.perf_counter() - start)

    print(f"orjson parse only:                {parse_rate:12,.0f} Observations/s")
    print(
        f"parse + contract validation:      {validate_rate:12,.0f} Observations/s "
        f"({1000 / validate_rate:.3f} ms each)"
    )
    print(f"ratio validation / parse:         {validate_rate / parse_rate:12.4f}")


if __name__ == "__main__":
    main()
