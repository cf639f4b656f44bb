"""How long from a hub's MQTT publish of a reading that calls for an alert to the alert, under load.

All parts are real and started here: PostgreSQL (embedded, unless ``--database-url`` names a server
where the benchmark may create databases of its own), a Mosquitto on a free port, and the gateway as
``homewatch gateway serve --workers 2`` runs it (``gateway.service.Gateway``: two ingest worker
processes, the scorer LISTENing, the alert jobs, the HTTP server). ``--patients`` homes are enrolled
(one patient, hub and heart-rate monitor each, all in one care team with one nurse), and a publisher
process sends each hub's readings as FHIR batch Bundles of heart-rate Observations (``--bundle-size``,
one by default), at QoS 1, at ``--rate`` readings per second spread evenly over the patients, for
``--seconds`` (after ``WARMUP_S`` of the same load). Normal readings are 60-90 /min (NEWS2 0 points);
once a second one patient, a different one each time, gets a reading of 140 /min (3 points: a red
score, a ``medium`` alert) in a Bundle of its own, followed by that patient's normal readings. An
observer process measures, for each such reading, from the publish to:

- (a) the committed alert: the notification PostgreSQL delivers on ``homewatch_alert_events`` when the
  transaction holding the alert's ``raised`` event commits (LISTEN);
- (b) the event on ``GET /alerts/stream`` (server-sent events), read with a nurse's bearer token.

It prints p50/p95/p99 of both, how many alerts were raised of those expected, what share of its time
the scorer was busy, and where the time went (publish -> stored by ingest -> taken by the scorer ->
committed, from the rows' own times). Without ``--patients``/``--rate`` it runs the issue's four loads:
1,000 readings/s over 200, 1,000 and 5,000 patients, and 5,000 readings/s over 1,000 patients (5 a
Bundle: each hub sends its second's readings together), each on a fresh database, broker and gateway.
The target: p99 < 1 s from publish to the event at 1,000 readings/s over 5,000 patients, every alert
raised. It reports; it does not assert. Timings are ``time.monotonic()`` (one clock for all processes).

    .venv/bin/python bench/alert_latency.py [--patients 1000] [--rate 1000] [--seconds 30]
        [--bundle-size 1] [--database-url postgresql://...] [--verbose]
"""

from __future__ import annotations

import argparse
import logging
import math
import multiprocessing
import random
import statistics
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from multiprocessing.synchronize import Event
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from psycopg import sql
from pydantic import SecretStr

from fhir_contract.observation import build_bundle, build_observation, observation_identifier
from fhir_contract.readings import Quantity, Reading
from gateway.api.auth import mint_token
from gateway.broker import BrokerEndpoint, EmbeddedBroker, free_port
from gateway.service import Gateway, GatewayOptions
from gateway.settings import GatewaySettings
from gateway.store.alerts import EVENTS_CHANNEL
from gateway.store.embedded import EmbeddedPostgres, create_database
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.migrate import migrate
from gateway.store.repository import Municipality, Patient
from gateway.store.users import insert_user, join_care_team

MUNICIPALITY = "0101"
NURSE = "bench-nurse"
SECRET = "bench-secret-of-the-alert-latency-benchmark"
# (readings/s, patients, readings a Bundle): at 5,000/s each hub sends its readings of the second
# together; one a message, the publisher (a Python process on a shared machine) is the bottleneck.
SCENARIOS = ((1000, 200, 1), (1000, 1000, 1), (1000, 5000, 1), (5000, 1000, 5))
TARGET_P99_S = 1.0
WORKERS = 2
WARMUP_S = 3.0  # the same load before the first red reading: connections, caches, the scorer's pace
TICK_S = 0.005  # the publisher's pace: what is due is sent every tick
PUBLISH_WINDOW = 1000  # QoS 1 messages in flight from the publisher
# Messages handed to paho and not yet acknowledged, at most: paho numbers them with 16 bits, and a
# publisher that falls behind must wait rather than reuse the number of a message still in its queue.
PUBLISH_BACKLOG = 30_000
RED, NORMAL = 140, (60, 90)  # /min: 3 points, 0 points
SETTLE_S = 60.0  # after the last publish: how long ingest and the scorer may take to catch up
READY_TIMEOUT_S = 60.0


