"""End to end, with real parts only: emulated Bluetooth devices (Bumble, real ATT/GATT) -> the hub
agent (bleak, outbox, paho) -> a real broker (Mosquitto and amqtt) -> the gateway as the demo and
``gateway serve`` run it (ingest worker processes, PostgreSQL, NOTIFY to the NEWS2 scorer, web UI and
FHIR API).

Asserts that what the devices measured arrives in the database with the right values, that every
artefact (SpO2 127 %) leaves its hub as a reading without a value, with the reason and the number
the device sent, never as a number, and that the deteriorating SYNTHETIC patient ranks above the stable
one on the nurse's worklist and raises an alert.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from gateway.broker import BrokerEndpoint, free_port
from gateway.service import Gateway, GatewayOptions
from homewatch.demo.clock import SimClock
from homewatch.demo.home import SimulatedHome, create_homes, wait_until_delivered
from homewatch.demo.provision import MUNICIPALITIES, provision
from models.cohort.synthetic import make_cohort, schedule

pytestmark = pytest.mark.e2e

ZONE = ZoneInfo("Europe/Copenhagen")
DAYS = 8
# Device resolution: whole mmHg, %, /min; 0.1 Cel; 5 g.
TOLERANCE = {
    "spo2": 0.5,
    "pulse": 0.5,
    "systolic": 0.5,
    "diastolic": 0.5,
    "temperature": 0.05,
    "weight": 0.0025,
}


def _stored(database_url: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT patient_id, kind, effective, value, components FROM observations ORDER BY effective"
        ).fetchall()
    return [dict(zip(("patient", "kind", "effective", "value", "components"), r, strict=True)) for r in rows]


def _expected(home: SimulatedHome) -> list[tuple[str, datetime, str, float]]:
    """(kind, effective, vital, value) for every value a device of ``home`` measured; a glitched SpO2 is
    excluded but the pulse rate measured with it is not (one bad Observation spares its neighbours)."""
    out = []
    for taken in home.stats.taken:
        at = taken.device_time.replace(tzinfo=ZONE)
        r = taken.reading
        if taken.artefact:
            out.append(("pulse-rate-oximeter", at, "pulse", r.pulse))
        elif r.kind == "blood-pressure":
            out += [
                ("blood-pressure", at, "systolic", r.systolic),
                ("blood-pressure", at, "diastolic", r.diastolic),
                ("pulse-rate-cuff", at, "pulse", r.pulse),
            ]
        elif r.kind == "spo2":
            out += [("spo2", at, "spo2", r.spo2), ("pulse-rate-oximeter", at, "pulse", r.pulse)]
        elif r.kind == "body-weight":
            out.append(("body-weight", at, "weight", r.weight))
        else:
            out.append(("body-temperature", at, "temperature", r.temperature))
    return [(k, at, vital, float(v)) for k, at, vital, v in out if v is not None]


async def _run_homes(
    endpoint: BrokerEndpoint, database_url: str, tmp_path: Path
) -> tuple[list[SimulatedHome], str, dict[str, str]]:
    end = datetime.now(ZONE).replace(second=0, microsecond=0)
    start = (end - timedelta(days=DAYS)).replace(hour=0, minute=0)
    clock = SimClock(start, speed=DAYS * 86_400 / 6.0)  # the whole period in about 6 s
    patients = make_cohort(2, seed=11, deteriorating_fraction=0.5, days=DAYS, start=start)
    homes = await create_homes(patients, [MUNICIPALITIES[0].id], endpoint, tmp_path, clock)
    for home in homes:
        home.artefact_rate = 0.2  # enough oximeter glitches that the rejection path surely runs
    with psycopg.connect(database_url, autocommit=True) as conn:
        logins = provision(conn, homes)
    gateway = Gateway(GatewayOptions(database_url=database_url, broker=endpoint, port=free_port(), demo=True))
    await asyncio.to_thread(gateway.start)
    try:
        for home in homes:
            await home.start()
        clock.reset()
        async with asyncio.timeout(60):
            await asyncio.gather(
                *(home.play(schedule(home.patient, start, DAYS, 11), clock, 11) for home in homes)
            )
            await wait_until_delivered(homes, gateway)
        # The demo puts the two patients in two care teams (one nurse each); their GP sees both.
        gp = next(login for login in logins if login.role == "gp")
        worklist = await asyncio.to_thread(_worklist_page, gateway.url, gp.username, gp.password)
        views = {
            home.patient.id: await asyncio.to_thread(_patient_view_trends, home.view.url, home.view.pin)
            for home in homes
            if home.view.url is not None
        }
        return homes, worklist, views
    finally:
        for home in homes:
            await home.close()
        await asyncio.to_thread(gateway.stop)


def _patient_view_trends(url: str, pin: str) -> str:
    """The home's own patient view (the hub serves it): the PIN, then the patient's last 30 days."""
    with httpx.Client(base_url=url, follow_redirects=True, timeout=10) as client:
        form = client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        assert client.post("/login", data={"pin": pin, "csrf": token[1]}).status_code == 200
        page = client.get("/trends")
        assert page.status_code == 200
        return page.text


def _worklist_page(url: str, username: str, password: str) -> str:
    with httpx.Client(base_url=url, follow_redirects=True, timeout=10) as client:
        metadata = client.get("/fhir/metadata")
        assert metadata.status_code == 200 and metadata.json()["resourceType"] == "CapabilityStatement"
        form = client.get("/login")  # the login form's anti-forgery token and its cookie, as a browser
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        credentials = {"username": username, "password": password, "csrf": token[1]}
        assert client.post("/login", data=credentials).status_code == 200
        page = client.get("/")
        assert page.status_code == 200
        return page.text


async def test_readings_flow_from_emulated_devices_to_scores_and_worklist(
    any_broker: BrokerEndpoint, database_url: str, tmp_path: Path
) -> None:
    homes, worklist, views = await _run_homes(any_broker, database_url, tmp_path)

    stored = _stored(database_url)
    for home in homes:
        expected = _expected(home)
        assert len(expected) > 50
        mine = [row for row in stored if row["patient"] == home.patient.id]
        by_key = {(row["kind"], row["effective"]): row for row in mine}
        for kind, at, vital, value in expected:
            row = by_key.get((kind, at))
            assert row is not None, f"{home.patient.id}: {kind} at {at} never arrived"
            got = row["components"][vital] if kind == "blood-pressure" else row["value"]
            assert abs(got - value) <= TOLERANCE[vital] + 1e-9, (
                f"{kind} {vital} at {at}: stored {got}, measured {value}"
            )
        # Nothing stored that no device measured; a glitch is stored as a value the device got wrong.
        glitches = [row for row in mine if row["kind"] == "spo2" and row["value"] is None]
        assert len(mine) == len({(k, at) for k, at, _, _ in expected}) + len(glitches)

    artefacts = sum(t.artefact for h in homes for t in h.stats.taken)
    with psycopg.connect(database_url) as conn:
        quarantined = conn.execute("SELECT count(*) FROM quarantine").fetchone()
        absent = conn.execute(
            "SELECT resource -> 'dataAbsentReason' FROM observations WHERE kind = 'spo2' AND value IS NULL"
        ).fetchall()
        latest = dict(
            conn.execute(
                "SELECT DISTINCT ON (patient_id) patient_id, score FROM scores WHERE method = 'news2'"
                " ORDER BY patient_id, as_of DESC, id DESC"
            ).fetchall()
        )
        alerted = {r[0] for r in conn.execute("SELECT patient_id FROM alerts")}
    # Each glitch (SpO2 127 %) left its hub as a reading without a value, never as a number: stored with
    # the reason and the number the device sent, so nothing is quarantined and no one scores 127 %.
    assert artefacts > 0
    assert quarantined == (0,)
    assert len(absent) == artefacts
    for (reason,) in absent:
        assert reason["coding"][0]["code"] == "error"
        assert "127" in reason["text"]

    # Each hub's patient view shows its own patient's readings (kept on the hub), in Danish.
    assert sorted(views) == sorted(h.patient.id for h in homes)
    for home in homes:
        last_bp = max(
            (t for t in home.stats.taken if t.reading.kind == "blood-pressure"), key=lambda t: t.device_time
        )
        page = views[home.patient.id]
        assert "Blodtryk" in page and f"{last_bp.reading.systolic:g}/{last_bp.reading.diastolic:g}" in page

    sick = next(h.patient for h in homes if h.patient.deteriorating)
    well = next(h.patient for h in homes if not h.patient.deteriorating)
    assert latest[sick.id] > latest[well.id]
    assert sick.id in alerted and well.id not in alerted
    # The worklist lists the deteriorating patient first.
    order = [
        m.start() for name in (sick.name, well.name) for m in [re.search(re.escape(name), worklist)] if m
    ]
    assert len(order) == 2 and order[0] < order[1], "the deteriorating patient must rank first"
