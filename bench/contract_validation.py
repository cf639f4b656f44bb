"""How fast the gateway can check Observations against the contract, next to parsing them alone.

Prints Observations per second, each including the Bundle's parsing, for: orjson parsing only (the
floor), ``validate_observation`` (the fast structural check of ``fhir_contract.fast_structure``,
falling back to fhir.resources for what it does not know, then the contract's codes, units and
ranges) and ``validate_observation_strict`` (fhir.resources R4B for structure every time), on the same
10-Observation batch Bundles a hub sends, with their ratios. Ingest's target is 10,000 Observations/s
on 2 cores shared with MQTT and PostgreSQL, so the fast path needs at least 40,000/s on one core.
Each figure is the best of ``--rounds`` runs, so other work on the machine disturbs it less.

    .venv/bin/python bench/contract_validation.py [--bundles 500] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson

from fhir_contract.observation import build_bundle, build_observation
from fhir_contract.readings import Component, Quantity, Reading
from fhir_contract.validate import parse_bundle, validate_observation, validate_observation_strict


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


def _rate(payloads: list[bytes], rounds: int, run: Callable[[bytes], object]) -> float:
    """Observations per second of ``run`` over all payloads, best of ``rounds``."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for payload in payloads:
            run(payload)
        best = min(best, time.perf_counter() - start)
    return 10 * len(payloads) / best


def _validate_all(validate: Callable[[dict[str, object]], object]) -> Callable[[bytes], object]:
    def run(payload: bytes) -> object:
        return [validate(resource) for resource in parse_bundle(payload, max_bytes=1_000_000).resources]

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    payloads = [_bundle(i) for i in range(args.bundles)]
    print(f"{len(payloads)} Bundles of 10 Observations, {len(payloads[0]):,} bytes each")

    parse_rate = _rate(payloads, args.rounds, orjson.loads)
    fast_rate = _rate(payloads, args.rounds, _validate_all(validate_observation))
    strict_rate = _rate(payloads, max(1, args.rounds // 2), _validate_all(validate_observation_strict))

    print(f"orjson parse only:                  {parse_rate:12,.0f} Observations/s")
    print(
        f"parse + validate (fast path):       {fast_rate:12,.0f} Observations/s "
        f"({1000 / fast_rate:.3f} ms each)"
    )
    print(
        f"parse + validate (strict, R4B):     {strict_rate:12,.0f} Observations/s "
        f"({1000 / strict_rate:.3f} ms each)"
    )
    print(f"ratio fast / strict:                {fast_rate / strict_rate:12.1f}")
    print(f"ratio fast / parse:                 {fast_rate / parse_rate:12.4f}")
    print(f"ratio strict / parse:               {strict_rate / parse_rate:12.4f}")


if __name__ == "__main__":
    main()