# --- the hubs' side: one publisher process ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Load:
    rate: int  # readings/s
    patients: int
    seconds: int
    bundle: int = 1  # readings per Bundle (one hub's readings of the last seconds)

    @property
    def per_patient(self) -> int:
        """Readings each patient sends at most, the red one included."""
        return math.ceil(self.rate * (WARMUP_S + self.seconds) / self.patients) + self.bundle + 1

    def __str__(self) -> str:
        per = "" if self.bundle == 1 else f" ({self.bundle} a Bundle)"
        return f"{self.rate:,} readings/s{per} over {self.patients:,} patients, {self.seconds} s"


@dataclass(frozen=True, slots=True)
class RedSent:
    patient_id: str
    published: float  # time.monotonic() just before the publish
    effective: datetime


class Hubs:
    """Every patient's next readings as its hub would send them: the contract's Observations in a batch
    Bundle, each effective one second after the patient's previous one (a reading's identifier is its
    device and second), all in the past (the gateway refuses readings from the future). Each patient's
    Observation is built once by the contract's builder; a reading fills in its time, identifier and
    value, a Bundle its id."""

    _MARKS = (b'"@ID@"', b'"@AT@"', b'"value":123.25')

    def __init__(self, load: Load) -> None:
        self._base = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=load.per_patient + 5)
        self._sent = [0] * load.patients
        bundle = build_bundle([])
        bundle["id"], bundle["entry"] = "@BUNDLE@", "@ENTRIES@"
        self._bundle = orjson.dumps(bundle)
        self._entries = [self._entry(n) for n in range(load.patients)]

    @classmethod
    def _entry(cls, n: int) -> bytes:
        observation = build_observation(
            Reading("heart-rate", Quantity(Decimal("123.25"), "/min")),
            patient_id=f"p{n}",
            device_id=f"HR{n}",
            hub_id=f"hub{n}",
            effective=datetime.now(UTC),
        )
        observation["identifier"][0]["value"] = "@ID@"
        observation["effectiveDateTime"] = "@AT@"
        [entry] = build_bundle([observation])["entry"]
        text = orjson.dumps(entry)
        assert all(text.count(mark) == 1 for mark in cls._MARKS)
        return text

    def next(self, n: int, values: Sequence[int]) -> tuple[str, bytes, datetime]:
        """Patient ``n``'s next readings of ``values``, one Bundle: (topic, payload, the first's time)."""
        entries, first = [], None
        for value in values:
            at = self._base + timedelta(seconds=self._sent[n])
            self._sent[n] += 1
            first = first or at
            identifier = observation_identifier(f"HR{n}", f"p{n}", "heart-rate", at)
            entry = self._entries[n]
            for mark, text in zip(
                self._MARKS, (f'"{identifier}"', f'"{at.isoformat()}"', f'"value":{value}'), strict=True
            ):
                entry = entry.replace(mark, text.encode())
            entries.append(entry)
        payload = self._bundle.replace(b'"@BUNDLE@"', f'"{uuid.uuid4().hex}"'.encode())
        payload = payload.replace(b'"@ENTRIES@"', b"[" + b",".join(entries) + b"]")
        assert first is not None
        return f"homewatch/v1/{MUNICIPALITY}/hub{n}/observations", payload, first


