"""A third-party FHIR client (fhirpy) against the real app served by uvicorn over a real database.

A hub posts a batch Bundle over HTTP, and fhirpy's ``SyncFHIRClient`` with a bearer token searches what
is stored by patient, code and date range, sorts, pages through ``next`` links (``fetch_all``) and reads
an Observation, a Patient and a Device by id: what an integrating system would do.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import orjson
import psycopg
import pytest
import requests
import uvicorn
from fastapi import FastAPI
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ResourceNotFound
from seed import PASSWORD, World, device

from fhir_contract.observation import build_bundle, build_observation
from fhir_contract.readings import Quantity, Reading
from gateway.api.auth import mint_token
from gateway.settings import GatewaySettings

START_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 10.0


@pytest.fixture
def server_url(app: FastAPI) -> Iterator[str]:
    """The app served by uvicorn on a free 127.0.0.1 port (the socket is bound first: no race)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="http", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT_S)
        sock.close()


@pytest.fixture
def fhir(server_url: str, world: World) -> SyncFHIRClient:
    """fhirpy with the bearer token a nurse gets from the login endpoint."""
    response = requests.post(
        f"{server_url}/login/access-token",
        data={"username": world.nurse, "password": PASSWORD},
        timeout=REQUEST_TIMEOUT_S,
    )
    response.raise_for_status()
    return SyncFHIRClient(
        f"{server_url}/fhir",
        authorization=f"Bearer {response.json()['access_token']}",
        requests_config={"timeout": REQUEST_TIMEOUT_S},
    )


@pytest.fixture
def posted(
    server_url: str, world: World, settings: GatewaySettings, db: psycopg.Connection[Any]
) -> list[str]:
    """Three SpO2 readings of p-none that its hub posted over HTTP; their identifiers."""
    device(db, world.own, "p-none", "OXI9", "pulse-oximeter", "00:e5:de:ad:77:c3")
    observations = [
        build_observation(
            Reading("spo2", Quantity(Decimal(value), "%")),
            patient_id="p-none",
            device_id="OXI9",
            hub_id="hub-p-none",
            effective=world.now - timedelta(minutes=minutes),
        )
        for value, minutes in (("97", 30), ("96", 20), ("95", 10))
    ]
    token = mint_token(settings, role="hub", municipality_id=world.own, subject="hub-p-none")
    response = requests.post(
        f"{server_url}/fhir",
        data=orjson.dumps(build_bundle(observations)),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
        timeout=REQUEST_TIMEOUT_S,
    )
    assert response.status_code == 200, response.text
    assert [e["response"]["status"] for e in response.json()["entry"]] == ["201 Created"] * 3
    return [o["identifier"][0]["value"] for o in observations]


def _values(resources: list[Any]) -> list[float]:
    return [r["valueQuantity"]["value"] for r in resources]


def test_fhirpy_searches_by_patient_code_and_date_range(fhir: SyncFHIRClient, world: World) -> None:
    times = world.paged_times  # newest first, an hour apart; SpO2 91 (newest) .. 95
    spo2 = fhir.resources("Observation").search(
        patient=f"Patient/{world.paged_patient}", code="http://loinc.org|59408-5"
    )
    assert _values(spo2.fetch_all()) == [91, 92, 93, 94, 95]
    in_range = spo2.search(date__ge=times[3], date__le=times[1])
    assert _values(in_range.fetch_all()) == [92, 93, 94]
    other_code = fhir.resources("Observation").search(patient=world.paged_patient, code="8867-4")
    assert _values(other_code.fetch_all()) == [95]


def test_fhirpy_sorts_and_pages_with_fetch_all(fhir: SyncFHIRClient, world: World) -> None:
    search = fhir.resources("Observation").search(patient=world.paged_patient, code="59408-5").limit(2)
    assert _values(search.sort("date").fetch_all()) == [95, 94, 93, 92, 91]
    assert _values(search.sort("-date").fetch_all()) == [91, 92, 93, 94, 95]
    assert _values(search.sort("-date").fetch()) == [91, 92]  # one page only


def test_fhirpy_reads_what_a_hub_posted_and_its_patient_and_device(
    fhir: SyncFHIRClient, world: World, posted: list[str]
) -> None:
    found = fhir.resources("Observation").search(patient="p-none").sort("date").fetch_all()
    assert [r["identifier"][0]["value"] for r in found] == posted
    read = fhir.reference("Observation", found[0]["id"]).to_resource()
    assert read["id"] == found[0]["id"] and read["valueQuantity"]["value"] == 97
    patient = fhir.reference("Patient", "p-none").to_resource()
    assert patient["name"][0]["text"] == "Nina None"
    oximeter = fhir.reference("Device", "OXI9").to_resource()
    assert oximeter["patient"]["reference"] == "Patient/p-none" and oximeter["status"] == "active"
    assert fhir.reference(reference=read["device"]["reference"]).to_resource()["id"] == "OXI9"


def test_fhirpy_sees_another_municipalitys_patient_as_not_found(fhir: SyncFHIRClient, world: World) -> None:
    with pytest.raises(ResourceNotFound):
        fhir.reference("Patient", world.other_patient).to_resource()
    assert fhir.resources("Observation").search(patient=world.other_patient).fetch_all() == []
