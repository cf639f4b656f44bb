"""Coverage-guided fuzzing of ingest's decision with atheris (libFuzzer for Python).

Run: ``python tests/gateway/ingest/atheris_ingest.py [-runs=N] [libFuzzer options]`` (``make faults`` runs it
long; ``test_ingest_fuzz`` briefly). It starts from a corpus of valid hub Bundles, so the mutations
explore the space near what hubs really send, where a value that slips through does harm.

The property, on any bytes as a hub's message: ``process_message`` decides without raising; every
entry is accepted or rejected with a reason; every accepted Observation can be stored (its ids and
identifier are what the database takes, its time is inside the contract's window and storage's month
arithmetic works on it); and what the hub is answered, and what the quarantine keeps, can be written.
An exception is a crash that libFuzzer reports with the input that caused it.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import atheris
import orjson

# Coverage of the code the decision runs: homewatch's packages and the FHIR models and pydantic under
# them (found with sys.setprofile over mutated Bundles). The rest these imports pull in (psycopg, asyncio,
# yaml, email, the standard library) is not instrumented: that took ~25 s of every start, for a few
# edges of the standard library's own (5000 runs: 1286 edges instead of 1362).
with atheris.instrument_imports(include=["fhir_contract", "gateway", "fhir", "fhir_core", "pydantic"]):
    from fhir_contract.limits import EFFECTIVE_FLOOR, FHIR_ID, IDENTIFIER_VALUE, MAX_CLOCK_AHEAD
    from gateway.ingest.processing import error_report, process_message, receipt
    from gateway.ingest.storing import quarantine_entries
    from gateway.store.partitions import month_of
    from gateway.store.repository import HubAssignment

from fhir_contract.observation import build_bundle, build_observation
from fhir_contract.readings import Component, Quantity, Reading

TOPIC = "homewatch/v1/0101/hub1/observations"
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
ASSIGNMENT = HubAssignment("0101", "hub1", "p1", frozenset({"OXI1", "BPC1"}))


def lookup(municipality_id: str, hub_id: str) -> HubAssignment | None:
    return ASSIGNMENT if (municipality_id, hub_id) == ("0101", "hub1") else None


def one_input(data: bytes) -> None:
    outcome = process_message(TOPIC, data, lookup, 1_000_000, NOW)
    rejected = {r.index for r in outcome.rejections if r.index is not None}
    if not outcome.message_rejected:
        assert len(rejected) + len(outcome.accepted) == outcome.entries, outcome
    assert all(r.reason and r.code for r in outcome.rejections)
    for obs in outcome.accepted:
        assert FHIR_ID.fullmatch(obs.patient_id) and FHIR_ID.fullmatch(obs.device_id)
        assert IDENTIFIER_VALUE.fullmatch(obs.identifier)
        assert EFFECTIVE_FLOOR <= obs.effective <= NOW + MAX_CLOCK_AHEAD
        month_of(obs.effective)
        orjson.dumps(obs.resource)
    report = orjson.dumps(error_report(outcome))
    assert len(report) < 900_000
    receipt(outcome)
    quarantine_entries(outcome, data)


def seed_corpus(directory: Path) -> None:
    """Valid Bundles as the hub sends them: an SpO2, a pulse, a blood pressure; one, two, three."""
    at = NOW - timedelta(hours=2)
    spo2 = Reading("spo2", Quantity(Decimal("95"), "%"))
    pressure = Reading(
        "blood-pressure",
        components=(
            Component("systolic", Quantity(Decimal("120"), "mm[Hg]")),
            Component("diastolic", Quantity(Decimal("80"), "mm[Hg]")),
        ),
    )
    observations = [
        build_observation(spo2, patient_id="p1", device_id="OXI1", hub_id="hub1", effective=at),
        build_observation(pressure, patient_id="p1", device_id="BPC1", hub_id="hub1", effective=at),
        build_observation(spo2, patient_id="p2", device_id="OXI9", hub_id="hub9", effective=at),
    ]
    for n in range(1, len(observations) + 1):
        bundle = build_bundle(observations[:n], bundle_id=f"seed-{n}", timestamp=at)
        (directory / f"seed-{n}.json").write_bytes(orjson.dumps(bundle))


def main(argv: list[str]) -> None:
    corpus = Path(tempfile.mkdtemp(prefix="homewatch-atheris-"))
    seed_corpus(corpus)
    atheris.Setup([argv[0], str(corpus), "-max_len=20000", *argv[1:]], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