def publish(
    endpoint: BrokerEndpoint, load: Load, reds: Sequence[int], ready: Event, go: Event, out: Any
) -> None:
    """The publisher process: ``load.rate`` readings/s round the patients (``load.bundle`` a message),
    and at each second of the measured period the red reading of ``reds[second]`` alone; puts
    ``(readings sent, [RedSent])`` on ``out``."""
    hubs = Hubs(load)
    rng = random.Random(1)
    connected = threading.Event()
    acked = [0]
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="bench-hubs", protocol=MQTTProtocolVersion.MQTTv5
    )
    client.max_inflight_messages_set(PUBLISH_WINDOW)
    client.max_queued_messages_set(0)
    client.on_connect = lambda *_: connected.set()

    def on_publish(*_: object) -> None:
        acked[0] += 1  # paho's network thread; a plain int is enough for a bound

    client.on_publish = on_publish
    client.connect(endpoint.host, endpoint.port)
    client.loop_start()
    connected.wait(READY_TIMEOUT_S)
    ready.set()
    go.wait()
    messages = int(load.rate * (WARMUP_S + load.seconds)) // load.bundle
    sent, red_sent = 0, list[RedSent]()
    started = time.monotonic()
    infos: list[mqtt.MQTTMessageInfo] = []
    while sent < messages or len(red_sent) < len(reds):
        elapsed = time.monotonic() - started
        due = min(messages, int(elapsed * load.rate / load.bundle))
        while sent < due and len(infos) - acked[0] < PUBLISH_BACKLOG:
            values = [rng.randint(*NORMAL) for _ in range(load.bundle)]
            topic, payload, _ = hubs.next(sent % load.patients, values)
            infos.append(client.publish(topic, payload, qos=1))
            sent += 1
        second = len(red_sent)
        if second < len(reds) and elapsed >= WARMUP_S + second:
            topic, payload, at = hubs.next(reds[second], [RED])
            published = time.monotonic()
            infos.append(client.publish(topic, payload, qos=1))
            red_sent.append(RedSent(f"p{reds[second]}", published, at))
        time.sleep(max(0.0, TICK_S - (time.monotonic() - started - elapsed)))
    for info in infos:
        info.wait_for_publish(timeout=SETTLE_S)
    client.disconnect()
    client.loop_stop()
    out.put((sent * load.bundle + len(red_sent), red_sent))


# --- the other end: one observer process --------------------------------------------------------------


def observe(database_url: str, stream_url: str, token: str, ready: Event, stop: Event, out: Any) -> None:
    """The observer process: the first alert event per patient, as LISTEN hears the commit and as the
    live stream sends it; puts ``(committed, streamed, stream_note)`` on ``out``."""
    committed: dict[str, float] = {}
    streamed: dict[str, float] = {}
    listening, streaming = threading.Event(), threading.Event()
    notes: list[str] = []

    def listen() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(EVENTS_CHANNEL)))
            listening.set()
            while not stop.is_set():
                for note in conn.notifies(timeout=0.5):
                    heard = time.monotonic()
                    committed.setdefault(orjson.loads(note.payload)["p"], heard)

    def stream() -> None:
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(10.0, read=None)) as http,
                http.stream("GET", stream_url, headers=headers) as response,
            ):
                if response.status_code != 200:
                    notes.append(f"GET /alerts/stream answered {response.status_code}: skipped")
                    return
                streaming.set()
                event = ""
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        event = line.partition(":")[2].strip()
                    elif line.startswith("data:") and event == "alert":
                        data = orjson.loads(line.partition(":")[2])
                        if data.get("action") == "raised":
                            streamed.setdefault(str(data["patient_id"]), time.monotonic())
        except httpx.HTTPError as exc:
            notes.append(f"GET /alerts/stream failed ({exc!r}): skipped")
        finally:
            streaming.set()

    threading.Thread(target=listen, daemon=True).start()
    threading.Thread(target=stream, daemon=True).start()
    listening.wait(READY_TIMEOUT_S)
    streaming.wait(READY_TIMEOUT_S)
    ready.set()
    stop.wait()
    out.put((dict(committed), dict(streamed), "; ".join(notes)))


# --- one run -------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    load: Load
    expected: int
    raised: int
    committed: list[float] = field(default_factory=list)
    streamed: list[float] = field(default_factory=list)
    stream_note: str = ""
    stages: dict[str, list[float]] = field(default_factory=dict)
    sent: int = 0
    stored: int = 0
    other_alerts: dict[str, int] = field(default_factory=dict)  # alerts not on a red reading, by kind
    scorer_busy: float = 0.0  # share of the run's time the scorer spent scoring


@contextmanager
def fresh_database(server_url: str | None) -> Iterator[str]:
    """A new database, on ``server_url``'s server or an embedded one; dropped (stopped) afterwards."""
    embedded = EmbeddedPostgres() if server_url is None else None
    admin = embedded.start() if embedded is not None else server_url
    assert admin is not None
    name = f"alert_latency_{uuid.uuid4().hex[:8]}"
    try:
        url = create_database(admin, name)
        try:
            yield url
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        if embedded is not None:
            embedded.stop()


def enrol(url: str, patients: int) -> None:
    """The homes, one care team (the municipality's own) with every patient, and its nurse."""
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
        homes = [
            Home(
                Patient(MUNICIPALITY, f"p{n}", f"Patient {n}", synthetic=True),
                f"hub{n}",
                (HomeDevice(f"HR{n}", "hrm"),),
            )
            for n in range(patients)
        ]
        enroll_homes(conn, [Municipality(MUNICIPALITY, "Bench")], homes)
        insert_user(conn, NURSE, MUNICIPALITY, "nurse", "!")
        join_care_team(conn, MUNICIPALITY, MUNICIPALITY, NURSE)
        conn.execute("ANALYZE")


def run(load: Load, server_url: str | None) -> Outcome:
    context = multiprocessing.get_context("spawn")
    reds = random.Random(load.patients).sample(range(load.patients), min(load.seconds, load.patients))
    with fresh_database(server_url) as url, EmbeddedBroker(prefer="mosquitto") as endpoint:
        enrol(url, load.patients)
        settings = GatewaySettings(database_url=url, environment="development", secret_key=SecretStr(SECRET))
        gateway = Gateway(
            GatewayOptions(database_url=url, broker=endpoint, workers=WORKERS, port=free_port()), settings
        )
        gateway.start()
        children: list[multiprocessing.process.BaseProcess] = []
        stop = context.Event()
        try:
            if gateway.admission_risk is not None:  # its first run scores everyone: not during the load
                deadline = time.monotonic() + READY_TIMEOUT_S
                while gateway.admission_risk.runs < 1 and time.monotonic() < deadline:
                    time.sleep(0.2)
            token = mint_token(settings, role="nurse", municipality_id=MUNICIPALITY, subject=NURSE)
            results, ready, go = context.Queue(), context.Event(), context.Event()
            observed, watching = context.Queue(), context.Event()
            observer = context.Process(
                target=observe,
                args=(url, f"{gateway.url}/alerts/stream", token, watching, stop, observed),
                daemon=True,
            )
            publisher = context.Process(
                target=publish, args=(endpoint, load, reds, ready, go, results), daemon=True
            )
            children += [observer, publisher]
            for child in children:
                child.start()
            if not (watching.wait(READY_TIMEOUT_S) and ready.wait(READY_TIMEOUT_S)):
                raise RuntimeError("the observer or the publisher did not get ready")
            assert gateway.scorer is not None
            busy_before, began = gateway.scorer.busy_s, time.monotonic()
            go.set()
            sent, red_sent = results.get(timeout=WARMUP_S + load.seconds + SETTLE_S)
            publisher.join()
            deadline = time.monotonic() + SETTLE_S
            while gateway.ingest_counts().observations_stored < sent and time.monotonic() < deadline:
                time.sleep(0.2)
            gateway.wait_scored(max(1.0, deadline - time.monotonic()))
            busy = (gateway.scorer.busy_s - busy_before) / (time.monotonic() - began)
            time.sleep(2.0)  # the last events on their way to the observer
            stop.set()
            committed, streamed, note = observed.get(timeout=30)
            observer.join(timeout=10)
            outcome = Outcome(load, len(red_sent), 0, stream_note=note, sent=sent)
            outcome.stored = gateway.ingest_counts().observations_stored
            outcome.scorer_busy = busy
            for red in red_sent:
                if red.patient_id in committed:
                    outcome.committed.append(committed[red.patient_id] - red.published)
                if red.patient_id in streamed:
                    outcome.streamed.append(streamed[red.patient_id] - red.published)
            _alerts_and_stages(url, red_sent, committed, outcome)
            return outcome
        finally:
            stop.set()
            for child in children:
                child.join(timeout=10)
                if child.is_alive():
                    child.terminate()
            gateway.stop()


def _alerts_and_stages(
    url: str, red_sent: Sequence[RedSent], committed: dict[str, float], outcome: Outcome
) -> None:
    """Count the alerts raised on the red readings, and split their latency by the rows' own times:
    published -> stored (the reading's ``received_at``: ingest's transaction) -> taken by the scorer
    (the alert's ``raised_at``: when the scorer began its chunk) -> committed (LISTEN heard it)."""
    wall_offset = time.time() - time.monotonic()
    by_patient = {red.patient_id: red for red in red_sent}
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT a.kind, a.patient_id, a.as_of, a.raised_at, o.received_at FROM alerts a"
            " LEFT JOIN observations o ON o.municipality_id = a.municipality_id"
            " AND o.patient_id = a.patient_id AND o.effective = a.as_of AND o.kind = 'heart-rate'"
        ).fetchall()
    stages: dict[str, list[float]] = {
        "publish -> stored": [],
        "stored -> scorer took it": [],
        "scorer took it -> committed": [],
    }
    for kind, patient_id, as_of, raised_at, received_at in rows:
        red = by_patient.get(patient_id)
        if kind != "news2" or red is None or as_of != red.effective:
            outcome.other_alerts[kind] = outcome.other_alerts.get(kind, 0) + 1
            continue
        outcome.raised += 1
        published_wall = red.published + wall_offset
        stages["publish -> stored"].append(received_at.timestamp() - published_wall)
        stages["stored -> scorer took it"].append((raised_at - received_at).total_seconds())
        if patient_id in committed:
            stages["scorer took it -> committed"].append(
                committed[patient_id] + wall_offset - raised_at.timestamp()
            )
    outcome.stages = stages


# --- the report ----------------------------------------------------------------------------------------


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def spread(samples: Sequence[float]) -> str:
    if not samples:
        return "no samples"
    return (
        f"p50 {statistics.median(samples):6.3f} s  p95 {percentile(samples, 0.95):6.3f} s"
        f"  p99 {percentile(samples, 0.99):6.3f} s  max {max(samples):6.3f} s"
    )


def report(outcome: Outcome) -> None:
    load = outcome.load
    print(f"\n{load} ({outcome.sent:,} readings published, {outcome.stored:,} stored)")
    others = ", ".join(f"{n} {kind}" for kind, n in sorted(outcome.other_alerts.items())) or "none"
    print(f"  alerts raised: {outcome.raised} of {outcome.expected} expected (other alerts: {others})")
    print(f"  the scorer was busy {outcome.scorer_busy:.0%} of the time (one thread)")
    print(f"  publish -> alert committed (LISTEN):   {spread(outcome.committed)}")
    if outcome.stream_note:
        print(f"  publish -> event on /alerts/stream:   {outcome.stream_note}")
    else:
        print(f"  publish -> event on /alerts/stream:   {spread(outcome.streamed)}")
    for stage, samples in outcome.stages.items():
        print(f"    {stage:<34} {spread(samples)}")
    if (load.rate, load.patients) == (1000, 5000):
        p99 = percentile(outcome.streamed or outcome.committed, 0.99) if outcome.committed else math.inf
        verdict = "PASS" if p99 < TARGET_P99_S and outcome.raised == outcome.expected else "FAIL"
        print(f"  target (p99 < {TARGET_P99_S:g} s publish -> event, every alert raised): {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--patients", type=int, help="patients (default: the four loads of the issue)")
    parser.add_argument("--rate", type=int, help="readings per second (default: the four loads)")
    parser.add_argument("--seconds", type=int, default=30, help="measured seconds (one red reading each)")
    parser.add_argument("--bundle-size", type=int, default=1, help="readings per Bundle (default 1)")
    parser.add_argument("--database-url", help="a PostgreSQL server where databases may be created")
    parser.add_argument("--verbose", action="store_true", help="log the scorer's time per chunk too")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.verbose:
        logging.getLogger("gateway.alerts.scorer").setLevel(logging.DEBUG)
    if args.patients is None and args.rate is None:
        loads = [Load(rate, patients, args.seconds, bundle) for rate, patients, bundle in SCENARIOS]
    else:
        loads = [Load(args.rate or 1000, args.patients or 1000, args.seconds, args.bundle_size)]
    cores = multiprocessing.cpu_count()
    print(f"{WORKERS} ingest worker processes; each load after {WARMUP_S:g} s of warm-up; {cores} cores")
    for load in loads:
        report(run(load, args.database_url))


if __name__ == "__main__":
    main()
